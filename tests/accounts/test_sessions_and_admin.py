import pytest
from allauth.usersessions.models import UserSession
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import Client

from accounts import services
from accounts.models import User
from core.models import AuditLog
from tests.accounts.factories import UserFactory
from tests.accounts.helpers import last_link, request_link

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/130.0 Safari/537.36"
)


def sign_in(user, ua=FIREFOX, ip="10.0.0.1") -> Client:
    """A browser that signed in through the real magic-link flow."""
    from django.test import TestCase

    browser = Client(HTTP_USER_AGENT=ua, REMOTE_ADDR=ip)
    cache.clear()  # several sign-ins of one address within a minute
    request_link(browser, user.email)
    with TestCase.captureOnCommitCallbacks(execute=True):
        browser.post(last_link(to=user.email))
    browser.get("/account/")  # a request after sign-in: usersession row
    assert browser.session.get(SESSION_KEY) == user.pk
    return browser


def test_sessions_page_lists_device_ip_and_last_seen(user):
    laptop = sign_in(user, FIREFOX, "10.0.0.1")
    sign_in(user, CHROME, "10.0.0.2")
    page = laptop.get("/accounts/sessions/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Firefox on Linux" in html and "Chrome on Windows" in html
    assert "10.0.0.1" in html and "10.0.0.2" in html
    assert "this browser" in html


def test_revoking_a_session_signs_the_other_browser_out(user):
    laptop = sign_in(user, FIREFOX, "10.0.0.1")
    phone = sign_in(user, CHROME, "10.0.0.2")
    other = UserSession.objects.get(user=user, user_agent=CHROME)
    response = laptop.post("/accounts/sessions/", {"session": other.pk})
    assert response.status_code == 302
    assert phone.get("/account/").status_code == 302  # sent to sign in
    assert phone.session.get(SESSION_KEY) is None
    assert laptop.get("/account/").status_code == 200
    assert AuditLog.objects.filter(action="session_revoked", actor=user).exists()


def test_revoke_all_others_keeps_this_browser(user):
    laptop = sign_in(user, FIREFOX)
    phones = [sign_in(user, CHROME, f"10.0.1.{i}") for i in range(2)]
    laptop.post("/accounts/sessions/", {"action": "revoke_others"})
    for phone in phones:
        assert phone.get("/account/").status_code == 302
    assert laptop.get("/account/").status_code == 200
    assert UserSession.objects.filter(user=user).count() == 1


def test_cannot_revoke_another_users_session(user, other_user):
    mine = sign_in(user)
    sign_in(other_user, CHROME)
    theirs = UserSession.objects.get(user=other_user)
    response = mine.post("/accounts/sessions/", {"session": theirs.pk})
    assert response.status_code == 404
    assert UserSession.objects.filter(pk=theirs.pk).exists()


def test_sessions_page_query_count_does_not_grow(user, django_assert_num_queries):
    browser = sign_in(user)
    browser.get("/accounts/sessions/")
    with django_assert_num_queries(3) as few:
        browser.get("/accounts/sessions/")
    count = len(few.captured_queries)
    for i in range(4):
        sign_in(user, CHROME, f"10.0.2.{i}")
    with django_assert_num_queries(count):
        page = browser.get("/accounts/sessions/")
    assert page.content.count(b"Chrome on Windows") == 4


def test_sign_out_kills_the_session(user):
    browser = sign_in(user)
    key = browser.session.session_key
    response = browser.post("/accounts/logout/")
    assert response.status_code == 302
    assert not Session.objects.filter(session_key=key).exists()
    assert browser.get("/account/").status_code == 302
    assert AuditLog.objects.filter(action="sign_out", actor=user).exists()


def test_sign_out_by_get_does_not_sign_out(user):
    browser = sign_in(user)
    browser.get("/accounts/logout/")
    assert browser.get("/account/").status_code == 200


def test_deactivated_user_is_signed_out_on_next_request(user):
    browser = sign_in(user)
    services.user_deactivate(user=user)
    assert browser.get("/account/").status_code == 302
    assert AuditLog.objects.filter(action="user_deactivated").exists()


def test_deactivated_flag_alone_signs_out_on_next_request(user):
    browser = sign_in(user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    response = browser.get("/account/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- admin -------------------------------------------------------------------------


def test_admin_login_uses_the_sign_in_page(client, db):
    response = client.get("/admin/", follow=False)
    assert response.status_code == 302
    response = client.get(response["Location"])
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fadmin%2F"


def test_admin_signs_in_by_magic_link_and_is_sent_to_add_a_second_factor(db):
    admin = UserFactory(role="ADMIN")
    browser = sign_in(admin)
    # The admin opens only with a second factor: tests/accounts/test_mfa.py.
    assert browser.get("/admin/")["Location"] == "/accounts/2fa/"


def test_signed_in_user_gets_403_not_a_login_loop(user_client):
    response = user_client.get("/admin/", follow=True)
    assert response.status_code == 403
    assert b"not an administrator" in response.content
    assert len(response.redirect_chain) == 1


def test_admin_client_reaches_admin(admin_client):
    assert admin_client.get("/admin/accounts/user/").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/password/change/",
        "/accounts/password/set/",
        "/accounts/password/reset/",
        "/accounts/signup/",
        "/accounts/email/",
        "/accounts/reauthenticate/",
        "/admin/password_change/",
        "/admin/password_change/done/",
    ],
)
def test_password_pages_do_not_exist(user_client, path):
    assert Client().get(path).status_code == 404
    assert Client().post(path, {"password1": "x"}).status_code in (403, 404)
    assert user_client.get(path).status_code == 404


def test_sign_in_page_has_no_password_field(client, db):
    page = client.get("/accounts/login/").content
    assert b'type="password"' not in page
    assert b"No password needed" in page


def test_admin_role_change_is_audited_through_the_service(admin_client, admin_user):
    target = UserFactory()
    url = f"/admin/accounts/user/{target.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(role="ADMIN", email=target.email, tier=target.tier, is_active="on")
    data = {
        k: v
        for k, v in data.items()
        if k not in ("id", "created_at", "updated_at", "last_login")
    }
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    target.refresh_from_db()
    assert target.role == "ADMIN"
    entry = AuditLog.objects.get(action="role_changed")
    assert entry.changes == {"role": {"old": "USER", "new": "ADMIN"}}
    assert entry.actor == admin_user


def test_last_admin_cannot_be_demoted(admin_user):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        services.user_role_change(user=admin_user, role="USER")
    admin_user.refresh_from_db()
    assert admin_user.role == "ADMIN"


def test_admin_form_refuses_to_demote_the_last_admin(admin_client, admin_user):
    url = f"/admin/accounts/user/{admin_user.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data = {
        k: v
        for k, v in data.items()
        if k not in ("id", "created_at", "updated_at", "last_login")
    }
    data.update(role="USER", is_active="on")
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "only active admin" in str(response.context["adminform"].form.errors)
    admin_user.refresh_from_db()
    assert admin_user.role == "ADMIN"
    assert not AuditLog.objects.filter(action="role_changed").exists()


