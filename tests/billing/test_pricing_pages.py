"""Pricing and billing pages while paid plans cannot be bought: the plans and a
plain sentence, never a button that does nothing."""

import datetime as dt
import re

import pytest
from django.urls import reverse

from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db

RESET = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
DEAD_ENDS = ("disabled", "Not available yet", "Sign in to upgrade", "Upgrade to")


def _main(response) -> str:
    assert response.status_code == 200
    return response.content.decode().split("<main", 1)[1].split("</main>", 1)[0]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


@pytest.fixture
def free_user(db):
    return UserFactory(keyword_searches_this_month=12, monthly_reset_at=RESET)


@pytest.mark.parametrize("page", ["pricing", "billing"])
def test_without_billing_the_plans_show_without_a_dead_button(
    client, free_user, no_stripe, page
):
    client.force_login(free_user)

    main = _main(client.get(reverse(page)))

    for dead_end in DEAD_ENDS:
        assert dead_end not in main
    assert "<button" not in main.split('class="cards"', 1)[1]
    text = _text(main)
    assert (
        "Paid plans are not on sale yet. Your Free plan\N{RIGHT SINGLE QUOTATION MARK}s"
        " 300 keywords a month "
        "reset on Dec 1, 2026." in text
    )
    assert "Pro" in text and "Enterprise" in text
    assert "Billing is not configured" not in text
    assert "STRIPE_SECRET_KEY" not in text  # staff only


def test_signed_out_pricing_without_billing_has_no_sign_in_to_upgrade(
    client, no_stripe
):
    main = _main(client.get(reverse("pricing")))

    for dead_end in DEAD_ENDS:
        assert dead_end not in main
    assert "Paid plans are not on sale yet." in _text(main)


def test_staff_are_told_which_settings_sell_plans(client, no_stripe):
    client.force_login(UserFactory(role="ADMIN"))

    assert "STRIPE_SECRET_KEY" in _main(client.get(reverse("pricing")))


@pytest.mark.parametrize("page", ["pricing", "billing"])
def test_with_billing_the_upgrade_buttons_post_to_checkout(
    client, free_user, stripe_settings, page
):
    client.force_login(free_user)

    main = _main(client.get(reverse(page)))

    assert main.count('action="/billing/upgrade/"') == 2
    assert "Upgrade to Pro" in main and "Upgrade to Enterprise" in main
    assert "not on sale" not in main and "disabled" not in main


def test_signed_out_pricing_with_billing_offers_sign_in(client, stripe_settings):
    main = _main(client.get(reverse("pricing")))

    assert main.count("Sign in to upgrade") == 2
