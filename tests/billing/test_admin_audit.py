"""The webhook admin's one write, "reprocess", is audited with the event's
outcome before and after."""

import pytest
from django.urls import reverse

from core.models import AuditLog
from tests.billing.factories import (
    WebhookEventFactory,
    stripe_event,
    subscription_object,
)

pytestmark = pytest.mark.django_db


def test_reprocess_leaves_a_row_per_event_with_old_and_new_outcome(
    admin_client, admin_user, stripe_settings
):
    failing = WebhookEventFactory(
        id="evt_audited",
        status="FAILED",
        attempts=1,
        type="customer.subscription.created",
        error="WebhookHandlingError: No user",
        payload=stripe_event(
            "customer.subscription.created",
            subscription_object(customer="cus_nobody"),
            event_id="evt_audited",
        ),
    )
    ignored = WebhookEventFactory(id="evt_unknown", status="RECEIVED", type="x.y")

    admin_client.post(
        reverse("admin:billing_webhookevent_changelist"),
        {"action": "reprocess", "_selected_action": [failing.pk, ignored.pk]},
    )

    rows = {r.target_id: r for r in AuditLog.objects.filter(actor=admin_user)}
    assert set(rows) == {"evt_audited", "evt_unknown"}
    again = rows["evt_audited"].changes
    assert again["attempts"] == {"old": 1, "new": 2}
    assert again["last_attempt_at"]["new"]
    assert "status" not in again  # FAILED again
    assert rows["evt_unknown"].changes["status"] == {
        "old": "RECEIVED",
        "new": "IGNORED",
    }
    assert all("payload" not in r.changes for r in rows.values())
