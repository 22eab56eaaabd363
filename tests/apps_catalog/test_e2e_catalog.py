import os

import pytest
from django.conf import settings
from django.test import Client

from apps_catalog import services
from apps_catalog.models import App, Requirement
from tests.accounts.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _shot(page, name):
    """Screenshots for a human look when CATALOG_SCREENSHOTS names a folder."""
    folder = os.environ.get("CATALOG_SCREENSHOTS")
    if folder:
        page.screenshot(path=f"{folder}/{name}.png", full_page=True)


def _sign_in(page, live_url, user):
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies(
        [{"name": cookie.key, "value": cookie.value, "url": live_url}]
    )


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
    _sign_in(page, live_url, grace)

    page.goto(f"{live_url}/explore/?q=habit")
    _shot(page, "explore")
    page.click("text=Habit Tracker")
    assert "Ada Builder" in page.inner_text("main")
    page.click("button:has-text('Fork')")
    page.wait_for_selector("text=Your copy is a draft")
    _shot(page, "fork_detail")
    fork = App.objects.get(owner=grace)
    assert fork.forked_from_id == original.pk
    assert "Habit Tracker" in page.inner_text(".fork-tree")

    page.click("nav[aria-label='App sections'] >> text=Requirements")
    page.select_option("td select[name=status]", "COMPLETED")
    page.wait_for_selector("text=Status changed.")
    _shot(page, "requirements_board")
    requirement = Requirement.objects.get(app=fork)
    assert (requirement.status, requirement.version) == ("COMPLETED", 2)
