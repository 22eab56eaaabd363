import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import services
from billing.models import WebhookEvent
from tests.accounts.factories import UserFactory
from tests.billing.factories import (
    WebhookEventFactory,
    stripe_event,
    subscription_object,
)

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:billing_webhookevent_changelist")


def _changelist_queries(client, **params):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    return len(queries)


def test_changelist_filters_by_status_and_type(admin_client):
    WebhookEventFactory(id="evt_ok", status="PROCESSED", type="invoice.paid")
    WebhookEventFactory(id="evt_bad", status="FAILED", type="invoice.paid")
    WebhookEventFactory(id="evt_other", status="FAILED", type="customer.created")

    html = admin_client.get(
        CHANGELIST, {"status__exact": "FAILED", "type__exact": "invoice.paid"}
    ).content.decode()

    assert "evt_bad" in html
    assert "evt_ok" not in html
    assert "evt_other" not in html


def test_changelist_query_count_does_not_grow_with_rows(admin_client):
    WebhookEventFactory.create_batch(2)
    admin_client.get(CHANGELIST)  # settle session tracking
    few = _changelist_queries(admin_client)

    WebhookEventFactory.create_batch(40)
    many = _changelist_queries(admin_client)

    assert few == many


def test_change_view_shows_payload_formatted_and_read_only(admin_client):
    event = WebhookEventFactory(id="evt_show")

    response = admin_client.get(
        reverse("admin:billing_webhookevent_change", args=[event.pk])
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "<pre" in html
    assert "&quot;id&quot;: &quot;evt_show&quot;," in html  # indented JSON
    assert 'name="type"' not in html  # no editable fields


def test_admin_cannot_add_or_delete_events(admin_client):
    event = WebhookEventFactory()

    assert (
        admin_client.get(reverse("admin:billing_webhookevent_add")).status_code == 403
    )
    assert (
        admin_client.get(
            reverse("admin:billing_webhookevent_delete", args=[event.pk])
        ).status_code
        == 403
    )


def test_non_staff_cannot_see_webhook_events(user_client):
    response = user_client.get(CHANGELIST)

    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_reprocess_action_retries_failed_events_with_the_same_service(
    admin_client, stripe_settings
):
    subscription = subscription_object(customer="cus_admin", subscription_id="sub_a")
    failed = WebhookEventFactory(
        id="evt_failed",
        status="FAILED",
        error="WebhookHandlingError: No user",
        payload=stripe_event(
            "customer.subscription.created", subscription, event_id="evt_failed"
        ),
        type="customer.subscription.created",
    )
    done = WebhookEventFactory(id="evt_done", status="PROCESSED")
    user = UserFactory(stripe_customer_id="cus_admin")

    response = admin_client.post(
        CHANGELIST,
        {"action": "reprocess", "_selected_action": [failed.pk, done.pk]},
        follow=True,
    )

    html = response.content.decode()
    assert "1 event(s) now PROCESSED." in html
    assert "1 event(s) skipped" in html
    failed.refresh_from_db()
    assert failed.status == WebhookEvent.Status.PROCESSED
    assert failed.attempts == 2
    assert failed.error == ""
    done.refresh_from_db()
    assert done.attempts == 1
    user.refresh_from_db()
    assert user.tier == "PRO"


def test_reprocess_that_fails_again_reports_it(admin_client, stripe_settings):
    failed = WebhookEventFactory(
        id="evt_still_failing",
        status="FAILED",
        type="customer.subscription.created",
        payload=stripe_event(
            "customer.subscription.created",
            subscription_object(customer="cus_nobody"),
            event_id="evt_still_failing",
        ),
    )

    response = admin_client.post(
        CHANGELIST,
        {"action": "reprocess", "_selected_action": [failed.pk]},
        follow=True,
    )

    assert "1 event(s) now FAILED." in response.content.decode()
    failed.refresh_from_db()
    assert failed.attempts == 2
    assert "No user for subscription" in failed.error


@pytest.mark.django_db(transaction=True)
def test_reprocess_of_an_event_another_delivery_holds_says_busy(
    admin_client, stripe_settings, monkeypatch
):
    monkeypatch.setattr(services, "WEBHOOK_LOCK_TIMEOUT_MS", 200)
    held = WebhookEventFactory(
        id="evt_held", status="FAILED", type="customer.subscription.created"
    )
    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute(
            "SELECT 1 FROM billing_webhookevent WHERE id = %s FOR UPDATE", [held.pk]
        )

        response = admin_client.post(
            CHANGELIST,
            {"action": "reprocess", "_selected_action": [held.pk]},
            follow=True,
        )

    assert response.status_code == 200
    assert "1 event(s) busy" in response.content.decode()
    held.refresh_from_db()
    assert (held.status, held.attempts) == ("FAILED", 1)
