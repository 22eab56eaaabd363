"""Billing against Stripe's real behaviour, with Stripe's own published object
shapes (tests/billing/stripe_shapes) at API 2024-06-20 and the latest version,
wrapped in signed events and delivered to the webhook."""

import datetime as dt
import json
import time

import pytest
from django.core import mail
from django.urls import reverse

from accounts.selectors import tier_effective
from billing.models import WebhookEvent
from core.models import AuditLog
from tests.accounts.factories import UserFactory
from tests.billing import stripe_shapes as shapes
from tests.billing.factories import (
    PRICE_PRO,
    deliver,
    stripe_event,
    stripe_signature,
)
from tests.jobs import jobs_queued, jobs_run_queued

pytestmark = pytest.mark.django_db

DAY = 86_400


@pytest.fixture(params=shapes.VERSIONS)
def version(request, stripe_settings):
    return request.param


def _now() -> int:
    return int(time.time())


def _at(timestamp: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


def _subscribed(*, customer="cus_one", subscription="sub_one", period_end=None):
    """A PRO user whose subscription ``subscription`` is active and paid."""
    end = _at(period_end or _now() + 20 * DAY)
    return UserFactory(
        tier="PRO",
        subscription_status="active",
        subscription_plan="PRO",
        stripe_customer_id=customer,
        stripe_subscription_id=subscription,
        subscription_ends_at=end,
        paid_until=end,
        subscription_updated_at=_at(_now() - DAY),
    )


def _deliver(client, event_type, obj, *, created=None):
    event = stripe_event(event_type, obj, created=created or _now())
    response = deliver(client, event)
    assert response.status_code == 200, response.content
    return WebhookEvent.objects.get(pk=event["id"])


# --- one customer, two subscriptions ------------------------------------------------


def test_events_about_another_subscription_of_the_customer_are_not_applied(
    client, version
):
    user = _subscribed()
    other = shapes.subscription(
        version,
        id="sub_second_tab",
        customer="cus_one",
        items=[(PRICE_PRO, _now() + 30 * DAY)],
    )

    created = _deliver(client, "customer.subscription.created", other)
    other["status"] = "canceled"
    deleted = _deliver(client, "customer.subscription.deleted", other)

    user.refresh_from_db()
    assert (user.tier, user.subscription_status) == ("PRO", "active")
    assert user.stripe_subscription_id == "sub_one"
    for event in (created, deleted):
        assert event.status == WebhookEvent.Status.PROCESSED
        assert event.needs_attention
        assert "not the one linked" in event.note


def test_a_new_subscription_after_the_linked_one_ended_is_adopted(client, version):
    user = _subscribed()
    user.subscription_status = "canceled"
    user.tier = "FREE"
    user.save()
    new = shapes.subscription(
        version, id="sub_again", customer="cus_one", items=[(PRICE_PRO, _now() + DAY)]
    )

    event = _deliver(client, "customer.subscription.created", new)

    user.refresh_from_db()
    assert not event.needs_attention
    assert (user.tier, user.stripe_subscription_id) == ("PRO", "sub_again")


def test_the_admin_lists_the_events_that_need_attention(admin_client, client, version):
    _subscribed()
    other = shapes.subscription(
        version, id="sub_stray", customer="cus_one", items=[(PRICE_PRO, _now())]
    )
    stray = _deliver(client, "customer.subscription.updated", other)
    mine = shapes.subscription(
        version, id="sub_one", customer="cus_one", items=[(PRICE_PRO, _now())]
    )
    fine = _deliver(client, "customer.subscription.updated", mine)

    page = admin_client.get(
        reverse("admin:billing_webhookevent_changelist"), {"needs_attention__exact": 1}
    )

    assert page.status_code == 200
    html = page.content.decode()
    assert stray.pk in html
    assert fine.pk not in html
    detail = admin_client.get(
        reverse("admin:billing_webhookevent_change", args=[stray.pk])
    ).content.decode()
    assert "not the one linked" in detail


# --- customer deleted ---------------------------------------------------------------


def test_customer_deleted_unlinks_and_the_next_upgrade_makes_a_new_customer(
    client, version, stripe_api
):
    user = _subscribed(customer="cus_gone", subscription="sub_gone")

    _deliver(
        client,
        "customer.deleted",
        shapes.customer(version, id="cus_gone", deleted=True),
    )

    user.refresh_from_db()
    assert (user.stripe_customer_id, user.stripe_subscription_id) == ("", "")
    assert (user.tier, user.subscription_status) == ("FREE", "canceled")
    client.force_login(user)
    response = client.post(reverse("billing_upgrade"), {"plan": "PRO"})
    assert response.status_code == 303
    form = stripe_api.last("/v1/checkout/sessions")["form"]
    user.refresh_from_db()
    assert form["customer"] == user.stripe_customer_id != "cus_gone"


# --- past_due across a renewal --------------------------------------------------------


def test_past_due_keeps_access_only_until_the_last_paid_period_ends(client, version):
    paid_end = _now() - DAY  # the paid period ended yesterday
    user = _subscribed(period_end=paid_end)
    renewal_end = _now() + 29 * DAY
    renewed = shapes.subscription(
        version,
        id="sub_one",
        customer="cus_one",
        status="past_due",
        items=[(PRICE_PRO, renewal_end)],
    )
    unpaid = shapes.invoice(
        version,
        id="in_renewal",
        customer="cus_one",
        subscription="sub_one",
        price=PRICE_PRO,
        period_end=renewal_end,
    )

    _deliver(client, "invoice.payment_failed", unpaid)
    _deliver(client, "customer.subscription.updated", renewed)
    user.refresh_from_db()
    assert user.subscription_status == "past_due"
    assert user.paid_until == _at(paid_end)  # the renewal extended nothing
    assert tier_effective(user) == "FREE"

    # Stripe's "leave past-due" dunning: the next renewal extends nothing either.
    renewed["items"]["data"][0]["current_period_end"] = renewal_end + 30 * DAY
    if version == "2024-06-20":
        renewed["current_period_end"] = renewal_end + 30 * DAY
    _deliver(client, "customer.subscription.updated", renewed)
    user.refresh_from_db()
    assert tier_effective(user) == "FREE"

    _deliver(client, "invoice.paid", unpaid)
    user.refresh_from_db()
    assert user.subscription_status == "active"
    assert user.paid_until == _at(renewal_end)
    assert tier_effective(user) == "PRO"


# --- the plan item anywhere in the list ----------------------------------------


def test_an_add_on_item_before_the_plan_price_is_ignored(client, version):
    user = UserFactory(stripe_customer_id="cus_addon")
    sub = shapes.subscription(
        version,
        id="sub_addon",
        customer="cus_addon",
        items=[("price_extra_seats", _now() + DAY), (PRICE_PRO, _now() + 30 * DAY)],
    )

    event = _deliver(client, "customer.subscription.created", sub)

    user.refresh_from_db()
    assert event.status == WebhookEvent.Status.PROCESSED
    assert (user.tier, user.subscription_plan) == ("PRO", "PRO")


# --- what the billing page says -------------------------------------------------------


def _billing_page(client, user) -> str:
    client.force_login(user)
    return client.get(reverse("billing")).content.decode()


def test_a_scheduled_cancellation_says_cancels_on_not_renews(client, version):
    user = _subscribed()
    end = _now() + 12 * DAY
    sub = shapes.subscription(
        version,
        id="sub_one",
        customer="cus_one",
        cancel_at_period_end=True,
        items=[(PRICE_PRO, end)],
    )

    _deliver(client, "customer.subscription.updated", sub)

    html = _billing_page(client, user)
    assert f"Your plan cancels on <strong>{_at(end):%b} {_at(end).day}," in html
    assert "Resume it under “Manage billing”" in html
    assert "Renews on" not in html


def test_an_incomplete_subscription_says_it_is_not_active_yet(client, version):
    user = UserFactory(stripe_customer_id="cus_new")
    sub = shapes.subscription(
        version,
        id="sub_new",
        customer="cus_new",
        status="incomplete",
        items=[(PRICE_PRO, _now() + 30 * DAY)],
    )

    _deliver(client, "customer.subscription.created", sub)

    html = _billing_page(client, user)
    assert "not active yet" in html
    assert "Renews on" not in html
    assert "Current period ends" not in html


def test_a_trial_says_when_it_ends(client, version):
    user = UserFactory(stripe_customer_id="cus_trial")
    trial_end = _now() + 5 * DAY
    sub = shapes.subscription(
        version,
        id="sub_trial",
        customer="cus_trial",
        status="trialing",
        trial_end=trial_end,
        items=[(PRICE_PRO, trial_end)],
    )

    _deliver(client, "customer.subscription.created", sub)

    user.refresh_from_db()
    assert user.trial_ends_at == _at(trial_end)
    assert "Your trial ends on" in _billing_page(client, user)


# --- emails -------------------------------------------------------------------------


def test_payment_action_required_links_the_hosted_invoice_and_emails_once(
    client, version
):
    user = _subscribed()
    invoice = shapes.invoice(
        version,
        id="in_3ds",
        customer="cus_one",
        subscription="sub_one",
        price=PRICE_PRO,
        period_end=_now() + 30 * DAY,
        hosted_invoice_url="https://invoice.stripe.com/i/acct_test/in_3ds",
    )
    event = stripe_event("invoice.payment_action_required", invoice)

    assert deliver(client, event).status_code == 200
    assert deliver(client, event).status_code == 200  # Stripe delivers again

    user.refresh_from_db()
    assert user.billing_action_url == "https://invoice.stripe.com/i/acct_test/in_3ds"
    assert "Confirm the payment on Stripe" in _billing_page(client, user)
    assert len(jobs_queued(task_name="core.mail_send")) == 1
    jobs_run_queued()
    [message] = mail.outbox
    assert message.to == [user.email]
    assert "https://invoice.stripe.com/i/acct_test/in_3ds" in message.body
    assert AuditLog.objects.filter(
        action="billing_email", changes__email="payment_action_required"
    ).exists()

    paid = stripe_event("invoice.paid", invoice)
    assert deliver(client, paid).status_code == 200
    user.refresh_from_db()
    assert user.billing_action_url == ""


@pytest.mark.parametrize(
    ("event_type", "kind", "words"),
    [
        ("invoice.payment_failed", "payment_failed", "did not go through"),
        ("customer.subscription.trial_will_end", "trial_ending", "trial"),
        ("customer.subscription.deleted", "subscription_canceled", "Free plan"),
    ],
)
def test_billing_emails_are_queued_and_audited(
    client, version, event_type, kind, words
):
    user = _subscribed()
    if event_type.startswith("invoice"):
        obj = shapes.invoice(
            version,
            id="in_x",
            customer="cus_one",
            subscription="sub_one",
            price=PRICE_PRO,
            period_end=_now() + 30 * DAY,
        )
    else:
        obj = shapes.subscription(
            version,
            id="sub_one",
            customer="cus_one",
            status="canceled" if "deleted" in event_type else "trialing",
            trial_end=_now() + 3 * DAY,
            items=[(PRICE_PRO, _now() + 3 * DAY)],
        )

    _deliver(client, event_type, obj)

    jobs_run_queued()
    [message] = mail.outbox
    assert message.to == [user.email]
    assert words in message.body
    assert AuditLog.objects.filter(action="billing_email", changes__email=kind).exists()


def test_an_expired_checkout_tells_the_user_how_to_come_back(client, version):
    user = UserFactory()
    session = shapes.checkout_session(
        version, id="cs_expired", user_id=user.pk, customer="cus_x"
    )

    _deliver(client, "checkout.session.expired", session)

    jobs_run_queued()
    [message] = mail.outbox
    assert "/pricing/" in message.body


# --- the signature before anything else ----------------------------------------


@pytest.mark.parametrize("ahead", [3600, DAY])
def test_a_signature_dated_in_the_future_is_refused(client, stripe_settings, ahead):
    body = json.dumps(stripe_event("customer.subscription.updated", {})).encode()

    response = client.post(
        "/billing/webhook/",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": stripe_signature(body, timestamp=_now() + ahead)},
    )

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_deep_nesting_with_a_bad_signature_is_a_400_without_parsing(
    client, stripe_settings
):
    body = b"[" * 2000 + b"]" * 2000

    response = client.post(
        "/billing/webhook/",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": f"t={_now()},v1={'0' * 64}"},
    )

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_deep_nesting_even_correctly_signed_is_a_400(client, stripe_settings):
    body = (
        b'{"id": "evt_deep", "type": "x", "data": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    )

    response = deliver(client, body)

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_the_page_never_offers_a_second_checkout_while_subscribed(client, stripe_api):
    user = _subscribed()
    user.subscription_status = "incomplete"
    user.save()

    html = _billing_page(client, user)
    response = client.post(reverse("billing_upgrade"), {"plan": "ENTERPRISE"})

    assert 'action="/billing/upgrade/"' not in html
    assert "Change plan" in html
    assert response.status_code in (302, 303, 400)
    assert not [r for r in stripe_api.requests if r["path"] == "/v1/checkout/sessions"]


def test_an_invoice_of_another_subscription_of_the_customer_needs_attention(
    client, version
):
    user = _subscribed()
    invoice = shapes.invoice(
        version,
        id="in_other",
        customer="cus_one",
        subscription="sub_second_tab",
        price=PRICE_PRO,
        period_end=_now() + 30 * DAY,
    )

    event = _deliver(client, "invoice.payment_failed", invoice)

    user.refresh_from_db()
    assert user.subscription_status == "active"
    assert event.needs_attention
    assert mail.outbox == [] and jobs_queued() == []
