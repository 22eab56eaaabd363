"""History in a real browser: the per-day chart and paging both ways."""

import datetime as dt
import os

import pytest
from django.utils import timezone

from tests.accounts.factories import UserFactory
from tests.e2e import screenshot, sign_in_browser
from tests.searches.factories import SearchHistoryFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"


def _history(user, n, *, start):
    keywords = [f"keyword {i}" for i in range(12)]
    for i in range(n):
        SearchHistoryFactory(
            user=user,
            keywords=[f"search {i}", *keywords[: 1 + i % 12]],
            keyword_count=2 + i % 12,
            searched_at=start - dt.timedelta(hours=7 * i),
        )


def test_history_chart_and_paging_newer_and_older(live_url, page):
    user = UserFactory()
    _history(user, 120, start=timezone.now())
    sign_in_browser(page, live_url, user)
    page.set_viewport_size({"width": 1366, "height": 900})

    page.goto(f"{live_url}/search/history/")
    chart = page.locator("figure.day-chart svg[role=img]")
    name = chart.get_attribute("aria-labelledby")
    summary = page.locator(f"#{name}").text_content()
    assert summary.startswith("Keywords searched per day, last 30 days: ")
    assert "busiest" in summary
    bars = page.locator("figure.day-chart rect.chart-bar")
    assert bars.count() == 30  # a search every 7 hours: every day has some
    fill = bars.first.evaluate("el => getComputedStyle(el).fill")
    primary = page.evaluate(
        "getComputedStyle(document.documentElement)"
        ".getPropertyValue('--pico-primary').trim()"
    )
    assert fill not in ("", "none", "rgb(0, 0, 0)"), (fill, primary)
    headers = page.locator("table.history-table thead th").all_inner_texts()
    assert headers[0] == "Keywords"
    assert not any("ms" in h.lower().split() or "Time" in h for h in headers)
    assert page.evaluate(OVERFLOW)
    screenshot(page, "history_desktop")
    first_page = page.locator("table.history-table tbody tr").all_inner_texts()
    assert "search 0," in first_page[0]
    assert page.locator("text=← Newer").count() == 0

    page.click("text=Older →")
    page.wait_for_url("**before=*")
    second_page = page.locator("table.history-table tbody tr").all_inner_texts()
    assert second_page[0] != first_page[0] and "search 50," in second_page[0]
    page.click("text=Older →")
    page.wait_for_url("**before=*")
    third_page = page.locator("table.history-table tbody tr").all_inner_texts()
    assert len(third_page) == 20
    assert page.locator("text=Older →").count() == 0

    page.click("text=← Newer")
    page.wait_for_url("**after=*")
    assert page.locator("table.history-table tbody tr").all_inner_texts() == second_page
    page.click("text=← Newer")
    assert page.locator("table.history-table tbody tr").all_inner_texts() == first_page
    assert page.locator("text=← Newer").count() == 0

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_url}/search/history/")
    assert page.evaluate(OVERFLOW)
    screenshot(page, "history_phone")
    if os.environ.get("E2E_SCREENSHOTS"):
        page.screenshot(path=f"{os.environ['E2E_SCREENSHOTS']}/history_phone_top.png")
    page.set_viewport_size({"width": 360, "height": 800})
    assert page.evaluate(OVERFLOW)
    page.emulate_media(color_scheme="dark")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_url}/search/history/")
    screenshot(page, "history_desktop_dark")
