import datetime as dt
import itertools

import pytest

from billing import services
from billing.models import WebhookEvent
from billing.selectors import tier_effective
from core.models import AuditLog
from tests.accounts.factories import UserFactory
from tests.billing.factories import (
    PRICE_ENTERPRISE,
    checkout_session_object,
    deliver,
    invoice_object,
    stripe_event,
    subscription_object,
)

pytestmark = pytest.mark.django_db

T0 = 1_800_000_000  # event.created of the first event in a story
PERIOD_END = 1_802_592_000
ENDED_AT = T0 + 180


def _utc(timestamp):
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


def _lifecycle_events():
    """created → updated(past_due) → updated(active) → deleted, a minute apart."""
    return [
        stripe_event(
            "customer.subscription.created",
            subscription_object(status="active", period_end=PERIOD_END),
            created=T0,
        ),
        stripe_event(
            "customer.subscription.updated",
            subscription_object(status="past_due", period_end=PERIOD_END),
            created=T0 + 60,
        ),
        stripe_event(
            "customer.subscription.updated",
            subscription_object(status="active", period_end=PERIOD_END + 2_592_000),
            created=T0 + 120,
        ),
        stripe_event(
            "customer.subscription.deleted",
            subscription_object(
                status="canceled", period_end=PERIOD_END + 2_592_000, ended_at=ENDED_AT
            ),
            created=T0 + 180,
        ),
    ]


def _state(user):
    user.refresh_from_db()
    return {
        "tier": user.tier,
        "subscription_status": user.subscription_status,
        "subscription_plan": user.subscription_plan,
        "subscription_ends_at": user.subscription_ends_at,
        "subscription_updated_at": user.subscription_updated_at,
        "stripe_subscription_id": user.stripe_subscription_id,
        "stripe_customer_id": user.stripe_customer_id,
    }


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_every_delivery_order_of_the_lifecycle_ends_canceled_and_free(
    client, stripe_settings, order
):
    user = UserFactory(stripe_customer_id="cus_test")
    events = _lifecycle_events()

    for index in order:
        assert deliver(client, events[index]).status_code == 200

    assert _state(user) == {
        "tier": "FREE",
        "subscription_status": "canceled",
        "subscription_plan": "",
        "subscription_ends_at": _utc(ENDED_AT),
        "subscription_updated_at": _utc(T0 + 180),
        "stripe_subscription_id": "sub_test",
        "stripe_customer_id": "cus_test",
    }
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"PROCESSED"}


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_every_delivery_order_without_deletion_ends_active_pro(
    client, stripe_settings, order
):
    user = UserFactory(stripe_customer_id="cus_test")
    events = _lifecycle_events()[:3]

    for index in order:
        assert deliver(client, events[index]).status_code == 200

    state = _state(user)
    assert state["tier"] == "PRO"
    assert state["subscription_status"] == "active"
    assert state["subscription_plan"] == "PRO"
    assert state["subscription_ends_at"] == _utc(PERIOD_END + 2_592_000)


def test_subscription_sets_tier_plan_status_and_period_end_from_price(
    client, stripe_settings
):
    user = UserFactory(stripe_customer_id="cus_test")
    event = stripe_event(
        "customer.subscription.created",
        subscription_object(price=PRICE_ENTERPRISE, period_end=PERIOD_END),
        created=T0,
    )

    deliver(client, event)

    state = _state(user)
    assert state["tier"] == "ENTERPRISE"
    assert state["subscription_plan"] == "ENTERPRISE"
    assert state["subscription_status"] == "active"
    assert state["subscription_ends_at"] == _utc(PERIOD_END)
    assert state["stripe_subscription_id"] == "sub_test"


def test_plan_change_writes_one_audit_row(client, stripe_settings):
    user = UserFactory(stripe_customer_id="cus_test")
    event = stripe_event("customer.subscription.created", subscription_object())

    deliver(client, event)

    audit = AuditLog.objects.get(action="plan_changed")
    assert audit.target_id == user.pk
    assert audit.changes["tier"] == ["FREE", "PRO"]
    assert audit.changes["stripe_event"] == event["id"]


