import json
import time

import pytest
import stripe
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.models import WebhookEvent
from core.models import AuditLog
from tests.accounts.factories import UserFactory
from tests.billing.factories import (
    WEBHOOK_SECRET,
    deliver,
    stripe_event,
    stripe_signature,
    subscription_object,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscriber(stripe_settings):
    return UserFactory(stripe_customer_id="cus_test")


def _post(client, body: bytes, **headers):
    return client.post(
        "/billing/webhook/", data=body, content_type="application/json", headers=headers
    )


def test_signature_helper_matches_the_official_sdk():
    body = b'{"id": "evt_1"}'
    header = stripe_signature(body, timestamp=1_700_000_000)
    expected = stripe.WebhookSignature._compute_signature(
        f"1700000000.{body.decode()}", WEBHOOK_SECRET
    )
    assert header == f"t=1700000000,v1={expected}"


def test_valid_signed_event_is_recorded_and_processed(client, subscriber):
    event = stripe_event(
        "customer.subscription.created", subscription_object(status="active")
    )

    response = deliver(client, event)

    assert response.status_code == 200
    assert response.json() == {"id": event["id"], "status": "PROCESSED"}
    row = WebhookEvent.objects.get()
    assert row.pk == event["id"]
    assert row.type == "customer.subscription.created"
    assert row.provider == "stripe"
    assert row.status == WebhookEvent.Status.PROCESSED
    assert row.attempts == 1
    assert row.processed_at is not None
    assert row.last_attempt_at is not None
    assert row.error == ""
    assert row.payload == event
    subscriber.refresh_from_db()
    assert subscriber.tier == "PRO"


def test_a_first_delivery_writes_its_event_row_once(client, subscriber):
    # The claim is written with its outcome (PROCESSED, attempt 1) and sets
    # its own lock timeout: the hot path's statements are the claim, the
    # user's lock and the user's update.
    deliver(
        client, stripe_event("customer.subscription.created", subscription_object())
    )
    renewal = stripe_event(
        "customer.subscription.updated", subscription_object(status="active")
    )

    with CaptureQueriesContext(connection) as captured:
        response = deliver(client, renewal)

    assert response.json() == {"id": renewal["id"], "status": "PROCESSED"}
    statements = [
        q["sql"].split()[0].upper()
        for q in captured.captured_queries
        # The test's own transaction turns the delivery's into a savepoint.
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]
    assert statements == ["WITH", "SELECT", "UPDATE"], statements
    assert any(
        "set_config('lock_timeout'" in q["sql"] for q in captured.captured_queries
    )
    event_writes = [
        q["sql"]
        for q in captured.captured_queries
        if "billing_webhookevent" in q["sql"]
    ]
    assert len(event_writes) == 1
    row = WebhookEvent.objects.get(pk=renewal["id"])
    assert (row.status, row.attempts, row.note, row.needs_attention) == (
        WebhookEvent.Status.PROCESSED,
        1,
        "",
        False,
    )
    assert row.processed_at == row.last_attempt_at == row.created_at


def test_event_signed_with_another_secret_is_refused_and_not_stored(client, subscriber):
    event = stripe_event("customer.subscription.created", subscription_object())

    response = deliver(client, event, secret="whsec_someone_else")

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()
    subscriber.refresh_from_db()
    assert subscriber.tier == "FREE"


def test_tampered_body_is_refused_and_not_stored(client, subscriber):
    event = stripe_event("customer.subscription.created", subscription_object())
    body = json.dumps(event).encode()
    header = stripe_signature(body)
    tampered = body.replace(b'"price_test_pro"', b'"price_test_enterprise"')
    assert tampered != body

    response = _post(client, tampered, **{"Stripe-Signature": header})

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_missing_signature_header_is_refused_and_not_stored(client, subscriber):
    body = json.dumps(stripe_event("invoice.paid", {"id": "in_1"})).encode()

    response = _post(client, body)

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_malformed_signature_header_is_refused(client, stripe_settings):
    body = json.dumps(stripe_event("invoice.paid", {"id": "in_1"})).encode()

    response = _post(client, body, **{"Stripe-Signature": "nonsense"})

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_replayed_delivery_with_stale_timestamp_is_refused(client, subscriber):
    event = stripe_event("customer.subscription.created", subscription_object())
    body = json.dumps(event).encode()
    # Correctly signed, but 10 minutes old: outside the SDK's 300 s tolerance.
    header = stripe_signature(body, timestamp=time.time() - 600)

    response = _post(client, body, **{"Stripe-Signature": header})

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_signed_body_that_is_not_json_is_refused(client, stripe_settings):
    body = b"this is not json"

    response = _post(client, body, **{"Stripe-Signature": stripe_signature(body)})

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2]",
        b'{"type": "invoice.paid"}',
        b'{"id": "evt_1", "type": 5}',
        b'{"id": "evt_1", "type": "invoice.paid", "data": "\\u0000"}',
    ],
    ids=["not-an-object", "no-id", "bad-type", "nul-character"],
)
def test_signed_json_that_is_not_an_event_is_refused(client, stripe_settings, body):
    response = _post(client, body, **{"Stripe-Signature": stripe_signature(body)})

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "evt_nan", "type": "invoice.paid", "data": NaN}',
        b'{"id": "evt_inf", "type": "invoice.paid", "data": 1e400}',
        b'{"id": "evt_sur", "type": "invoice.paid", "data": "\\ud800"}',
    ],
    ids=["nan", "infinity", "lone-surrogate"],
)
def test_signed_event_that_jsonb_cannot_store_is_refused(client, stripe_settings, body):
    response = _post(client, body, **{"Stripe-Signature": stripe_signature(body)})

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_webhook_without_configured_secret_refuses_everything(client, no_stripe):
    event = stripe_event("invoice.paid", {"id": "in_1"})

    response = deliver(client, event)

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_webhook_only_accepts_post(client, stripe_settings):
    assert client.get("/billing/webhook/").status_code == 405


