import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.accounts.factories import UserFactory
from tests.billing.factories import PRICE_ENTERPRISE, PRICE_PRO, SECRET_KEY

pytestmark = pytest.mark.django_db


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- pages -----------------------------------------------------------------------


def test_pricing_is_public_and_shows_quotas_and_prices(client, stripe_settings):
    stripe_settings.BILLING_PRICE_PRO_TEXT = "€19 a month"

    response = client.get(reverse("pricing"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "300 keywords per month" in html
    assert "1,000 keywords per month" in html
    assert "Unlimited keywords per month" in html
    assert "€19 a month" in html
    assert "Sign in to upgrade" in html
    assert "not configured" not in html


def test_pricing_reads_quotas_from_settings(client, settings):
    settings.KEYWORD_QUOTAS = {"FREE": 50, "PRO": 5000, "ENTERPRISE": None}

    html = client.get(reverse("pricing")).content.decode()

    assert "50 keywords per month" in html
    assert "5,000 keywords per month" in html


def test_pricing_without_stripe_keys_says_paid_plans_are_not_on_sale(
    user_client, no_stripe
):
    html = user_client.get(reverse("pricing")).content.decode()

    assert "Paid plans are not on sale yet." in html
    assert 'action="/billing/upgrade/"' not in html


def test_billing_page_requires_sign_in(client):
    response = client.get(reverse("billing"))

    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_billing_page_shows_plan_status_period_end_and_usage(client, stripe_settings):
    user = UserFactory(
        tier="PRO",
        subscription_status="active",
        subscription_plan="PRO",
        stripe_customer_id="cus_page",
        stripe_subscription_id="sub_page",
        subscription_ends_at=dt.datetime(2031, 3, 14, tzinfo=dt.UTC),
        keyword_searches_this_month=250,
    )
    client.force_login(user)
    client.get(reverse("billing_cancel"))  # settle session tracking

    # The page reads everything from request.user: no queries beyond the ones
    # every signed-in page makes (session, user, session tracking).
    with CaptureQueriesContext(connection) as baseline:
        client.get(reverse("billing_cancel"))
    with CaptureQueriesContext(connection) as page:
        response = client.get(reverse("billing"))
    assert len(page) == len(baseline)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Your plan: Pro" in html
    assert "Active" in html
    assert "Renews on <strong>Mar 14, 2031</strong>." in html
    assert "<strong>250</strong> of 1,000 keywords used this month" in html
    assert "Manage billing" in html
    # Already subscribed: plan changes go through the portal, not a new Checkout.
    assert 'action="/billing/upgrade/"' not in html


def test_billing_page_for_free_user_offers_upgrades(user_client, stripe_settings):
    html = user_client.get(reverse("billing")).content.decode()

    assert "Your plan: Free" in html
    assert "Upgrade to Pro" in html
    assert "Upgrade to Enterprise" in html
    assert "Manage billing" not in html


def test_billing_page_for_past_due_user_says_access_lasts_until_the_paid_period_end(
    client, stripe_settings
):
    user = UserFactory(
        tier="PRO",
        subscription_status="past_due",
        subscription_plan="PRO",
        stripe_customer_id="cus_due",
        stripe_subscription_id="sub_due",
        subscription_ends_at=dt.datetime(2031, 4, 14, tzinfo=dt.UTC),
        paid_until=dt.datetime(2031, 3, 14, tzinfo=dt.UTC),
    )
    client.force_login(user)

    html = client.get(reverse("billing")).content.decode()

    assert "Past due" in html
    assert "Payment failed. You keep your plan until <strong>Mar 14, 2031</strong>" in (
        html
    )
    assert "Renews on" not in html


def test_billing_page_without_stripe_keys_renders_and_says_so(user_client, no_stripe):
    response = user_client.get(reverse("billing"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Paid plans are not on sale yet." in html
    assert 'action="/billing/upgrade/"' not in html


def test_success_and_cancel_pages_render(user_client):
    assert "Thank you" in user_client.get(reverse("billing_success")).content.decode()
    assert (
        "Nothing was charged"
        in user_client.get(reverse("billing_cancel")).content.decode()
    )


# --- Checkout ----------------------------------------------------------------------


def test_upgrade_creates_checkout_session_and_redirects_to_it(client, user, stripe_api):
    client.force_login(user)

    response = client.post(reverse("billing_upgrade"), {"plan": "PRO"})

    assert response.status_code == 303
    assert response["Location"] == "https://checkout.stripe.com/c/pay/cs_test_local"
    sent = stripe_api.last("/v1/checkout/sessions")
    assert sent["authorization"] == f"Bearer {SECRET_KEY}"
    form = sent["form"]
    assert form["mode"] == "subscription"
    assert form["line_items[0][price]"] == PRICE_PRO
    assert form["line_items[0][quantity]"] == "1"
    assert form["client_reference_id"] == user.pk
    assert form["subscription_data[metadata][user_id]"] == user.pk
    # One customer per user, made before the first Checkout and kept.
    assert stripe_api.last("/v1/customers")["form"]["email"] == user.email
    user.refresh_from_db()
    assert user.stripe_customer_id.startswith("cus_test_local")
    assert form["customer"] == user.stripe_customer_id
    assert "customer_email" not in form
    assert form["success_url"] == (
        "http://testserver/billing/success/?session_id={CHECKOUT_SESSION_ID}"
    )
    assert form["cancel_url"] == "http://testserver/billing/cancel/"


def test_upgrade_reuses_the_users_stripe_customer(client, stripe_api):
    user = UserFactory(stripe_customer_id="cus_existing")
    client.force_login(user)

    response = client.post(reverse("billing_upgrade"), {"plan": "ENTERPRISE"})

    assert response.status_code == 303
    form = stripe_api.last("/v1/checkout/sessions")["form"]
    assert form["customer"] == "cus_existing"
    assert "customer_email" not in form
    assert form["line_items[0][price]"] == PRICE_ENTERPRISE


def test_upgrade_with_unknown_plan_shows_message_and_calls_nothing(
    client, user, stripe_api
):
    client.force_login(user)

    response = client.post(reverse("billing_upgrade"), {"plan": "PLATINUM"})

    assert response.status_code == 302
    assert response["Location"] == reverse("billing")
    assert _messages(response) == ["Choose the Pro or the Enterprise plan."]
    assert stripe_api.requests == []


def test_upgrade_when_already_subscribed_points_to_the_portal(client, stripe_api):
    user = UserFactory(
        stripe_customer_id="cus_sub",
        stripe_subscription_id="sub_live",
        subscription_status="active",
        tier="PRO",
    )
    client.force_login(user)

    response = client.post(reverse("billing_upgrade"), {"plan": "ENTERPRISE"})

    assert response.status_code == 302
    assert "Manage billing" in _messages(response)[0]
    assert stripe_api.requests == []


def test_upgrade_without_stripe_keys_does_nothing_harmful(user_client, no_stripe):
    response = user_client.post(reverse("billing_upgrade"), {"plan": "PRO"})

    assert response.status_code == 302
    assert response["Location"] == reverse("billing")
    assert _messages(response) == ["Billing is not configured on this site yet."]


def test_stripe_api_error_is_shown_as_a_message_not_a_500(client, user, stripe_api):
    stripe_api.error = (
        400,
        {
            "error": {
                "type": "invalid_request_error",
                "message": "No such price: 'price_test_pro'",
            }
        },
    )
    client.force_login(user)

    response = client.post(reverse("billing_upgrade"), {"plan": "PRO"})

    assert response.status_code == 302
    assert response["Location"] == reverse("billing")
    assert _messages(response)[0].startswith("Stripe could not start checkout")


def test_unreachable_stripe_is_shown_as_a_message(client, user, stripe_settings):
    stripe_settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # discard port: refused
    stripe_settings.STRIPE_TIMEOUT = 2
    client.force_login(user)

    response = client.post(reverse("billing_upgrade"), {"plan": "PRO"})

    assert response.status_code == 302
    assert _messages(response)[0].startswith("Stripe could not start checkout")


def test_upgrade_is_post_only_and_csrf_protected(stripe_api):
    user = UserFactory()
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(user)

    assert csrf_client.get(reverse("billing_upgrade")).status_code == 405
    assert (
        csrf_client.post(reverse("billing_upgrade"), {"plan": "PRO"}).status_code == 403
    )
    assert stripe_api.requests == []


def test_upgrade_requires_sign_in(client, stripe_api):
    response = client.post(reverse("billing_upgrade"), {"plan": "PRO"})

    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]
    assert stripe_api.requests == []


# --- customer portal -----------------------------------------------------------------


def test_manage_billing_creates_portal_session_and_redirects(client, stripe_api):
    user = UserFactory(stripe_customer_id="cus_portal")
    client.force_login(user)

    response = client.post(reverse("billing_portal"))

    assert response.status_code == 303
    assert response["Location"] == "https://billing.stripe.com/p/session/bps_test_local"
    sent = stripe_api.last("/v1/billing_portal/sessions")
    assert sent["authorization"] == f"Bearer {SECRET_KEY}"
    assert sent["form"] == {
        "customer": "cus_portal",
        "return_url": "http://testserver/billing/",
    }


def test_manage_billing_without_a_customer_explains_and_calls_nothing(
    client, user, stripe_api
):
    client.force_login(user)

    response = client.post(reverse("billing_portal"))

    assert response.status_code == 302
    assert "choose a plan first" in _messages(response)[0]
    assert stripe_api.requests == []


def test_portal_error_from_stripe_is_a_message(client, stripe_api):
    stripe_api.error = (
        400,
        {"error": {"type": "invalid_request_error", "message": "No such customer"}},
    )
    user = UserFactory(stripe_customer_id="cus_gone")
    client.force_login(user)

    response = client.post(reverse("billing_portal"))

    assert response.status_code == 302
    assert _messages(response)[0].startswith("Stripe could not open the billing portal")


def test_manage_billing_without_stripe_keys_does_nothing_harmful(client, no_stripe):
    user = UserFactory(stripe_customer_id="cus_portal")
    client.force_login(user)

    response = client.post(reverse("billing_portal"))

    assert response.status_code == 302
    assert _messages(response) == ["Billing is not configured on this site yet."]


def test_usage_meter_counts_a_passed_reset_date_as_a_new_month(client, stripe_settings):
    user = UserFactory(
        keyword_searches_this_month=299,
        monthly_reset_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
    )
    client.force_login(user)

    html = client.get(reverse("billing")).content.decode()

    assert "<strong>0</strong> of 300 keywords used this month" in html
