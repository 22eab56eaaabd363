"""Stripe sometimes delivers one event from several connections at the same moment."""

import json

import pytest
import requests
from django.db import connection

from billing.models import WebhookEvent
from core.models import AuditLog
from tests.accounts.factories import UserFactory
from tests.billing.factories import stripe_event, stripe_signature, subscription_object
from tests.concurrency import run_at_once

THREADS = 20


@pytest.fixture
def slow_user_updates(django_db_blocker):
    """Make every UPDATE of a user take 0.3 s, inside the handler's transaction.

    A real database delay that holds the race window open: without a database
    claim on the event, the other deliveries would all see it unprocessed.
    """
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE OR REPLACE FUNCTION billing_test_slow_update() RETURNS trigger
            AS $$ BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END $$ LANGUAGE plpgsql;
            CREATE TRIGGER billing_test_slow_update BEFORE UPDATE ON accounts_user
            FOR EACH ROW EXECUTE FUNCTION billing_test_slow_update();
            """
        )
    yield
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "DROP TRIGGER IF EXISTS billing_test_slow_update ON accounts_user;"
            "DROP FUNCTION IF EXISTS billing_test_slow_update();"
        )


def _deliver_at_once(live_server, event):
    """``event``, signed, from THREADS connections at the same moment."""
    body = json.dumps(event).encode()
    headers = {
        "Content-Type": "application/json",
        "Stripe-Signature": stripe_signature(body),
    }
    url = f"{live_server.url}/billing/webhook/"

    def deliver(_):
        # Each thread is its own HTTP connection, served by its own server thread
        # with its own database connection.
        with requests.Session() as session:
            return session.post(url, data=body, headers=headers, timeout=60)

    return run_at_once(THREADS, deliver)


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_deliveries_record_and_apply_the_event_once(
    live_server, stripe_settings, slow_user_updates
):
    user = UserFactory(stripe_customer_id="cus_race")
    event = stripe_event(
        "customer.subscription.created",
        subscription_object(customer="cus_race", subscription_id="sub_race"),
    )
    responses = _deliver_at_once(live_server, event)

    assert [r.status_code for r in responses] == [200] * THREADS
    assert {r.json()["status"] for r in responses} == {"PROCESSED"}
    row = WebhookEvent.objects.get()
    assert row.pk == event["id"]
    assert row.status == WebhookEvent.Status.PROCESSED
    assert row.attempts == 1  # the handler ran once
    user.refresh_from_db()
    assert user.tier == "PRO"
    assert user.stripe_subscription_id == "sub_race"
    # One tier change: exactly one audit row.
    assert (
        AuditLog.objects.filter(action="plan_changed", target_id=user.pk).count() == 1
    )


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_failing_deliveries_count_every_attempt(
    live_server, stripe_settings
):
    """A handler error rolls its delivery back and records FAILED afterwards; a
    duplicate that was waiting on the claim then makes its own attempt. Every
    delivery answers 500 and every attempt is counted on the one row."""
    event = stripe_event(
        "customer.subscription.created",
        subscription_object(customer="cus_nobody", subscription_id="sub_nobody"),
    )
    responses = _deliver_at_once(live_server, event)

    assert [r.status_code for r in responses] == [500] * THREADS
    row = WebhookEvent.objects.get()
    assert row.status == WebhookEvent.Status.FAILED
    assert row.attempts == THREADS
    assert "No user for subscription sub_nobody" in row.error
