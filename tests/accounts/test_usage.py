"""One rule for the keyword usage meter (accounts.selectors.usage_for), rendered
the same on every page that shows it."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.selectors import NEAR_LIMIT_RATIO, usage_for
from tests.accounts.factories import UserFactory

METER_PAGES = ["account", "search", "billing", "searches:saved", "searches:history"]


def _meter_text(html: str) -> str:
    meter = re.search(r'<div class="meter[^"]*".*?</div>', html, re.S)
    assert meter, "no usage meter on the page"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", meter.group(0))).strip()


@pytest.fixture
def lapsed_pro(db):
    """PRO, past_due with the paid period over, monthly reset date passed."""
    now = timezone.now()
    return UserFactory(
        tier=User.Tier.PRO,
        subscription_status="past_due",
        stripe_subscription_id="sub_lapsed",
        subscription_ends_at=now + dt.timedelta(days=28),
        paid_until=now - dt.timedelta(days=2),
        keyword_searches_this_month=250,
        monthly_reset_at=now - dt.timedelta(days=1),
    )


def test_a_lapsed_past_due_pro_reads_zero_of_the_free_quota(lapsed_pro):
    usage = usage_for(lapsed_pro)

    assert (usage.used, usage.limit) == (0, 300)
    assert usage.reset_at > timezone.now()


@pytest.mark.parametrize("page", METER_PAGES)
def test_every_page_renders_the_same_meter(client, lapsed_pro, page):
    client.force_login(lapsed_pro)

    response = client.get(reverse(page))

    assert response.status_code == 200
    assert "0 of 300 keywords used this month" in _meter_text(response.content.decode())


@pytest.mark.parametrize("page", METER_PAGES)
def test_the_near_limit_rule_decides_the_upgrade_link_everywhere(
    client, db, page, settings
):
    # A paid plan can be bought (accounts.selectors.upgrades_available).
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    settings.STRIPE_PRICE_PRO = "price_pro"
    settings.STRIPE_PRICE_ENTERPRISE = "price_ent"
    limit = 300
    near = int(limit * NEAR_LIMIT_RATIO)
    below = UserFactory(
        keyword_searches_this_month=near - 1,
        monthly_reset_at=timezone.now() + dt.timedelta(days=5),
    )
    at = UserFactory(
        keyword_searches_this_month=near,
        monthly_reset_at=timezone.now() + dt.timedelta(days=5),
    )

    client.force_login(below)
    assert "Upgrade for more" not in _meter_text(client.get(reverse(page)).text)
    client.force_login(at)
    meter = client.get(reverse(page)).text
    assert "Upgrade for more" in _meter_text(meter)
    assert 'class="meter meter-near"' in meter
