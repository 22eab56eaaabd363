import datetime as dt

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone


class WebhookEvent(models.Model):
    """One Stripe event as delivered to the webhook: idempotency key and audit trail.

    The primary key is Stripe's event id, so the database itself refuses a second
    row for a redelivered event; `billing.services.webhook_event_receive` claims
    it with ``INSERT … ON CONFLICT DO NOTHING``.
    """

    class Provider(models.TextChoices):
        STRIPE = "stripe", "Stripe"

    class Status(models.TextChoices):
        RECEIVED = "RECEIVED", "Received"
        PROCESSED = "PROCESSED", "Processed"
        FAILED = "FAILED", "Failed"
        IGNORED = "IGNORED", "Ignored"

    # Stripe's own id ("evt_…"), not a generated IdField: it is the dedup key.
    id = models.CharField(max_length=255, primary_key=True)
    type = models.CharField(max_length=100)
    provider = models.CharField(
        max_length=32, choices=Provider.choices, default=Provider.STRIPE
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RECEIVED
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Processed but deliberately not applied (e.g. an event about a subscription
    # of the customer that is not the one linked to the user): staff look.
    needs_attention = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # Admin filter "events of this type", newest first.
            models.Index(fields=["type", "created_at"], name="webhookevent_type_idx"),
            # Admin filter / ops check "FAILED events", newest first.
            models.Index(
                fields=["status", "created_at"], name="webhookevent_status_idx"
            ),
            # Admin list, newest first.
            models.Index(fields=["-created_at"], name="webhookevent_created_idx"),
            # webhook_payloads_prune: the events whose payload may still be
            # cleared, oldest first; rows leave it as they are cleared, so the
            # nightly run never rereads the years it already did.
            models.Index(
                fields=["created_at"],
                condition=models.Q(status__in=["PROCESSED", "IGNORED"])
                & ~models.Q(payload={}),
                name="webhookevent_payload_kept_idx",
            ),
            # Admin filter "needs attention", newest first (a handful of rows).
            models.Index(
                fields=["-created_at"],
                condition=models.Q(needs_attention=True),
                name="webhookevent_attention_idx",
            ),
            # Admin search by any part of the event id or type.
            GinIndex(
                OpClass(Upper("id"), name="gin_trgm_ops"),
                name="webhookevent_id_trgm_idx",
            ),
            GinIndex(
                OpClass(Upper("type"), name="gin_trgm_ops"),
                name="webhookevent_type_trgm_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["RECEIVED", "PROCESSED", "FAILED", "IGNORED"]
                ),
                name="webhookevent_status_valid",
            ),
        ]

    def __str__(self):
        return f"{self.type} {self.id}"

    @property
    def stripe_created_at(self):
        """When Stripe created the event (``payload.created``), or None."""
        created = (self.payload or {}).get("created")
        if isinstance(created, int | float):
            return dt.datetime.fromtimestamp(created, tz=dt.UTC)
        return None
