"""Two-factor authentication (allauth.mfa): the admin's gate, the second step
after a magic-link or OAuth sign-in, enrolment and its audit trail, secrets at
rest, and the allauth pages that stay closed without SOCIALACCOUNT_ONLY."""

import re
import time

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
)
from allauth.mfa.utils import decrypt
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from core.models import AuditLog
from tests.accounts.factories import UserFactory
from tests.accounts.helpers import last_link, request_link
from tests.accounts.test_oauth import (  # the fake Google/GitHub fixture
    GOOGLE_ID,
    oauth_round_trip,
    providers,  # noqa: F401
)
from tests.jobs import jobs_run_queued

MFA_AUTHENTICATE = "/accounts/2fa/authenticate/"
MFA_INDEX = "/accounts/2fa/"
TOTP_ACTIVATE = "/accounts/2fa/totp/activate/"
TOTP_DEACTIVATE = "/accounts/2fa/totp/deactivate/"


@pytest.fixture(autouse=True)
def _one_step_tolerance(settings):
    """A code computed just before a 30-second boundary still passes after it."""
    settings.MFA_TOTP_TOLERANCE = 1


def totp_code(secret: str, offset: int = 0) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30 + offset))


def wrong_code(secret: str) -> str:
    valid = {totp_code(secret, offset) for offset in (-1, 0, 1)}
    return next(
        code for code in (f"{n:06d}" for n in range(1_000_000)) if code not in valid
    )


def enrol_totp(user) -> str:
    """An authenticator app and recovery codes, as allauth's activation makes."""
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    RecoveryCodes.activate(user)
    return secret


def signed_in(client):
    return client.session.get(SESSION_KEY)


def redeem_link(client, user, django_capture_on_commit_callbacks):
    request_link(client, user.email)
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(last_link(to=user.email))


def fresh_sign_in(user, django_capture_on_commit_callbacks) -> Client:
    """A browser signed in just now through the real magic-link flow."""
    browser = Client()
    response = redeem_link(browser, user, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert signed_in(browser) == user.pk
    return browser


def sign_in_rows(user):
    return list(
        AuditLog.objects.filter(action=AuditLog.Action.SIGN_IN, actor=user)
        .order_by("created_at")
        .values_list("changes", flat=True)
    )


# --- the admin's gate -------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/accounts/user/", "/admin/ops/auditlog/", "/admin/x/"]
)
def test_admin_without_a_factor_is_sent_to_enrol(client, db, path):
    admin = UserFactory(role="ADMIN")
    client.force_login(admin)

    response = client.get(path, follow=True)

    assert response.redirect_chain == [(MFA_INDEX, 302)]
    assert response.status_code == 200
    html = response.content.decode()
    assert "The admin needs two-factor authentication" in html
    assert "Authenticator App" in html


def test_admin_without_a_factor_can_still_sign_out(client, db):
    client.force_login(UserFactory(role="ADMIN"))
    assert client.get("/admin/logout/").status_code == 200
    assert client.post("/admin/logout/").status_code == 302
    assert signed_in(client) is None


def test_admin_with_an_authenticator_app_enters_the_admin(admin_client):
    assert admin_client.get("/admin/").status_code == 200
    assert admin_client.get("/admin/accounts/user/").status_code == 200


def test_admin_with_only_a_passkey_enters_the_admin(client, db):
    admin = UserFactory(role="ADMIN")
    Authenticator.objects.create(
        user=admin, type=Authenticator.Type.WEBAUTHN, data={"name": "Key"}
    )
    client.force_login(admin)
    assert client.get("/admin/").status_code == 200


def test_removing_the_last_factor_closes_the_admin_at_once(
    db, django_capture_on_commit_callbacks
):
    admin = UserFactory(role="ADMIN", email_verified_at=timezone.now())
    enrol_totp(admin)
    browser = Client()
    redeem_link(browser, admin, django_capture_on_commit_callbacks)
    secret = decrypt(Authenticator.objects.get(user=admin, type="totp").data["secret"])
    with django_capture_on_commit_callbacks(execute=True):
        browser.post(MFA_AUTHENTICATE, {"code": totp_code(secret)})
    assert browser.get("/admin/").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(TOTP_DEACTIVATE)

    assert response.status_code == 302
    assert browser.get("/admin/")["Location"] == MFA_INDEX


def test_users_without_a_factor_are_not_asked_for_one(user_client):
    assert user_client.get("/account/").status_code == 200
    assert user_client.get("/admin/").status_code == 302  # to the admin login → 403