def test_status_change_without_tier_change_writes_no_audit_row(client, stripe_settings):
    UserFactory(stripe_customer_id="cus_test")
    events = _lifecycle_events()
    deliver(client, events[0])
    deliver(client, events[1])  # past_due keeps PRO

    assert AuditLog.objects.filter(action="plan_changed").count() == 1


def test_unknown_price_fails_the_event_with_a_readable_error(client, stripe_settings):
    user = UserFactory(stripe_customer_id="cus_test")
    event = stripe_event(
        "customer.subscription.created", subscription_object(price="price_other")
    )

    assert deliver(client, event).status_code == 500

    row = WebhookEvent.objects.get()
    assert row.status == "FAILED"
    assert "price_other" in row.error
    assert _state(user)["tier"] == "FREE"


def test_subscription_event_finds_user_by_metadata_before_checkout_links_them(
    client, stripe_settings
):
    user = UserFactory()
    event = stripe_event(
        "customer.subscription.created",
        subscription_object(customer="cus_new", user_id=user.pk),
    )

    assert deliver(client, event).status_code == 200

    state = _state(user)
    assert state["tier"] == "PRO"
    assert state["stripe_customer_id"] == "cus_new"


def test_checkout_completed_links_customer_and_subscription(client, stripe_settings):
    user = UserFactory()
    event = stripe_event(
        "checkout.session.completed",
        checkout_session_object(
            user_id=user.pk, customer="cus_a", subscription_id="sub_a"
        ),
    )

    assert deliver(client, event).status_code == 200

    state = _state(user)
    assert state["stripe_customer_id"] == "cus_a"
    assert state["stripe_subscription_id"] == "sub_a"
    # The tier comes from the subscription events, not from the session.
    assert state["tier"] == "FREE"


def test_checkout_completed_after_subscription_created_keeps_the_plan(
    client, stripe_settings
):
    user = UserFactory()
    created = stripe_event(
        "customer.subscription.created",
        subscription_object(customer="cus_a", subscription_id="sub_a", user_id=user.pk),
        created=T0 + 1,
    )
    checkout = stripe_event(
        "checkout.session.completed",
        checkout_session_object(
            user_id=user.pk, customer="cus_a", subscription_id="sub_a"
        ),
        created=T0 + 1,
    )

    deliver(client, created)
    deliver(client, checkout)

    state = _state(user)
    assert state["tier"] == "PRO"
    assert state["stripe_subscription_id"] == "sub_a"


def test_late_checkout_of_an_old_subscription_does_not_relink_it(
    client, stripe_settings
):
    user = UserFactory(stripe_customer_id="cus_a")
    deliver(
        client,
        stripe_event(
            "customer.subscription.created",
            subscription_object(customer="cus_a", subscription_id="sub_new"),
            created=T0 + 100,
        ),
    )
    old_checkout = stripe_event(
        "checkout.session.completed",
        checkout_session_object(
            user_id=user.pk, customer="cus_a", subscription_id="sub_old"
        ),
        created=T0,
    )

    assert deliver(client, old_checkout).status_code == 200

    assert _state(user)["stripe_subscription_id"] == "sub_new"


def test_checkout_for_unknown_user_fails(client, stripe_settings):
    event = stripe_event(
        "checkout.session.completed", checkout_session_object(user_id="nobody")
    )

    assert deliver(client, event).status_code == 500
    assert "No user with id nobody" in WebhookEvent.objects.get().error


def test_failed_payment_makes_subscription_past_due_and_keeps_access(
    client, stripe_settings
):
    user = UserFactory(stripe_customer_id="cus_test")
    deliver(client, _lifecycle_events()[0])

    deliver(
        client,
        stripe_event("invoice.payment_failed", invoice_object(), created=T0 + 60),
    )

    state = _state(user)
    assert state["subscription_status"] == "past_due"
    assert state["tier"] == "PRO"
    user.refresh_from_db()
    before_end = _utc(PERIOD_END) - dt.timedelta(days=1)
    after_end = _utc(PERIOD_END) + dt.timedelta(seconds=1)
    assert tier_effective(user, now=before_end) == "PRO"
    assert tier_effective(user, now=after_end) == "FREE"