def test_the_only_admin_cannot_be_deactivated_or_deleted(admin_user):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="only active admin"):
        services.user_deactivate(user=admin_user)
    with pytest.raises(ValidationError, match="only active admin"):
        services.user_delete(user=admin_user, confirm_email=admin_user.email)
    admin_user.refresh_from_db()
    assert admin_user.is_active
    assert not AuditLog.objects.filter(
        action__in=["user_deactivated", "user_deleted"]
    ).exists()

    UserFactory(role="ADMIN")  # with a second admin, both are allowed
    services.user_deactivate(user=admin_user)
    admin_user.refresh_from_db()
    assert not admin_user.is_active


def test_admin_deactivate_action_skips_the_only_admin(admin_client, admin_user):
    response = admin_client.post(
        "/admin/accounts/user/",
        {"action": "deactivate_users", "_selected_action": [admin_user.pk]},
        follow=True,
    )
    assert "only active admin" in response.content.decode()
    admin_user.refresh_from_db()
    assert admin_user.is_active


def test_admin_form_refuses_to_deactivate_the_only_admin(admin_client, admin_user):
    url = f"/admin/accounts/user/{admin_user.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    data = {
        k: v
        for k, v in form.initial.items()
        if v is not None and k not in ("id", "created_at", "updated_at", "last_login")
    }
    data.pop("is_active", None)  # unchecked box: deactivate
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "only active admin" in str(response.context["adminform"].form.errors)
    admin_user.refresh_from_db()
    assert admin_user.is_active


