"""Every admin page a staff member opens, in Debian's Chromium, at a laptop
(1366 x 900) and a tablet (1024 x 768) width, with long values in the data: the
page never gets wider than the window, every foreign key in a list is a link
to the related row's admin page, and axe finds no violation.

The pages are read from ``admin.site._registry`` (every registered ModelAdmin's
changelist and the change page of one of its rows), so a new admin is checked
without touching this file. Issue #17, "Layouts that fit" and "Relations
everywhere".
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from allauth.usersessions.models import UserSession
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.models import MagicLink
from core.models import AuditLog
from tests.a11y import axe_violations, horizontal_overflow, widest_elements
from tests.accounts.factories import UserFactory
from tests.apps_catalog.factories import (
    AppFactory,
    MonetizationModelFactory,
    PostFactory,
    RequirementFactory,
)
from tests.billing.factories import WebhookEventFactory
from tests.core.factories import (
    AuditLogFactory,
    FeatureFlagFactory,
    SystemMetricFactory,
)
from tests.e2e import screenshot, sign_in_browser
from tests.searches.factories import (
    APIUsageFactory,
    SavedSearchFactory,
    SearchHistoryFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = ((1366, 900), (1024, 768))
LONG_EMAIL = (
    "maximiliana.constantinopoulou-van-der-berghe.support-team@example-enterprises.com"
)
LONG_TEXT = (
    "A habit tracker for distributed teams that syncs streaks across phones, "
    "tablets, watches and the web, with reminders, weekly summaries, exports to "
    "CSV and a calendar view that shows every check-in for the whole year ahead."
)


# The models _world() makes a row of.
WORLD = {
    "accounts.user",
    "accounts.magiclink",
    "account.emailaddress",
    "socialaccount.socialaccount",
    "socialaccount.socialapp",
    "socialaccount.socialtoken",
    "usersessions.usersession",
    "mfa.authenticator",
    "apps_catalog.app",
    "apps_catalog.requirement",
    "apps_catalog.monetizationmodel",
    "apps_catalog.post",
    "searches.savedsearch",
    "searches.searchhistory",
    "searches.apiusage",
    "billing.webhookevent",
    "ops.auditlog",
    "ops.featureflag",
    "ops.systemmetric",
    "procrastinate.procrastinatejob",
}


def _world():
    """A row for every registered admin, with the long values real data has:
    a 200-character description, long emails, a long audit target, a long
    requirement."""
    owner = UserFactory(email=LONG_EMAIL, name="Maximiliana Constantinopoulou")
    app = AppFactory(
        owner=owner, name="Habit Tracker for Distributed Teams", description=LONG_TEXT
    )
    AppFactory(owner=UserFactory(), forked_from=app, name="Habit Tracker (fork)")
    RequirementFactory(app=app, description=LONG_TEXT)
    RequirementFactory(app=app, description="Export streaks as CSV")
    MonetizationModelFactory(app=app)
    PostFactory(app=app, author=owner, title=LONG_TEXT[:200])
    SavedSearchFactory(user=owner, name="Habit keywords for the Q3 launch campaign")
    SearchHistoryFactory(user=owner)
    APIUsageFactory(
        user=owner,
        endpoint="/api/v1/keywords/search/" + "x" * 120,
        user_agent="A" * 400,
    )
    AuditLogFactory(
        actor=owner,
        actor_email=LONG_EMAIL,
        action=AuditLog.Action.PROFILE_UPDATED,
        target_type="apps_catalog.App",
        target_id=str(app.pk),
        target_repr=LONG_TEXT[:255],
        user_agent="Mozilla/5.0 " + "B" * 400,
    )
    SystemMetricFactory(metric="db.response_time_ms")
    WebhookEventFactory(type="customer.subscription.updated")
    FeatureFlagFactory(key="new-explore-page", description=LONG_TEXT)
    MagicLink.objects.create(
        email=LONG_EMAIL,
        user=owner,
        token_hash=hashlib.sha256(b"browser").hexdigest(),
        expires_at=timezone.now() + dt.timedelta(minutes=10),
    )
    EmailAddress.objects.create(user=owner, email=LONG_EMAIL.lower(), primary=True)
    account = SocialAccount.objects.create(
        user=owner, provider="github", uid="1234567890"
    )
    social_app = SocialApp.objects.create(
        provider="github", name="GitHub", client_id="id", secret="s"
    )
    SocialToken.objects.create(account=account, app=social_app, token="t" * 80)
    UserSession.objects.create(
        user=owner,
        ip="127.0.0.1",
        session_key="browser-session",
        user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) " + "C" * 150,
    )
    Authenticator.objects.create(
        user=owner, type=Authenticator.Type.WEBAUTHN, data={"name": "Key"}
    )
    from core.tasks import mail_send

    mail_send.defer(sealed="sealed")


def _pages():
    """(changelist URL, change URL or None, model admin) per registered admin."""
    pages = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        try:
            changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        except NoReverseMatch:
            continue
        change = None
        try:
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=["x"])
        except NoReverseMatch:
            pass  # a report page (the database dashboard), no rows to open
        else:
            row = model._default_manager.order_by().first()
            # An admin added since _world() was written still has its list
            # checked; the ones below must have a row to open.
            assert row is not None or opts.label_lower not in WORLD, opts.label
            if row is not None:
                change = reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_change",
                    args=[quote(row.pk)],
                )
        pages.append((changelist, change, model_admin))
    return pages


def _fk_columns(model_admin) -> list[str]:
    """Foreign keys the list shows."""
    names = []
    for name in model_admin.list_display:
        try:
            field = model_admin.model._meta.get_field(name)
        except Exception:  # a method column
            continue
        if field.many_to_one or field.one_to_one:
            names.append(field.name)
    return names


def _unlinked_fk_cells(page, model_admin) -> list[str]:
    """The list's foreign-key cells that are not links to an admin page."""
    problems = []
    for name in _fk_columns(model_admin):
        cells = page.locator(
            f"#result_list td.field-{name}_link, #result_list th.field-{name}_link"
        )
        count = cells.count()
        if count == 0:
            problems.append(f"no {name} column")
            continue
        for i in range(count):
            cell = cells.nth(i)
            text = cell.inner_text().strip()
            if text in ("", "-"):
                continue
            links = cell.locator("a")
            href = links.first.get_attribute("href") if links.count() else None
            if not href or not href.startswith("/admin/"):
                problems.append(f"{name} cell {text[:30]!r} is not a link")
    return problems


