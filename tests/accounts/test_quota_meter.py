"""The usage meter near and at the quota (colour and words, an accessible
name) and where a refused search can go, with and without paid plans on sale."""

import base64
import datetime as dt
import re

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.selectors import upgrades_available, usage_for
from billing.stripe_api import billing_configured
from tests.accounts.factories import UserFactory
from tests.e2e import screenshot, sign_in_browser

LIMIT = 300  # the FREE quota in the test settings
RESET = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.fixture
def on_sale(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_meter"
    settings.STRIPE_PRICE_PRO = "price_pro"
    settings.STRIPE_PRICE_ENTERPRISE = "price_enterprise"
    return settings


@pytest.fixture
def not_on_sale(settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_PRICE_PRO = ""
    settings.STRIPE_PRICE_ENTERPRISE = ""
    return settings


def _user(used, **extra):
    return UserFactory(
        keyword_searches_this_month=used,
        monthly_reset_at=timezone.now() + dt.timedelta(days=5),
        **extra,
    )


def _meter(user, **context):
    return render_to_string("_usage_meter.html", {"usage": usage_for(user), **context})


def _text(html):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("used", "css", "words"),
    [
        (int(LIMIT * 0.79), 'class="meter"', None),
        (int(LIMIT * 0.8), 'class="meter meter-near"', "Almost at your monthly limit."),
        (LIMIT, 'class="meter meter-full"', "Monthly limit reached."),
    ],
)
def test_meter_colour_always_comes_with_words(used, css, words):
    html = _meter(_user(used))

    assert css in html
    if words is None:
        assert "limit reached" not in html and "Almost at" not in html
    else:
        assert words in _text(html)


@pytest.mark.django_db
def test_meter_progress_has_an_accessible_name_from_a_real_id():
    html = _meter(_user(10))

    labelledby = re.search(r'<progress[^>]*aria-labelledby="([^"]+)"', html).group(1)
    label = re.search(rf'id="{labelledby}"[^>]*>([^<]+)<', html).group(1)
    assert label == "Keyword usage this month"
    describedby = re.search(r'<progress[^>]*aria-describedby="([^"]+)"', html).group(1)
    assert f'id="{describedby}"' in html


@pytest.mark.django_db
def test_two_meters_on_one_page_get_distinct_ids():
    user = _user(10)
    ids = re.findall(
        r'id="([^"]+)"', _meter(user) + _meter(user, meter_id="other-meter")
    )

    assert len(ids) == len(set(ids)) == 4


@pytest.mark.django_db
def test_unlimited_meter_is_named_too(settings):
    settings.KEYWORD_QUOTAS = {**settings.KEYWORD_QUOTAS, "ENTERPRISE": None}
    html = _meter(_user(10, tier="ENTERPRISE"))

    assert "unlimited plan" in html
    assert 'aria-labelledby="usage-meter-label"' in html


@pytest.mark.django_db
def test_meter_offers_an_upgrade_only_when_a_plan_can_be_bought(settings):
    user = _user(LIMIT)
    settings.STRIPE_SECRET_KEY = ""
    assert "Upgrade for more" not in _meter(user)
    settings.STRIPE_SECRET_KEY = "sk"
    settings.STRIPE_PRICE_PRO = "p1"
    settings.STRIPE_PRICE_ENTERPRISE = "p2"
    assert "Upgrade for more" in _meter(user)


@pytest.mark.parametrize("key", ["", "sk"])
@pytest.mark.parametrize("pro", ["", "p1"])
@pytest.mark.parametrize("enterprise", ["", "p2"])
def test_accounts_and_billing_agree_on_whether_plans_are_on_sale(
    settings, key, pro, enterprise
):
    settings.STRIPE_SECRET_KEY = key
    settings.STRIPE_PRICE_PRO = pro
    settings.STRIPE_PRICE_ENTERPRISE = enterprise

    assert upgrades_available() is billing_configured()


def _refused(client, user):
    client.force_login(user)
    response = client.post(
        reverse("search"),
        {"keywords": "a, b", "location": "US", "language": "en", "match_type": "broad"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    refused = re.search(r'<article class="quota-refused".*?</article>', html, re.S)
    assert refused, "no refusal message"
    return refused.group(0)


@pytest.mark.django_db
def test_over_quota_links_to_the_plans_when_they_are_on_sale(client, on_sale):
    message = _refused(client, _user(LIMIT - 1))

    assert '<a href="/pricing/" role="button">See plans</a>' in message
    assert "Your limit resets on" in message


@pytest.mark.django_db
def test_over_quota_without_billing_says_when_the_limit_resets(client, not_on_sale):
    user = _user(LIMIT - 1)
    user.monthly_reset_at = RESET
    user.save(update_fields=["monthly_reset_at"])

    message = _text(_refused(client, user))

    assert "Your limit resets on Dec 1, 2026." in message
    assert "href" not in _refused(client, user)
    assert "Upgrade" not in message and "See plans" not in message


def _bar_colour(page) -> tuple[int, int, int]:
    """The colour of the meter's filled part as painted: a screenshot of the
    <progress>, read back through a canvas on a blank page (no CSP there)."""
    png = page.locator(".meter progress").screenshot()
    reader = page.context.new_page()
    try:
        return tuple(
            reader.evaluate(
                """async (data) => {
                  const img = new Image();
                  img.src = "data:image/png;base64," + data;
                  await img.decode();
                  const canvas = document.createElement("canvas");
                  canvas.width = img.width; canvas.height = img.height;
                  const ctx = canvas.getContext("2d");
                  ctx.drawImage(img, 0, 0);
                  // A quarter in: filled at 79 % and at 100 % alike.
                  const x = Math.floor(img.width / 4), y = Math.floor(img.height / 2);
                  return Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3));
                }""",
                base64.b64encode(png).decode(),
            )
        )
    finally:
        reader.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_meter_turns_amber_near_and_red_at_the_limit(live_url, page):
    page.set_viewport_size({"width": 1366, "height": 900})
    colours, texts = {}, {}
    for used in (int(LIMIT * 0.79), int(LIMIT * 0.8), LIMIT):
        page.context.clear_cookies()
        sign_in_browser(page, live_url, _user(used))
        page.goto(f"{live_url}/search/")
        colours[used], texts[used] = _bar_colour(page), page.inner_text(".meter")
        name = page.locator(".meter progress").get_attribute("aria-labelledby")
        assert page.inner_text(f"#{name}") == "Keyword usage this month"
    screenshot(page, "meter_full")

    normal, near, full = colours.values()
    assert len({normal, near, full}) == 3, colours
    # app.css: amber #c77c02, red #c62828 (antialiasing aside).
    assert all(abs(a - b) <= 3 for a, b in zip(near, (199, 124, 2), strict=True))
    assert all(abs(a - b) <= 3 for a, b in zip(full, (198, 40, 40), strict=True))
    normal_text, near_text, full_text = texts.values()
    assert "limit" not in normal_text
    assert "Almost at your monthly limit." in near_text
    assert "Monthly limit reached." in full_text