def test_admin_deactivate_action_signs_user_out(admin_client, db):
    target = UserFactory()
    browser = sign_in(target)
    response = admin_client.post(
        "/admin/accounts/user/",
        {"action": "deactivate_users", "_selected_action": [target.pk]},
    )
    assert response.status_code == 302
    target.refresh_from_db()
    assert not target.is_active
    assert browser.get("/account/").status_code == 302


def test_user_admin_search_by_any_part_of_the_email(admin_client, db):
    UserFactory(email="zed-prefix@example.com")
    UserFactory(email="other-zed-prefix@example.com")
    UserFactory(email="unrelated@example.com")
    page = admin_client.get("/admin/accounts/user/", {"q": "zed-pre"})
    # Any part (issue #17): the address that only contains the text is listed.
    assert sorted(page.context["cl"].result_list.values_list("email", flat=True)) == [
        "other-zed-prefix@example.com",
        "zed-prefix@example.com",
    ]
    # Under 3 letters: the start only, and the page says so.
    page = admin_client.get("/admin/accounts/user/", {"q": "ze"})
    assert list(page.context["cl"].result_list.values_list("email", flat=True)) == [
        "zed-prefix@example.com"
    ]
    assert b"match only the start" in page.content


def test_magic_link_admin_is_read_only_and_shows_no_secret(admin_client, user):
    request_link(Client(), user.email)
    secret = last_link().rstrip("/").rsplit("/", 1)[1]
    listing = admin_client.get("/admin/accounts/magiclink/")
    assert listing.status_code == 200
    assert secret.encode() not in listing.content
    assert admin_client.get("/admin/accounts/magiclink/add/").status_code == 403
    from accounts.models import MagicLink

    link = MagicLink.objects.get()
    detail = admin_client.get(f"/admin/accounts/magiclink/{link.pk}/change/")
    assert detail.status_code == 200
    assert link.token_hash.encode() in detail.content
    assert secret.encode() not in detail.content


def test_admin_does_not_offer_unused_django_groups(admin_client):
    response = admin_client.get("/admin/")

    assert response.status_code == 200
    assert b"/admin/auth/group/" not in response.content


@pytest.mark.parametrize(
    ("path", "field"),
    [("/accounts/3rdparty/", "account"), ("/accounts/sessions/", "session")],
)
@pytest.mark.parametrize("value", ["abc", "", "1e5", "٣", "9" * 30])
def test_malformed_ids_are_404_not_500(user_client, path, field, value):
    response = user_client.post(path, {field: value})

    assert response.status_code == 404


def test_staff_deleting_a_user_goes_through_the_service(admin_client, admin_user):
    """Django's delete view runs the same rules, hooks and audit as the
    account page: the parent's fork count drops and an audit row names staff."""
    from apps_catalog import services as catalog
    from tests.apps_catalog.factories import AppFactory

    owner, forker = UserFactory(), UserFactory()
    parent = AppFactory(owner=owner)
    catalog.app_fork(app=parent, actor=forker)

    response = admin_client.post(
        f"/admin/accounts/user/{forker.pk}/delete/", {"post": "yes"}
    )

    assert response.status_code == 302
    assert not User.objects.filter(pk=forker.pk).exists()
    parent.refresh_from_db()
    assert parent.fork_count == 0
    row = AuditLog.objects.get(action="user_deleted")
    assert row.actor_id == admin_user.pk
    assert row.changes["by"] == "staff"


