import pytest

from accounts.models import User
from searches.models import SavedSearch
from tests.e2e import screenshot, sign_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_research_sort_and_save_keywords_in_a_real_browser(live_url, page):
    user = User.objects.create_user("kw@example.com", name="Kay Word")
    sign_in_browser(page, live_url, user)

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
    screenshot(page, "search_results")

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
    screenshot(page, "saved_detail")

    page.goto(f"{live_url}/search/history/")
    page.wait_for_selector("text=Search history")
    assert page.locator("table.data tbody tr").count() == 1
    screenshot(page, "history")
