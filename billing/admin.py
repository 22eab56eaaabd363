import json

from django.contrib import admin, messages
from django.db import OperationalError
from django.utils.html import format_html

from billing import services
from billing.models import WebhookEvent
from core.admin_tools import (
    IndexedSearchMixin,
    LargeTableAdmin,
    ReadOnlyAdmin,
    indexed_values_filter,
)


@admin.register(WebhookEvent)
class WebhookEventAdmin(LargeTableAdmin, IndexedSearchMixin, ReadOnlyAdmin):
    """Stripe deliveries: read-only audit trail, with a retry for FAILED events.

    Newest first (``webhookevent_created_idx``); filters: status (fixed
    choices, ``webhookevent_status_idx``) and type (values read through
    ``webhookevent_type_idx``, no DISTINCT scan); search: any part of the event
    id or type (``webhookevent_id_trgm_idx``, ``webhookevent_type_trgm_idx``);
    an exact event id opens the event (the primary key).
    """

    list_display = (
        "id",
        "type",
        "status",
        "needs_attention",
        "attempts",
        "created_at",
        "last_attempt_at",
        "processed_at",
    )
    # "Needs attention": processed but deliberately not applied (an event about
    # another subscription of the user's customer); webhookevent_attention_idx.
    list_filter = ("status", "needs_attention", indexed_values_filter("type"))
    # Any part: UPPER(col) LIKE '%…%' on the trigram indexes; an exact id
    # jumps to the event (IndexedSearchMixin, through the primary key).
    search_fields = ("id", "type")
    search_help_text = (
        "Any part of the Stripe event id (evt_…) or type (3+ letters). An exact "
        "event id opens the event."
    )
    ordering = ("-created_at",)
    actions = ["reprocess"]
    fields = (
        "id",
        "type",
        "provider",
        "status",
        "attempts",
        "last_attempt_at",
        "processed_at",
        "error",
        "needs_attention",
        "note",
        "stripe_created_at",
        "created_at",
        "updated_at",
        "payload_pretty",
    )
    readonly_fields = fields

    # ReadOnlyAdmin: the rows are also the idempotency keys, and deleting one
    # would let a redelivery apply the event a second time.

    @admin.display(description="Created at Stripe")
    def stripe_created_at(self, obj):
        return obj.stripe_created_at

    @admin.display(description="Payload")
    def payload_pretty(self, obj):
        return format_html(
            '<pre style="white-space: pre-wrap; max-height: 40rem; overflow: auto">'
            "{}</pre>",
            json.dumps(obj.payload, indent=2, sort_keys=True),
        )

    @admin.action(description="Reprocess selected FAILED events")
    def reprocess(self, request, queryset):
        outcomes = {}
        skipped = busy = 0
        for event_id, status in queryset.values_list("id", "status"):
            if status not in (WebhookEvent.Status.FAILED, WebhookEvent.Status.RECEIVED):
                skipped += 1
                continue
            try:
                event = services.webhook_event_reprocess_by_staff(
                    event_id=event_id, actor=request.user, request=request
                )
            except OperationalError:
                # A delivery of the same event holds the row past the timeout.
                busy += 1
                continue
            outcomes[event.status] = outcomes.get(event.status, 0) + 1
        for status, count in sorted(outcomes.items()):
            level = (
                messages.ERROR
                if status == WebhookEvent.Status.FAILED
                else messages.SUCCESS
            )
            self.message_user(request, f"{count} event(s) now {status}.", level)
        if busy:
            self.message_user(
                request,
                f"{busy} event(s) busy: a delivery of the same event is in "
                "progress. Try again in a moment.",
                messages.WARNING,
            )
        if skipped:
            self.message_user(
                request,
                f"{skipped} event(s) skipped: only FAILED or RECEIVED events are "
                "reprocessed.",
                messages.WARNING,
            )
