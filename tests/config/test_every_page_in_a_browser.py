"""Every page, in Debian's Chromium, at phone and laptop widths and in both
colour themes: the page never gets wider than the window, and axe finds no
violation (any impact). Issue #16's judges, run on every `make test`.

``E2E_SCREENSHOTS=/tmp/shots make test`` also keeps a full-page screenshot of
each page per width and theme for a human look (not committed).
"""

from __future__ import annotations

import pytest

from apps_catalog import services as catalog
from apps_catalog.models import App
from tests.a11y import (
    WIDTHS,
    axe_violations,
    horizontal_overflow,
    page_defects,
    widest_elements,
)
from tests.accounts.factories import UserFactory
from tests.e2e import screenshot, sign_in_browser
from tests.searches.factories import SavedSearchFactory, SearchHistoryFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# axe runs at these widths in the light theme and at the widest in the dark one
# (contrast depends on the theme, structure does not); overflow is checked at
# every width.
AXE_LIGHT_WIDTHS = (390, 1366)
AXE_DARK_WIDTHS = (1366,)


def _world():
    """An owner with an app and everything hanging off it, a forker, and a
    search history: enough rows for every page to render its full layout."""
    ada = UserFactory(name="Ada Builder")
    app = catalog.app_create(
        owner=ada,
        name="Habit Tracker",
        description="Track habits, streaks and reminders across every device you own.",
        status=App.Status.ACTIVE,
    )
    requirement = catalog.requirement_create(
        app=app, actor=ada, description="Daily check-in reminder", priority="HIGH"
    )
    catalog.requirement_create(
        app=app, actor=ada, description="Export streaks as CSV", priority="LOW"
    )
    model = catalog.monetization_create(
        app=app,
        actor=ada,
        type="SUBSCRIPTION",
        price="4.99",
        subscription_interval="MONTHLY",
        features=["Sync", "Reminders"],
    )
    post = catalog.post_create(
        app=app, author=ada, title="Launch week", content="We launched today."
    )
    grace = UserFactory(name="Grace Forker")
    catalog.app_fork(app=app, actor=grace)
    saved = SavedSearchFactory(user=ada, name="Habit keywords")
    history = SearchHistoryFactory(
        user=ada,
        keywords=["habit tracker", "streak app", "daily habits", "habit app free"],
    )
    for _ in range(3):
        SearchHistoryFactory(user=ada)
    return {
        "ada": ada,
        "app": app,
        "requirement": requirement,
        "model": model,
        "post": post,
        "saved": saved,
        "history": history,
    }


def _owner_pages(w):
    a = w["app"].pk
    return [
        "/",
        "/explore/",
        "/pricing/",
        "/account/",
        "/account/name/",
        "/account/delete/",
        "/accounts/sessions/",
        "/accounts/3rdparty/",
        "/accounts/2fa/",
        "/account/api-keys/",
        "/apps/",
        "/apps/new/",
        f"/apps/{a}/",
        f"/apps/{a}/edit/",
        f"/apps/{a}/archive/",
        f"/apps/{a}/delete/",
        f"/apps/{a}/requirements/",
        f"/apps/{a}/requirements/{w['requirement'].pk}/edit/",
        f"/apps/{a}/monetization/",
        f"/apps/{a}/monetization/{w['model'].pk}/edit/",
        f"/apps/{a}/posts/",
        f"/apps/{a}/posts/{w['post'].pk}/edit/",
        "/search/",
        "/search/saved/",
        f"/search/saved/{w['saved'].pk}/",
        "/search/history/",
        f"/search/history/{w['history'].pk}/",
        "/billing/",
    ]


def _public_pages(w):
    return [
        "/",
        "/explore/",
        "/explore/?q=habit",
        "/explore/?sort=nonsense&type=bogus",
        "/pricing/",
        "/search/",
        "/accounts/login/",
        f"/apps/{w['app'].pk}/",
        f"/apps/{w['app'].pk}/requirements/",
        "/no-such-page/",
    ]


def _staff_pages(w):
    return [
        "/admin/",
        "/admin/accounts/user/",
        f"/admin/accounts/user/{w['ada'].pk}/change/",
        "/admin/apps_catalog/app/",
        f"/admin/apps_catalog/app/{w['app'].pk}/change/",
        "/admin/searches/searchhistory/",
        "/admin/ops/auditlog/",
    ]


def _check_pages(page, live_url, paths, label):
    problems = []
    for theme in ("light", "dark"):
        page.context.add_cookies([{"name": "theme", "value": theme, "url": live_url}])
        for width in WIDTHS:
            if theme == "dark" and width == 360:
                continue
            page.set_viewport_size(
                {"width": width, "height": 844 if width < 800 else 900}
            )
            for path in paths:
                response = page.goto(f"{live_url}{path}")
                where = f"{label} {path} @{width}px {theme}"
                if response is None or response.status >= 500:
                    problems.append(f"{where}: HTTP {response and response.status}")
                    continue
                overflow = horizontal_overflow(page)
                if overflow:
                    problems.append(
                        f"{where}: {overflow}px wider than the window "
                        f"({'; '.join(widest_elements(page))})"
                    )
                axe_widths = AXE_LIGHT_WIDTHS if theme == "light" else AXE_DARK_WIDTHS
                if width in axe_widths:
                    problems.extend(f"{where}: {v}" for v in axe_violations(page))
                if width == 1366 and theme == "light" and "/admin/" not in path:
                    problems.extend(f"{where}: {d}" for d in page_defects(page))
                if width != 360:
                    name = path.strip("/").replace("/", "_").replace("?", "_") or "home"
                    screenshot(page, f"{label}-{name}-{width}-{theme}")
    assert not problems, "\n".join(problems)


def test_public_pages_fit_and_pass_axe(live_url, page):
    w = _world()
    _check_pages(page, live_url, _public_pages(w), "public")


def test_signed_in_pages_fit_and_pass_axe(live_url, page):
    w = _world()
    sign_in_browser(page, live_url, w["ada"])
    _check_pages(page, live_url, _owner_pages(w), "owner")


def test_staff_pages_fit_and_pass_axe(live_url, page, admin_user):
    w = _world()
    sign_in_browser(page, live_url, admin_user)
    _check_pages(page, live_url, _staff_pages(w), "staff")


def test_form_errors_and_messages_pass_axe(live_url, page):
    """The states the page list does not reach: a form with errors next to its
    fields, and a flash message after an action."""
    w = _world()
    sign_in_browser(page, live_url, w["ada"])
    problems = []
    for theme in ("light", "dark"):
        page.context.add_cookies([{"name": "theme", "value": theme, "url": live_url}])
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{live_url}/apps/new/")
        page.click("main button[type=submit]")
        page.wait_for_selector("main .errorlist")
        problems.extend(f"form errors {theme}: {v}" for v in axe_violations(page))
        problems.extend(f"form errors {theme}: {d}" for d in page_defects(page))

        page.goto(f"{live_url}/search/saved/{w['saved'].pk}/")
        page.fill("input[name=name]", f"Renamed {theme}")
        page.click("form[action$='/rename/'] button[type=submit]")
        page.wait_for_selector(".messages li")
        problems.extend(f"message {theme}: {v}" for v in axe_violations(page))
        if horizontal_overflow(page):
            problems.append(f"message {theme}: overflow")
    assert not problems, "\n".join(problems)