def test_webhook_needs_no_csrf_token(stripe_settings, subscriber):
    csrf_client = Client(enforce_csrf_checks=True)
    event = stripe_event("customer.subscription.created", subscription_object())

    assert deliver(csrf_client, event).status_code == 200


def test_duplicate_delivery_answers_200_and_changes_nothing(client, subscriber):
    event = stripe_event("customer.subscription.created", subscription_object())
    assert deliver(client, event).status_code == 200
    subscriber.refresh_from_db()
    # Someone changes the user in between: a duplicate must not re-apply the event.
    subscriber.tier = "ENTERPRISE"
    subscriber.save(update_fields=["tier"])

    response = deliver(client, event)

    assert response.status_code == 200
    assert response.json()["status"] == "PROCESSED"
    row = WebhookEvent.objects.get()
    assert row.attempts == 1
    subscriber.refresh_from_db()
    assert subscriber.tier == "ENTERPRISE"
    assert AuditLog.objects.filter(action="plan_changed").count() == 1


def test_unknown_event_type_is_recorded_as_ignored(client, stripe_settings):
    event = stripe_event("customer.created", {"id": "cus_new", "object": "customer"})

    response = deliver(client, event)

    assert response.status_code == 200
    row = WebhookEvent.objects.get()
    assert row.status == WebhookEvent.Status.IGNORED
    assert row.processed_at is not None

    # A redelivery of an ignored event is a no-op too.
    assert deliver(client, event).status_code == 200
    assert WebhookEvent.objects.get().attempts == 1


@pytest.mark.django_db(transaction=True)
def test_handler_failure_is_committed_as_failed_and_redelivery_succeeds(
    client, stripe_settings
):
    # The subscription event overtakes the checkout: no user owns cus_late yet.
    event = stripe_event(
        "customer.subscription.created",
        subscription_object(customer="cus_late", subscription_id="sub_late"),
    )

    response = deliver(client, event)

    assert response.status_code == 500
    # No test transaction wraps this test: the row is committed.
    row = WebhookEvent.objects.get()
    assert row.status == WebhookEvent.Status.FAILED
    assert row.attempts == 1
    assert row.last_attempt_at is not None
    assert row.processed_at is None
    assert "No user for subscription sub_late" in row.error

    user = UserFactory(stripe_customer_id="cus_late")  # the checkout arrives
    retry = deliver(client, event)

    assert retry.status_code == 200
    row.refresh_from_db()
    assert row.status == WebhookEvent.Status.PROCESSED
    assert row.attempts == 2
    assert row.error == ""
    assert row.processed_at is not None
    user.refresh_from_db()
    assert user.tier == "PRO"
    assert user.stripe_subscription_id == "sub_late"


