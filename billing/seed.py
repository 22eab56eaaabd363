"""Demo webhook events for `manage.py seed`: one or two in each status."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from billing.models import WebhookEvent
from core.seeding import seeder_register


def _event(event_id: str, event_type: str, created: dt.datetime, obj: dict) -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": int(created.timestamp()),
        "livemode": False,
        "data": {"object": obj},
    }


def seed_demo(*, admin, stdout=None) -> dict[str, int]:
    """Create the demo events that do not exist yet (keyed by event id)."""
    now = timezone.now()
    Status = WebhookEvent.Status
    subscription = {
        "id": "sub_demo",
        "object": "subscription",
        "customer": "cus_demo",
        "status": "active",
        "items": {"data": [{"price": {"id": "price_demo_pro"}}]},
        "metadata": {"user_id": str(admin.pk)},
    }
    rows = [
        (
            "evt_demo_checkout_completed",
            "checkout.session.completed",
            Status.PROCESSED,
            "",
            {
                "id": "cs_demo",
                "object": "checkout.session",
                "client_reference_id": str(admin.pk),
                "customer": "cus_demo",
                "subscription": "sub_demo",
            },
        ),
        (
            "evt_demo_subscription_created",
            "customer.subscription.created",
            Status.PROCESSED,
            "",
            subscription,
        ),
        (
            "evt_demo_invoice_failed",
            "invoice.payment_failed",
            Status.FAILED,
            "WebhookHandlingError: demo failure, reprocess it from the admin.",
            {"id": "in_demo", "object": "invoice", "customer": "cus_demo_unknown"},
        ),
        (
            "evt_demo_customer_created",
            "customer.created",
            Status.IGNORED,
            "",
            {"id": "cus_demo", "object": "customer"},
        ),
        (
            "evt_demo_subscription_updated",
            "customer.subscription.updated",
            Status.RECEIVED,
            "",
            subscription,
        ),
    ]
    events = []
    for offset, (event_id, event_type, status, error, obj) in enumerate(rows):
        created = now - dt.timedelta(minutes=10 * (len(rows) - offset))
        done = status in (Status.PROCESSED, Status.IGNORED)
        events.append(
            WebhookEvent(
                id=event_id,
                type=event_type,
                status=status,
                error=error,
                attempts=0 if status == Status.RECEIVED else 1,
                last_attempt_at=None if status == Status.RECEIVED else created,
                processed_at=created if done else None,
                payload=_event(event_id, event_type, created, obj),
                created_at=created,
            )
        )
    existing = set(
        WebhookEvent.objects.filter(pk__in=[e.id for e in events]).values_list(
            "pk", flat=True
        )
    )
    new = [e for e in events if e.id not in existing]
    WebhookEvent.objects.bulk_create(new, ignore_conflicts=True)
    if stdout is not None and new:
        stdout.write(f"billing: {len(new)} demo webhook events")
    return {"webhook events": len(new)}


seeder_register(name="billing", order=30, demo=seed_demo)
