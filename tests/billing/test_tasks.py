"""billing's periodic job: webhook payloads are cleared after the retention,
the rows (the idempotency keys) stay, and a cleared event is never run again."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from procrastinate.contrib.django import app

from billing import services, tasks
from billing.models import WebhookEvent
from tests.accounts.factories import UserFactory
from tests.billing.factories import (
    WebhookEventFactory,
    deliver,
    stripe_event,
    subscription_object,
)
from tests.jobs import periodic_of
from tests.plans import plan_of

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:billing_webhookevent_changelist")


def _event(status, days_ago, **kwargs):
    return WebhookEventFactory(
        status=status, created_at=timezone.now() - dt.timedelta(days=days_ago), **kwargs
    )


def test_webhook_payloads_prune_is_registered_daily_on_the_maintenance_queue():
    task = tasks.webhook_payloads_prune
    periodic = periodic_of(task)

    assert periodic.cron == "30 1 * * *"
    assert periodic.periodic_id == "webhook_payloads_prune"
    assert app.tasks["billing.webhook_payloads_prune"] is task
    assert task.queue == "maintenance"
    assert task.queueing_lock == "billing.webhook_payloads_prune"
    assert task.lock is None


def test_old_processed_and_ignored_events_lose_their_payload_but_keep_the_row(
    settings,
):
    settings.WEBHOOK_PAYLOAD_RETENTION_DAYS = 90
    processed = _event("PROCESSED", 91)
    ignored = _event("IGNORED", 200, type="customer.created")
    recent = _event("PROCESSED", 89)
    failed = _event("FAILED", 200)
    received = _event("RECEIVED", 200)

    assert tasks.webhook_payloads_prune(timestamp=0) == 2

    for event in (processed, ignored):
        row = WebhookEvent.objects.get(pk=event.pk)
        assert row.payload == {}
        assert row.status == event.status
        assert row.type == event.type
        assert row.updated_at > event.updated_at
    # Recent events, and FAILED / RECEIVED ones (reprocess reads them), keep theirs.
    for event in (recent, failed, received):
        assert WebhookEvent.objects.get(pk=event.pk).payload == event.payload
    assert WebhookEvent.objects.count() == 5
    # Safe to run twice.
    assert tasks.webhook_payloads_prune(timestamp=0) == 0


def test_payloads_are_cleared_in_batches_until_done(django_assert_num_queries):
    now = timezone.now()
    for _ in range(3):
        _event("PROCESSED", 100)

    with django_assert_num_queries(2) as captured:
        assert services.webhook_payloads_prune(days=90, now=now, batch_size=2) == 3

    for query in captured.captured_queries:
        assert query["sql"].startswith("UPDATE")
        assert "LIMIT 2" in query["sql"]
    assert not WebhookEvent.objects.exclude(payload={}).exists()


def test_payload_prune_finds_events_through_the_payload_kept_index():
    # Years of events, most already cleared, as in production: the partial
    # index holds only the rest, so nothing ties with it (see plan_of).
    now = timezone.now()
    WebhookEvent.objects.bulk_create(
        WebhookEvent(
            id=f"evt_plan_{n:05d}",
            type="invoice.paid",
            status=WebhookEvent.Status.PROCESSED,
            payload={} if n % 10 else {"id": f"evt_plan_{n:05d}"},
            created_at=now - dt.timedelta(days=100 + n % 700),
        )
        for n in range(2_000)
    )
    with CaptureQueriesContext(connection) as captured:
        assert services.webhook_payloads_prune(days=90) == 200

    plan = plan_of(captured.captured_queries[0]["sql"], analyze=WebhookEvent)
    assert "webhookevent_payload_kept_idx" in plan, plan


def test_a_late_redelivery_of_a_cleared_event_is_still_refused(client, stripe_settings):
    user = UserFactory(stripe_customer_id="cus_test")
    event = stripe_event(
        "customer.subscription.created", subscription_object(status="active")
    )
    assert deliver(client, event).status_code == 200
    WebhookEvent.objects.filter(pk=event["id"]).update(
        created_at=timezone.now() - dt.timedelta(days=100)
    )
    assert services.webhook_payloads_prune() == 1
    user.refresh_from_db()
    changed_at = user.subscription_updated_at
    assert changed_at is not None

    response = deliver(client, event)

    assert response.status_code == 200
    assert response.json()["status"] == "PROCESSED"
    row = WebhookEvent.objects.get(pk=event["id"])
    assert row.payload == {}
    assert row.attempts == 1
    user.refresh_from_db()
    assert user.subscription_updated_at == changed_at


def test_reprocess_skips_a_cleared_event(admin_client, monkeypatch):
    event = _event("PROCESSED", 100)
    services.webhook_payloads_prune()

    def must_not_run(**kwargs):
        raise AssertionError("handler ran on a cleared event")

    monkeypatch.setitem(services.EVENT_HANDLERS, event.type, must_not_run)

    assert services.webhook_event_process(event_id=event.pk).status == "PROCESSED"
    response = admin_client.post(
        CHANGELIST,
        {"action": "reprocess", "_selected_action": [event.pk]},
        follow=True,
    )
    assert "1 event(s) skipped" in response.content.decode()
    assert WebhookEvent.objects.get(pk=event.pk).attempts == 1


def test_change_view_of_a_cleared_event_still_renders(admin_client):
    event = _event("PROCESSED", 100)
    services.webhook_payloads_prune()

    response = admin_client.get(
        reverse("admin:billing_webhookevent_change", args=[event.pk])
    )

    assert response.status_code == 200
    assert event.pk in response.content.decode()