def test_staff_cannot_delete_a_user_whose_subscription_bills(admin_client, admin_user):
    subscribed = UserFactory(
        stripe_subscription_id="sub_live", subscription_status="active"
    )

    response = admin_client.post(
        f"/admin/accounts/user/{subscribed.pk}/delete/", {"post": "yes"}, follow=True
    )

    assert response.status_code == 200
    assert "running subscription" in response.content.decode()
    assert User.objects.filter(pk=subscribed.pk).exists()
    assert not AuditLog.objects.filter(action="user_deleted").exists()


def test_staff_bulk_delete_skips_the_refused_users(admin_client, admin_user):
    subscribed = UserFactory(
        stripe_subscription_id="sub_live2", subscription_status="trialing"
    )
    free = UserFactory()

    response = admin_client.post(
        "/admin/accounts/user/",
        {
            "action": "delete_selected",
            "_selected_action": [subscribed.pk, free.pk],
            "post": "yes",
        },
        follow=True,
    )

    assert "running subscription" in response.content.decode()
    assert User.objects.filter(pk=subscribed.pk).exists()
    assert not User.objects.filter(pk=free.pk).exists()
    assert AuditLog.objects.filter(action="user_deleted").count() == 1


def test_staff_remove_a_second_factor_through_an_audited_action(
    admin_client, admin_user
):
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    member = UserFactory()
    TOTP.activate(member, generate_totp_secret())
    factor = Authenticator.objects.get(user=member)
    list_url = "/admin/mfa/authenticator/"

    add = admin_client.get(f"{list_url}add/")
    change = admin_client.post(f"{list_url}{factor.pk}/change/", {"data": "{}"})
    response = admin_client.post(
        list_url,
        {"action": "remove_factors", "_selected_action": [factor.pk]},
        follow=True,
    )

    assert add.status_code == 403
    assert change.status_code == 403
    assert response.status_code == 200
    assert not Authenticator.objects.filter(user=member).exists()
    row = AuditLog.objects.get(action="mfa_disabled", target_id=member.pk)
    assert row.actor_id == admin_user.pk
    assert row.changes["by"] == "staff"


# A ``next`` that is neither a path nor an absolute URL: allauth passes a bare
# word on as a relative URL and redirect() took it for a URL pattern name
# (NoReverseMatch, a 500). Such a next, like an off-site one, is ignored.
UNSAFE_NEXTS = ["abc", "home", "javascript:alert(1)", "//evil.example/", "%00"]


@pytest.mark.parametrize("next_url", UNSAFE_NEXTS)
def test_signed_in_sign_in_page_ignores_an_unsafe_next(user_client, next_url):
    response = user_client.get("/accounts/login/", {"next": next_url})

    assert response.status_code == 302
    assert response["Location"] == "/"


@pytest.mark.parametrize("next_url", UNSAFE_NEXTS)
def test_signed_in_staff_on_the_admin_login_ignore_an_unsafe_next(
    admin_client, next_url
):
    response = admin_client.get("/admin/login/", {"next": next_url})

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


@pytest.mark.parametrize("next_url", UNSAFE_NEXTS)
def test_signed_in_non_staff_on_the_admin_login_get_403_whatever_the_next(
    user_client, next_url
):
    assert user_client.get("/admin/login/", {"next": next_url}).status_code == 403


def test_a_safe_next_is_still_followed(user_client, admin_client):
    assert user_client.get("/accounts/login/?next=/search/")["Location"] == "/search/"
    response = user_client.get("/accounts/login/?next=http://testserver/apps/")
    assert response["Location"] == "http://testserver/apps/"
    admin_page = "/admin/accounts/user/"
    assert admin_client.get(f"/admin/login/?next={admin_page}")["Location"] == (
        admin_page
    )


def test_a_sign_in_link_asked_with_an_unsafe_next_signs_in_to_the_default(db):
    from django.test import TestCase

    browser = Client()
    request_link(browser, "next.abc@example.com", path="/accounts/login/?next=abc")
    link = last_link()
    assert browser.get(link).status_code == 200
    with TestCase.captureOnCommitCallbacks(execute=True):
        signed_in = browser.post(link)

    # A new account: asked for a name first, then on to the default page.
    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/account/name/?next=%2F"
    named = browser.post("/account/name/?next=abc", {"name": "Abc"})
    assert named.status_code == 302
    assert named["Location"] == "/"