def test_admin_enrols_from_the_gate_and_then_enters(
    db, django_capture_on_commit_callbacks
):
    admin = UserFactory(role="ADMIN", email_verified_at=timezone.now())
    browser = fresh_sign_in(admin, django_capture_on_commit_callbacks)
    assert browser.get("/admin/")["Location"] == MFA_INDEX

    assert browser.get(TOTP_ACTIVATE).status_code == 200
    secret = browser.session["mfa.totp.secret"]
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(TOTP_ACTIVATE, {"code": totp_code(secret)})

    assert response.status_code == 302
    assert browser.get("/admin/").status_code == 200


# --- the second step after sign-in ------------------------------------------------


def test_magic_link_sign_in_of_enrolled_user_stops_at_the_second_factor(
    client, user, django_capture_on_commit_callbacks
):
    secret = enrol_totp(user)

    response = redeem_link(client, user, django_capture_on_commit_callbacks)

    assert response.status_code == 302
    assert response["Location"] == MFA_AUTHENTICATE
    assert signed_in(client) is None
    assert client.get("/account/").status_code == 302  # not signed in yet
    assert client.get(MFA_AUTHENTICATE).status_code == 200

    response = client.post(MFA_AUTHENTICATE, {"code": wrong_code(secret)})
    assert response.status_code == 200
    assert b"Incorrect code" in response.content
    assert signed_in(client) is None

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(MFA_AUTHENTICATE, {"code": totp_code(secret)})
    assert response.status_code == 302
    assert signed_in(client) == user.pk
    assert sign_in_rows(user) == [{"method": "magic_link", "mfa": "totp"}]


def test_the_link_alone_is_spent_and_does_not_sign_in(client, user):
    enrol_totp(user)
    request_link(client, user.email)
    link = last_link(to=user.email)
    client.post(link)
    other = Client()
    response = other.post(link)
    assert response.status_code in (404, 410)
    assert signed_in(other) is None


def test_magic_link_sign_in_without_a_factor_is_one_step(
    client, user, django_capture_on_commit_callbacks
):
    response = redeem_link(client, user, django_capture_on_commit_callbacks)
    assert response["Location"] != MFA_AUTHENTICATE
    assert signed_in(client) == user.pk
    assert sign_in_rows(user) == [{"method": "magic_link"}]