def test_every_admin_page_fits_links_its_relations_and_passes_axe(
    live_url, page, admin_user
):
    _world()
    sign_in_browser(page, live_url, admin_user)
    problems = []
    visited = 0
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        for changelist, change, model_admin in _pages():
            for path in (changelist, change):
                if path is None:
                    continue
                response = page.goto(f"{live_url}{path}")
                where = f"{path} @{width}px"
                if response is None or response.status >= 400:
                    problems.append(f"{where}: HTTP {response and response.status}")
                    continue
                visited += 1
                overflow = horizontal_overflow(page)
                if overflow:
                    problems.append(
                        f"{where}: {overflow}px wider than the window "
                        f"({'; '.join(widest_elements(page))})"
                    )
                if path == changelist and page.locator("#result_list").count():
                    problems.extend(
                        f"{where}: {p}" for p in _unlinked_fk_cells(page, model_admin)
                    )
                    # At 1366 px the columns fit: the list does not even
                    # scroll inside its own box (it may on a tablet).
                    hidden = page.evaluate(
                        "() => { const r = document.querySelector('.results');"
                        " return r ? r.scrollWidth - r.clientWidth : 0; }"
                    )
                    if width == 1366 and hidden > 0:
                        problems.append(f"{where}: {hidden}px of columns hidden")
                if width == 1366:
                    problems.extend(f"{where}: {v}" for v in axe_violations(page))
                    name = path.strip("/").replace("/", "_")
                    screenshot(page, f"admin-{name}-{width}")
    assert visited >= 2 * 2 * 18, visited
    assert not problems, "\n".join(problems)
