"""Support impersonation (accounts.impersonation, django-hijack): only an ADMIN
with a second factor, only of an active USER; a banner with Stop on every site
page meanwhile; start and end in the audit log; no admin for the impersonated
session."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.models import AuditLog
from tests.a11y import axe_violations, horizontal_overflow, widest_elements
from tests.accounts.factories import UserFactory
from tests.e2e import screenshot, sign_in_browser

ACQUIRE = reverse("hijack:acquire")
RELEASE = reverse("hijack:release")
BANNER = "(impersonating)"


def _session_user_id(client) -> str | None:
    return client.session.get(SESSION_KEY)


def _acquire(client, target, next_url="/"):
    return client.post(ACQUIRE, {"user_pk": target.pk, "next": next_url})


def _impersonation_rows():
    return AuditLog.objects.filter(
        action__in=[
            AuditLog.Action.IMPERSONATION_STARTED,
            AuditLog.Action.IMPERSONATION_ENDED,
        ]
    )


@pytest.mark.django_db
def test_admin_impersonates_a_user_and_stops(admin_client, admin_user, user):
    response = _acquire(admin_client, user)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert _session_user_id(admin_client) == str(user.pk)
    started = AuditLog.objects.get(action=AuditLog.Action.IMPERSONATION_STARTED)
    assert started.actor_id == admin_user.pk
    assert started.actor_email == admin_user.email
    assert (started.target_type, started.target_id) == ("accounts.User", user.pk)
    # The impersonator's own row does not name them twice.
    assert "impersonated_by" not in started.changes
    assert started.changes["impersonation_id"]
    assert "expires_at" in started.changes
    # Impersonating is not the user's own sign-in.
    user.refresh_from_db()
    assert user.last_login is None

    page = admin_client.get(reverse("account"))
    assert page.status_code == 200
    assert page.context["user"].pk == user.pk
    html = page.content.decode()
    assert "You are signed in as" in html and BANNER in html
    assert user.display_name in html
    assert f'action="{RELEASE}"' in html
    assert "css/impersonation.css" in html

    back_to = reverse("admin:accounts_user_change", args=[user.pk])
    response = admin_client.post(RELEASE, {"next": back_to})
    assert response.status_code == 302
    assert response["Location"] == back_to
    assert _session_user_id(admin_client) == str(admin_user.pk)
    ended = AuditLog.objects.get(action=AuditLog.Action.IMPERSONATION_ENDED)
    assert ended.actor_id == admin_user.pk
    assert ended.target_id == user.pk
    assert ended.changes == {
        "ended_by": "stop",
        "impersonation_id": started.changes["impersonation_id"],
    }

    # Back in the admin, and no banner any more.
    assert admin_client.get(back_to).status_code == 200
    assert BANNER not in admin_client.get("/").content.decode()


@pytest.mark.django_db
def test_audit_rows_written_while_impersonating_name_the_admin(
    admin_client, admin_user, user
):
    _acquire(admin_client, user)
    admin_client.post(reverse("account_profile"), {"name": "Renamed by support"})
    row = AuditLog.objects.get(action=AuditLog.Action.PROFILE_UPDATED)
    # The change is the user's account's, made by the admin.
    assert row.actor_id == user.pk
    assert row.changes["impersonated_by"] == admin_user.email
    assert row.changes["impersonated_by_id"] == admin_user.pk
    assert row.changes["name"][1] == "Renamed by support"


@pytest.mark.django_db
def test_signing_out_while_impersonating_ends_it_in_the_audit_log(
    admin_client, admin_user, user
):
    _acquire(admin_client, user)
    response = admin_client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert _session_user_id(admin_client) is None
    ended = AuditLog.objects.get(action=AuditLog.Action.IMPERSONATION_ENDED)
    assert (ended.actor_id, ended.target_id) == (admin_user.pk, user.pk)
    started = AuditLog.objects.get(action=AuditLog.Action.IMPERSONATION_STARTED)
    assert ended.changes == {
        "ended_by": "sign_out",
        "impersonation_id": started.changes["impersonation_id"],
    }
    sign_out = AuditLog.objects.get(action=AuditLog.Action.SIGN_OUT)
    assert sign_out.actor_id == user.pk
    assert sign_out.changes["impersonated_by"] == admin_user.email


@pytest.mark.django_db
def test_an_impersonation_past_its_time_signs_the_session_out(
    admin_client, admin_user, user, settings
):
    _acquire(admin_client, user)
    session = admin_client.session
    session["impersonation"]["expires_at"] = time.time() - 1
    session.save()

    response = admin_client.get(reverse("account"))

    assert response.status_code == 302
    assert response["Location"] == reverse("account_login")
    assert _session_user_id(admin_client) is None
    page = admin_client.get(response["Location"])
    assert "The impersonation ended after 60 minutes" in page.content.decode()
    started = AuditLog.objects.get(action=AuditLog.Action.IMPERSONATION_STARTED)
    (ended,) = AuditLog.objects.filter(action=AuditLog.Action.IMPERSONATION_ENDED)
    assert (ended.actor_id, ended.target_id) == (admin_user.pk, user.pk)
    assert ended.changes == {
        "ended_by": "expired",
        "impersonation_id": started.changes["impersonation_id"],
    }


@pytest.mark.django_db
def test_an_impersonation_nobody_ended_gets_its_end_row_from_the_job(
    admin_client, admin_user, user, other_user, settings
):
    from accounts.services import impersonations_expired_end

    _acquire(admin_client, user)  # the browser is then closed: nothing ends it
    stopped = Client()
    stopped.force_login(admin_user)
    _acquire(stopped, other_user)
    stopped.post(RELEASE)
    later = timezone.now() + dt.timedelta(minutes=61)

    assert impersonations_expired_end(now=timezone.now()) == 0  # not over yet
    assert impersonations_expired_end(now=later) == 1
    assert impersonations_expired_end(now=later) == 0  # once

    started = AuditLog.objects.get(
        action=AuditLog.Action.IMPERSONATION_STARTED, target_id=user.pk
    )
    ended = AuditLog.objects.get(
        action=AuditLog.Action.IMPERSONATION_ENDED, target_id=user.pk
    )
    assert ended.actor_id == admin_user.pk
    assert ended.changes == {
        "ended_by": "expired",
        "impersonation_id": started.changes["impersonation_id"],
    }


@pytest.mark.django_db
def test_the_impersonated_session_never_reaches_the_admin(admin_client, user):
    _acquire(admin_client, user)
    # Even if another admin promotes the user meanwhile.
    user.role = "ADMIN"
    user.save(update_fields=["role"])
    for path in (reverse("admin:index"), reverse("admin:accounts_user_changelist")):
        response = admin_client.get(path)
        assert response.status_code == 403
        assert BANNER in response.content.decode()


@pytest.mark.django_db
def test_a_non_admin_cannot_impersonate(client, user, other_user):
    client.force_login(user)
    response = _acquire(client, other_user)
    assert response.status_code == 403
    assert _session_user_id(client) == str(user.pk)
    assert not _impersonation_rows().exists()


@pytest.mark.django_db
def test_an_admin_without_a_second_factor_cannot_impersonate(client, user):
    admin = UserFactory(role="ADMIN")
    client.force_login(admin)
    assert _acquire(client, user).status_code == 403
    assert _session_user_id(client) == str(admin.pk)
    assert not _impersonation_rows().exists()


@pytest.mark.parametrize(
    "target",
    ["another admin", "an inactive admin", "an inactive user", "themselves"],
)
@pytest.mark.django_db
def test_nobody_impersonates_an_admin_an_inactive_user_or_themselves(
    admin_client, admin_user, target
):
    victim = {
        "another admin": lambda: UserFactory(role="ADMIN"),
        "an inactive admin": lambda: UserFactory(role="ADMIN", is_active=False),
        "an inactive user": lambda: UserFactory(is_active=False),
        "themselves": lambda: admin_user,
    }[target]()
    response = _acquire(admin_client, victim)
    assert response.status_code == 403
    assert _session_user_id(admin_client) == str(admin_user.pk)
    assert not _impersonation_rows().exists()
    # The user's page offers no button either.
    page = admin_client.get(reverse("admin:accounts_user_change", args=[victim.pk]))
    assert ACQUIRE not in page.content.decode()


@pytest.mark.django_db
def test_the_admin_user_page_offers_impersonate_for_a_user(admin_client, user):
    page = admin_client.get(reverse("admin:accounts_user_change", args=[user.pk]))
    html = page.content.decode()
    assert f'action="{ACQUIRE}"' in html
    assert f'name="user_pk" value="{user.pk}"' in html
    assert ">Impersonate</button>" in html


@pytest.mark.django_db
def test_acquire_needs_post_and_a_csrf_token(admin_user, user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    # GET, even with the id in the query string, does nothing.
    assert client.get(ACQUIRE, {"user_pk": user.pk}).status_code in (400, 405)
    # POST without the token: refused by CSRF.
    assert _acquire(client, user).status_code == 403
    assert _session_user_id(client) == str(admin_user.pk)
    assert not _impersonation_rows().exists()


@pytest.mark.django_db
def test_bad_input_is_a_clear_answer_not_a_500(admin_client, admin_user):
    assert admin_client.post(ACQUIRE, {}).status_code == 400
    assert admin_client.post(ACQUIRE, {"user_pk": "nope"}).status_code == 404
    assert admin_client.post(ACQUIRE, {"user_pk": "x" * 5000}).status_code == 404
    # An open redirect in "next" is dropped for the default.
    other = UserFactory()
    response = _acquire(admin_client, other, next_url="https://evil.example/")
    assert response.status_code == 302
    assert response["Location"] == "/"
    # Stop without an impersonation: refused, nothing changes.
    admin_client.post(RELEASE)  # ends the one above
    assert _session_user_id(admin_client) == str(admin_user.pk)
    assert admin_client.post(RELEASE).status_code == 403
    assert admin_client.get(RELEASE).status_code in (403, 405)
    assert _session_user_id(admin_client) == str(admin_user.pk)


@pytest.mark.django_db
def test_anonymous_visitors_cannot_impersonate(client, user):
    response = _acquire(client, user)
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]
    assert _session_user_id(client) is None
    assert not _impersonation_rows().exists()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_impersonate_from_the_admin_and_stop_in_a_browser(page, live_url, admin_user):
    customer = UserFactory(
        name="Customer with a rather long display name for a phone screen"
    )
    sign_in_browser(page, live_url, admin_user)
    change_url = reverse("admin:accounts_user_change", args=[customer.pk])
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(live_url + change_url)
    screenshot(page, "impersonation-admin-button")
    page.get_by_role("button", name="Impersonate").click()
    page.wait_for_url(live_url + "/")

    banner = page.locator(".impersonation-banner")
    problems = []
    for theme in ("light", "dark"):
        page.context.add_cookies([{"name": "theme", "value": theme, "url": live_url}])
        for width in (360, 390, 1366):
            page.set_viewport_size({"width": width, "height": 800})
            page.goto(live_url + reverse("account"))
            where = f"{width}px {theme}"
            screenshot(page, f"impersonation-banner-{width}-{theme}")
            if not banner.is_visible():
                problems.append(f"{where}: no banner")
            text = banner.inner_text()
            if "You are signed in as" not in text or customer.name not in text:
                problems.append(f"{where}: banner says {text!r}")
            if horizontal_overflow(page):
                problems.append(f"{where}: overflow {widest_elements(page)}")
            if width in (390, 1366):
                problems.extend(f"{where}: {v}" for v in axe_violations(page))
    assert not problems, "\n".join(problems)

    # From the keyboard: the skip link, then Stop.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.textContent.trim()")
    assert focused.startswith("Stop")
    page.keyboard.press("Enter")
    page.wait_for_url(live_url + change_url)
    assert page.locator(".impersonation-banner").count() == 0
    assert page.get_by_role("button", name="Impersonate").is_visible()
    rows = list(
        _impersonation_rows().order_by("created_at").values_list("action", "actor_id")
    )
    assert rows == [
        (AuditLog.Action.IMPERSONATION_STARTED, admin_user.pk),
        (AuditLog.Action.IMPERSONATION_ENDED, admin_user.pk),
    ]


@pytest.mark.django_db
def test_the_support_browser_is_not_listed_among_the_users_sessions(admin_client, user):
    from allauth.usersessions.models import UserSession

    _acquire(admin_client, user)
    admin_client.get(reverse("account"), headers={"User-Agent": "support-browser"})
    assert not UserSession.objects.filter(user=user).exists()


@pytest.mark.django_db
def test_a_browser_returning_after_the_job_ended_it_adds_no_second_end_row(
    admin_client, user
):
    from accounts.services import impersonations_expired_end

    _acquire(admin_client, user)
    session = admin_client.session
    session["impersonation"]["expires_at"] = time.time() - 1
    session.save()
    assert impersonations_expired_end(now=timezone.now() + dt.timedelta(minutes=61))

    response = admin_client.get(reverse("account"))

    assert response["Location"] == reverse("account_login")  # still signed out
    assert (
        AuditLog.objects.filter(action=AuditLog.Action.IMPERSONATION_ENDED).count() == 1
    )