def test_oauth_sign_in_of_enrolled_user_stops_at_the_second_factor(
    client,
    providers,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    user = UserFactory(email="gina@example.com", email_verified_at=timezone.now())
    secret = enrol_totp(user)
    providers.google_user(client_id=GOOGLE_ID, email="gina@example.com")

    response = oauth_round_trip(client, "google")

    assert response.status_code == 302
    assert response["Location"] == MFA_AUTHENTICATE
    assert signed_in(client) is None
    response = client.post(MFA_AUTHENTICATE, {"code": wrong_code(secret)})
    assert signed_in(client) is None

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(MFA_AUTHENTICATE, {"code": totp_code(secret)})
    assert response.status_code == 302
    assert signed_in(client) == user.pk
    assert sign_in_rows(user) == [
        {"method": "socialaccount", "provider": "google", "mfa": "totp"}
    ]


# --- enrolment, removal, recovery codes: audited ----------------------------------


def test_enrolment_is_audited_and_the_secret_is_not_stored_in_clear(
    user, django_capture_on_commit_callbacks
):
    browser = fresh_sign_in(user, django_capture_on_commit_callbacks)
    page = browser.get(TOTP_ACTIVATE)
    assert page.status_code == 200
    secret = browser.session["mfa.totp.secret"]

    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(TOTP_ACTIVATE, {"code": totp_code(secret)})

    assert response.status_code == 302
    totp = Authenticator.objects.get(user=user, type="totp")
    stored = totp.data["secret"]
    assert secret not in stored
    assert decrypt(stored) == secret
    rc = Authenticator.objects.get(user=user, type="recovery_codes")
    assert rc.data["seed"] != decrypt(rc.data["seed"])
    rows = AuditLog.objects.filter(action=AuditLog.Action.MFA_ENABLED, actor=user)
    assert sorted(r.changes["type"] for r in rows) == ["recovery_codes", "totp"]
    assert all(r.target_id == str(user.pk) for r in rows)


def test_removal_is_audited(user, django_capture_on_commit_callbacks):
    enrol_totp(user)
    browser = Client()
    redeem_link(browser, user, django_capture_on_commit_callbacks)
    secret = decrypt(Authenticator.objects.get(user=user, type="totp").data["secret"])
    with django_capture_on_commit_callbacks(execute=True):
        browser.post(MFA_AUTHENTICATE, {"code": totp_code(secret)})

    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(TOTP_DEACTIVATE)

    assert response.status_code == 302
    assert not Authenticator.objects.filter(user=user).exists()
    rows = AuditLog.objects.filter(action=AuditLog.Action.MFA_DISABLED, actor=user)
    assert sorted(r.changes["type"] for r in rows) == ["recovery_codes", "totp"]


def test_recovery_code_use_at_sign_in_is_audited(
    client, user, django_capture_on_commit_callbacks
):
    enrol_totp(user)
    code = Authenticator.objects.get(user=user, type="recovery_codes").wrap()
    first = code.get_unused_codes()[0]
    redeem_link(client, user, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(MFA_AUTHENTICATE, {"code": first})

    assert response.status_code == 302
    assert signed_in(client) == user.pk
    row = AuditLog.objects.get(action=AuditLog.Action.MFA_RECOVERY_CODE_USED)
    assert row.actor == user
    assert row.changes["type"] == "recovery_codes"
    assert row.changes["codes_left"] == 9
    assert sign_in_rows(user) == [{"method": "magic_link", "mfa": "recovery_codes"}]
    # Spent: the same code does not sign in a second time.
    other = Client()
    redeem_link(other, user, django_capture_on_commit_callbacks)
    assert other.post(MFA_AUTHENTICATE, {"code": first}).status_code == 200
    assert signed_in(other) is None


def test_regenerating_recovery_codes_is_audited(
    user, django_capture_on_commit_callbacks
):
    browser = fresh_sign_in(user, django_capture_on_commit_callbacks)
    enrol_totp(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post("/accounts/2fa/recovery-codes/generate/")
    assert response.status_code == 302
    assert AuditLog.objects.filter(
        action=AuditLog.Action.MFA_RECOVERY_CODES_REGENERATED, actor=user
    ).exists()


# --- reauthentication without passwords -------------------------------------------


def test_a_fresh_sign_in_may_manage_factors(user, django_capture_on_commit_callbacks):
    browser = fresh_sign_in(user, django_capture_on_commit_callbacks)
    assert browser.get(TOTP_ACTIVATE).status_code == 200


def test_an_old_sign_in_proves_the_mailbox_again_by_emailed_code(
    user, django_capture_on_commit_callbacks, mailoutbox
):
    browser = fresh_sign_in(user, django_capture_on_commit_callbacks)
    session = browser.session
    for record in session["account_authentication_methods"]:
        record["at"] -= 6 * 60
    session.save()

    response = browser.get(TOTP_ACTIVATE)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/reauthenticate/code/")
    page = browser.get(response["Location"])
    assert page.status_code == 200
    assert b'type="password"' not in page.content
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(response["Location"], {"recipient": user.email})
    assert response.status_code == 302
    jobs_run_queued()
    assert mailoutbox[-1].to == [user.email]
    code = re.search(r"^([A-Z0-9]{4}-[A-Z0-9]{4})$", mailoutbox[-1].body, re.M)[1]

    response = browser.post(response["Location"], {"code": code})

    assert response.status_code == 302
    assert response["Location"] == TOTP_ACTIVATE
    assert browser.get(TOTP_ACTIVATE).status_code == 200


def test_a_session_without_a_sign_in_record_must_reauthenticate(user_client, user):
    EmailAddress.objects.create(user=user, email=user.email, verified=True)
    response = user_client.get(TOTP_ACTIVATE)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/reauthenticate/code/")


def test_an_enrolled_user_may_reauthenticate_with_the_factor(user_client, user):
    enrol_totp(user)
    response = user_client.get(TOTP_DEACTIVATE)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/2fa/reauthenticate/")


# --- configuration ----------------------------------------------------------------


def test_system_checks_pass_with_allauth_mfa(settings):
    assert "allauth.mfa" in settings.INSTALLED_APPS
    assert not settings.SOCIALACCOUNT_ONLY
    # The id-less allauth checks (SOCIALACCOUNT_ONLY + mfa) are not silenced.
    assert None not in settings.SILENCED_SYSTEM_CHECKS
    call_command("check")  # raises SystemCheckError on an error or critical


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/signup/",
        "/accounts/reauthenticate/",
        "/accounts/email/",
        "/accounts/confirm-email/",
        "/accounts/confirm-email/some-key/",
        "/accounts/password/change/",
        "/accounts/password/set/",
        "/accounts/password/reset/",
        "/accounts/password/reset/done/",
        "/accounts/password/reset/key/done/",
        "/accounts/password/reset/key/1-set-password/",
        "/accounts/login/code/",
        "/accounts/login/code/confirm/",
        "/accounts/signup/passkey/",
        "/accounts/2fa/webauthn/login/",
        "/accounts/2fa/webauthn/signup/",
    ],
)
def test_allauth_password_signup_and_email_pages_stay_closed(user_client, path):
    anonymous = Client()
    assert anonymous.get(path).status_code == 404
    assert anonymous.post(path, {"password1": "x", "email": "a@b.c"}).status_code in (
        403,
        404,
    )
    assert user_client.get(path).status_code == 404
    assert user_client.post(path, {"password1": "x1234567!"}).status_code == 404


def test_no_one_gets_a_password(user_client, user):
    user_client.post(
        "/accounts/password/set/", {"password1": "Sup3r-secret", "password2": "x"}
    )
    user.refresh_from_db()
    assert not user.has_usable_password()


def test_accounts_root_goes_to_the_account_page(user_client):
    response = user_client.get("/accounts/")
    assert response.status_code == 302
    assert response["Location"] == "/account/"


# --- account page -----------------------------------------------------------------


def test_account_page_shows_two_factor_state_and_link(user_client, user):
    page = user_client.get("/account/").content.decode()
    assert "Two-factor authentication" in page
    assert 'href="/accounts/2fa/"' in page
    assert "Set up" in page

    enrol_totp(user)
    page = user_client.get("/account/").content.decode()
    assert "Manage" in page


def test_two_factor_pages_use_the_site_layout(admin_client):
    page = admin_client.get(MFA_INDEX).content.decode()
    assert "css/app.css" in page
    assert "Two-Factor Authentication" in page


@pytest.mark.parametrize(
    "path",
    [
        MFA_INDEX,
        TOTP_DEACTIVATE,
        "/accounts/2fa/recovery-codes/",
        "/accounts/2fa/recovery-codes/generate/",
        "/accounts/2fa/webauthn/",
        "/accounts/2fa/webauthn/add/",
    ],
)
def test_two_factor_management_pages_render(
    user, path, django_capture_on_commit_callbacks
):
    browser = fresh_sign_in(user, django_capture_on_commit_callbacks)
    enrol_totp(user)
    response = browser.get(path)
    assert response.status_code == 200
    assert b"css/app.css" in response.content


# --- passkeys in a real browser -----------------------------------------------------


def _browser_magic_link_sign_in(page, live_url, email):
    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=email]", email)
    page.click("text=Email me a sign-in link")
    page.wait_for_selector("text=Check your email")
    jobs_run_queued()
    link = re.search(r"http://\S+/accounts/magic/\S+", mail.outbox[-1].body)[0]
    page.goto(link)
    page.click("#confirm-sign-in")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_adds_a_passkey_and_signs_in_with_it(live_url, page):
    """Chromium's virtual authenticator (CDP) stands in for a security key.
    WebAuthn refuses 127.0.0.1 as a relying party: the live server is reached as
    localhost."""
    live_url = live_url.replace("127.0.0.1", "localhost")
    admin = UserFactory(role="ADMIN", name="Ada Admin")
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )

    _browser_magic_link_sign_in(page, live_url, admin.email)
    page.wait_for_selector("nav >> text=Ada Admin")
    page.goto(f"{live_url}/admin/")
    page.wait_for_selector("text=The admin needs two-factor authentication")
    page.goto(f"{live_url}/accounts/2fa/webauthn/add/")
    page.fill("input[name=name]", "Laptop")
    page.click("#mfa_webauthn_add")
    page.wait_for_url(re.compile(r".*/accounts/2fa/(recovery-codes|webauthn)/$"))
    assert Authenticator.objects.filter(user=admin, type="webauthn").exists()
    page.goto(f"{live_url}/admin/")
    page.wait_for_selector("text=Site administration")

    page.context.clear_cookies()
    _browser_magic_link_sign_in(page, live_url, admin.email)
    page.wait_for_url(re.compile(r".*/accounts/2fa/authenticate/$"))
    page.click("#mfa_webauthn_authenticate")
    page.wait_for_selector("nav >> text=Ada Admin")
    page.goto(f"{live_url}/admin/")
    page.wait_for_selector("text=Site administration")
    assert AuditLog.objects.filter(
        action=AuditLog.Action.SIGN_IN, actor=admin, changes__mfa="webauthn"
    ).exists()