def test_paid_invoice_brings_past_due_subscription_back_to_active(
    client, stripe_settings
):
    user = UserFactory(stripe_customer_id="cus_test")
    deliver(client, _lifecycle_events()[0])
    deliver(
        client,
        stripe_event("invoice.payment_failed", invoice_object(), created=T0 + 60),
    )

    deliver(client, stripe_event("invoice.paid", invoice_object(), created=T0 + 120))

    state = _state(user)
    assert state["subscription_status"] == "active"
    assert state["tier"] == "PRO"


def test_old_failed_invoice_delivered_late_does_not_overwrite_newer_state(
    client, stripe_settings
):
    user = UserFactory(stripe_customer_id="cus_test")
    events = _lifecycle_events()
    deliver(client, events[0])
    deliver(client, events[2])  # active at T0+120

    late = stripe_event("invoice.payment_failed", invoice_object(), created=T0 + 60)
    assert deliver(client, late).status_code == 200

    assert _state(user)["subscription_status"] == "active"
    assert WebhookEvent.objects.get(pk=late["id"]).status == "PROCESSED"


def test_invoice_of_unlinked_subscription_changes_nothing(client, stripe_settings):
    user = UserFactory(stripe_customer_id="cus_test")
    event = stripe_event(
        "invoice.payment_failed", invoice_object(subscription_id="sub_other")
    )

    assert deliver(client, event).status_code == 200
    assert _state(user)["subscription_status"] == ""


def test_deleted_event_in_the_same_second_is_not_revived_by_an_update(
    client, stripe_settings
):
    user = UserFactory(stripe_customer_id="cus_test")
    deleted = stripe_event(
        "customer.subscription.deleted",
        subscription_object(status="canceled", ended_at=T0),
        created=T0,
    )
    updated = stripe_event(
        "customer.subscription.updated",
        subscription_object(status="active"),
        created=T0,
    )

    deliver(client, deleted)
    deliver(client, updated)

    assert _state(user)["subscription_status"] == "canceled"
    assert _state(user)["tier"] == "FREE"


def test_process_service_does_not_rerun_a_processed_event(stripe_settings):
    user = UserFactory(stripe_customer_id="cus_test")
    event = stripe_event("customer.subscription.created", subscription_object())
    services.webhook_event_receive(event=event)
    user.refresh_from_db()
    user.tier = "FREE"
    user.save(update_fields=["tier"])

    row = services.webhook_event_process(event_id=event["id"])

    assert row.status == "PROCESSED"
    assert row.attempts == 1
    assert _state(user)["tier"] == "FREE"


def test_a_failure_recorded_late_leaves_a_processed_event_alone(stripe_settings):
    """Between a failed delivery's rollback and its FAILED record, a redelivery
    may have processed the event: the record then changes nothing and reports
    the event as processed."""
    user = UserFactory(stripe_customer_id="cus_test")
    event = stripe_event("customer.subscription.created", subscription_object())
    services.webhook_event_receive(event=event)
    row = WebhookEvent.objects.get(pk=event["id"])

    recorded = services._webhook_event_failure_record(
        services._HandlerFailed(row, "WebhookHandlingError: too late")
    )

    assert recorded.status == WebhookEvent.Status.PROCESSED
    row.refresh_from_db()
    assert (row.status, row.attempts, row.error) == ("PROCESSED", 1, "")
    user.refresh_from_db()
    assert user.tier == "PRO"


def test_the_webhook_loads_the_user_columns_in_model_order():
    """``Model.from_db`` maps values by the model's field order, not the names'."""
    from django.contrib.auth import get_user_model

    from billing.services import _BILLING_USER_FIELDS

    order = [f.name for f in get_user_model()._meta.concrete_fields]
    assert list(_BILLING_USER_FIELDS) == sorted(_BILLING_USER_FIELDS, key=order.index)
