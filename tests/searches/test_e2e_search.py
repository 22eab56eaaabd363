import os

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from searches.models import SavedSearch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _shot(page, name):
    """Screenshots for a human look when SEARCHES_SCREENSHOTS names a folder."""
    folder = os.environ.get("SEARCHES_SCREENSHOTS")
    if folder:
        page.screenshot(path=f"{folder}/{name}.png", full_page=True)


def _sign_in(page, live_url, user):
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies(
        [{"name": cookie.key, "value": cookie.value, "url": live_url}]
    )


def test_research_sort_and_save_keywords_in_a_real_browser(live_url, page):
    user = User.objects.create_user("kw@example.com", name="Kay Word")
    _sign_in(page, live_url, user)

    page.goto(f"{live_url}/search/")
    page.fill(
        "textarea[name=keywords]",
        "seo tools\nbuy backlinks, how to rank on google\nbest seo agency",
    )
    page.click("text=Research keywords")
    page.wait_for_selector("table#results")
    assert page.locator("table#results tbody tr").count() == 4
    assert page.locator("table#results .bar").count() == 4
    assert page.locator(".badge.sample").count() >= 1
    assert "4 of 300 keywords used" in page.inner_text(".meter")
    _shot(page, "search_results")

    page.click("table#results th >> text=CPC (USD)")
    page.wait_for_url("**sort=-cpc**")
    cpcs = [
        float(text)
        for text in page.locator(
            "table#results tbody tr td:nth-child(4)"
        ).all_inner_texts()
    ]
    assert cpcs == sorted(cpcs, reverse=True)

    page.fill("input[name=name]", "Agency research")
    page.click("text=Save search")
    page.wait_for_selector("h1:has-text('Agency research')")
    assert SavedSearch.objects.get(user=user).name == "Agency research"
    _shot(page, "saved_detail")

    page.goto(f"{live_url}/search/history/")
    page.wait_for_selector("text=Search history")
    assert page.locator("table.data tbody tr").count() == 1
    _shot(page, "history")
