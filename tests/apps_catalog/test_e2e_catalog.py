import pytest

from apps_catalog import services
from apps_catalog.models import App, Requirement
from tests.accounts.factories import UserFactory
from tests.e2e import screenshot, sign_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_explore_fork_and_move_a_requirement_in_a_real_browser(live_url, page):
    ada = UserFactory(name="Ada Builder")
    original = services.app_create(
        owner=ada,
        name="Habit Tracker",
        description="Track habits and streaks.",
        status=App.Status.ACTIVE,
    )
    services.requirement_create(
        app=original, actor=ada, description="Daily check-in", priority="HIGH"
    )
    services.monetization_create(
        app=original,
        actor=ada,
        type="SUBSCRIPTION",
        price="4.99",
        subscription_interval="MONTHLY",
        features=["Sync"],
    )
    grace = UserFactory(name="Grace Forker")
    sign_in_browser(page, live_url, grace)

    page.goto(f"{live_url}/explore/?q=habit")
    screenshot(page, "explore")
    page.click("text=Habit Tracker")
    assert "Ada Builder" in page.inner_text("main")
    page.click("button:has-text('Fork')")
    page.wait_for_selector("text=Your copy is a draft")
    screenshot(page, "fork_detail")
    fork = App.objects.get(owner=grace)
    assert fork.forked_from_id == original.pk
    assert "Habit Tracker" in page.inner_text("nav[aria-label='Fork path']")
    assert fork.name == "Habit Tracker (fork)"

    page.click("nav[aria-label='App sections'] >> text=Requirements")
    page.get_by_role("button", name="Move “Daily check-in” to Completed").click()
    page.wait_for_selector("text=Moved “Daily check-in” to Completed.")
    screenshot(page, "requirements_board")
    requirement = Requirement.objects.get(app=fork)
    assert (requirement.status, requirement.version) == ("COMPLETED", 2)