@pytest.mark.django_db(transaction=True)
def test_failed_handler_leaves_no_partial_write(client, stripe_settings):
    owner = UserFactory(stripe_customer_id="cus_taken")
    buyer = UserFactory()
    session = {
        "id": "cs_1",
        "object": "checkout.session",
        "client_reference_id": buyer.pk,
        "customer": "cus_taken",  # belongs to someone else: unique constraint
        "subscription": "sub_new",
    }

    response = deliver(client, stripe_event("checkout.session.completed", session))

    assert response.status_code == 500
    row = WebhookEvent.objects.get()
    assert row.status == WebhookEvent.Status.FAILED
    assert "IntegrityError" in row.error
    buyer.refresh_from_db()
    assert buyer.stripe_customer_id == ""
    assert buyer.stripe_subscription_id == ""
    owner.refresh_from_db()
    assert owner.stripe_subscription_id == ""


@pytest.mark.django_db(transaction=True)
def test_handler_error_after_a_write_rolls_the_write_back(
    client, subscriber, monkeypatch
):
    """The handler updates the user, then fails (here: the audit row): the
    user's update goes with the rest of the delivery, on the first delivery,
    on a redelivery and on the admin's reprocess alike."""
    from billing import services

    def audit_down(**kwargs):
        raise RuntimeError("audit log down")

    monkeypatch.setattr(services, "audit_log_record", audit_down)
    event = stripe_event(
        "customer.subscription.created", subscription_object(status="active")
    )
    untouched = {
        "tier": "FREE",
        "subscription_status": "",
        "subscription_plan": "",
        "stripe_subscription_id": "",
    }

    def state():
        subscriber.refresh_from_db()
        return {field: getattr(subscriber, field) for field in untouched}

    assert deliver(client, event).status_code == 500
    assert state() == untouched
    assert deliver(client, event).status_code == 500  # Stripe's retry
    assert state() == untouched
    assert services.webhook_event_process(event_id=event["id"]).status == "FAILED"
    assert state() == untouched
    row = WebhookEvent.objects.get()
    assert (row.status, row.attempts) == ("FAILED", 3)
    assert row.error == "RuntimeError: audit log down"
    assert not AuditLog.objects.filter(action="plan_changed").exists()

    monkeypatch.undo()
    assert services.webhook_event_process(event_id=event["id"]).status == "PROCESSED"
    assert state()["tier"] == "PRO"
    assert AuditLog.objects.filter(action="plan_changed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_delivery_waiting_on_a_stuck_duplicate_gives_up_with_503(
    client, subscriber, monkeypatch
):
    # Another delivery of the same event inserted its row and never commits:
    # this one waits at most WEBHOOK_LOCK_TIMEOUT_MS, then Stripe retries.
    import psycopg

    from billing import services

    monkeypatch.setattr(services, "WEBHOOK_LOCK_TIMEOUT_MS", 200)
    event = stripe_event("customer.subscription.created", subscription_object())
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params) as other:
        other.execute(
            "INSERT INTO billing_webhookevent (id, type, provider, status, attempts,"
            " error, note, needs_attention, payload, created_at, updated_at)"
            " VALUES (%s, %s, 'stripe', 'RECEIVED', 0, '', '', false, '{}', now(),"
            " now())",
            [event["id"], event["type"]],
        )
        started = time.monotonic()

        response = deliver(client, event)

        waited = time.monotonic() - started
        other.rollback()

    assert response.status_code == 503
    assert 0.15 < waited < 5
    assert not WebhookEvent.objects.filter(pk=event["id"]).exists()
