import pytest
from allauth.socialaccount.models import SocialAccount
from allauth.socialaccount.providers.github.views import GitHubOAuth2Adapter
from allauth.socialaccount.providers.google.views import GoogleOAuth2Adapter
from django.contrib.auth import SESSION_KEY
from django.utils import timezone

from accounts.models import User
from core.models import AuditLog
from tests.accounts.factories import UserFactory
from tests.accounts.oauth_server import FakeProviders, state_from

GOOGLE_ID = "google-client-id"


@pytest.fixture
def providers(settings, monkeypatch):
    fake = FakeProviders().start()
    settings.SOCIALACCOUNT_PROVIDERS = {
        "github": {"APPS": [{"client_id": "gh-id", "secret": "gh-secret", "key": ""}]},
        "google": {"APPS": [{"client_id": GOOGLE_ID, "secret": "g-secret", "key": ""}]},
    }
    base = fake.url
    monkeypatch.setattr(
        GitHubOAuth2Adapter,
        "access_token_url",
        f"{base}/github/login/oauth/access_token",
    )
    monkeypatch.setattr(GitHubOAuth2Adapter, "profile_url", f"{base}/github/api/user")
    monkeypatch.setattr(
        GitHubOAuth2Adapter, "emails_url", f"{base}/github/api/user/emails"
    )
    monkeypatch.setattr(GoogleOAuth2Adapter, "access_token_url", f"{base}/google/token")
    yield fake
    fake.stop()


def oauth_round_trip(client, provider, process="login"):
    start = client.post(f"/accounts/{provider}/login/", {"process": process})
    assert start.status_code == 302, start.content[:500]
    state = state_from(start["Location"])
    return client.get(
        f"/accounts/{provider}/login/callback/", {"code": "the-code", "state": state}
    )


def signed_in(client):
    return client.session.get(SESSION_KEY)


def test_configured_providers_are_shown_on_sign_in_page(client, providers):
    page = client.get("/accounts/login/").content
    assert b"Continue with GitHub" in page
    assert b"Continue with Google" in page


def test_github_sign_in_creates_verified_user(client, providers):
    providers.github_user(
        emails=[{"email": "octo@example.com", "primary": True, "verified": True}]
    )
    response = oauth_round_trip(client, "github")
    assert response.status_code == 302
    user = User.objects.get(email="octo@example.com")
    assert signed_in(client) == user.pk
    assert user.email_verified_at is not None
    assert user.name == "Octo Cat"
    assert SocialAccount.objects.get(user=user).provider == "github"
    entry = AuditLog.objects.get(action="sign_in", actor=user)
    assert entry.changes == {"method": "socialaccount", "provider": "github"}
    token_calls = [r for r in providers.requests if r[1].endswith("access_token")]
    assert "the-code" in token_calls[0][2]


def test_google_sign_in_creates_user(client, providers):
    providers.google_user(client_id=GOOGLE_ID, email="gina@example.com", name="Gina G")
    response = oauth_round_trip(client, "google")
    assert response.status_code == 302
    user = User.objects.get(email="gina@example.com")
    assert signed_in(client) == user.pk
    assert user.email_verified_at is not None
    assert SocialAccount.objects.get(user=user).uid == "g-202"


def test_verified_provider_email_signs_into_existing_user_and_links(client, providers):
    existing = UserFactory(email="same@example.com", email_verified_at=timezone.now())
    providers.google_user(client_id=GOOGLE_ID, email="Same@example.com")
    oauth_round_trip(client, "google")
    assert signed_in(client) == existing.pk
    assert User.objects.count() == 1
    assert SocialAccount.objects.get().user == existing


def test_unverified_provider_email_does_not_sign_into_existing_user(client, providers):
    existing = UserFactory(email="victim@example.com", email_verified_at=timezone.now())
    providers.github_user(
        emails=[{"email": "victim@example.com", "primary": True, "verified": False}]
    )
    response = oauth_round_trip(client, "github")
    assert signed_in(client) != existing.pk
    assert not SocialAccount.objects.filter(user=existing).exists()
    # allauth asks for another address instead (the taken one is not theirs).
    assert response["Location"] == "/accounts/3rdparty/signup/"
    page = client.get("/accounts/3rdparty/signup/")
    assert page.status_code == 200
    assert b"One more step" in page.content


def test_signed_in_user_connects_github(user_client, user, providers):
    providers.github_user(
        uid=555,
        emails=[{"email": "elsewhere@example.com", "primary": True, "verified": True}],
    )
    response = oauth_round_trip(user_client, "github", process="connect")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/3rdparty/"
    account = SocialAccount.objects.get(user=user)
    assert account.uid == "555"
    assert AuditLog.objects.filter(action="account_connected", actor=user).exists()
    page = user_client.get("/accounts/3rdparty/")
    assert b"GitHub" in page.content and b"Disconnect" in page.content


def test_disconnect_allowed_when_email_is_a_way_in(user_client, user):
    User.objects.filter(pk=user.pk).update(email_verified_at=timezone.now())
    account = SocialAccount.objects.create(user=user, provider="github", uid="1")
    response = user_client.post("/accounts/3rdparty/", {"account": account.pk})
    assert response.status_code == 302
    assert not SocialAccount.objects.filter(pk=account.pk).exists()
    assert AuditLog.objects.filter(action="account_disconnected").exists()


def test_unlinking_the_last_way_in_is_refused(user_client, user):
    assert user.email_verified_at is None
    account = SocialAccount.objects.create(user=user, provider="github", uid="1")
    response = user_client.post("/accounts/3rdparty/", {"account": account.pk})
    assert response.status_code == 400
    assert b"only way to sign in" in response.content
    assert SocialAccount.objects.filter(pk=account.pk).exists()


def test_one_of_two_providers_can_go_even_if_email_unverified(user_client, user):
    github = SocialAccount.objects.create(user=user, provider="github", uid="1")
    SocialAccount.objects.create(user=user, provider="google", uid="2")
    response = user_client.post("/accounts/3rdparty/", {"account": github.pk})
    assert response.status_code == 302
    assert SocialAccount.objects.filter(user=user).count() == 1


def test_cannot_disconnect_another_users_account(user_client, other_user):
    theirs = SocialAccount.objects.create(user=other_user, provider="github", uid="9")
    response = user_client.post("/accounts/3rdparty/", {"account": theirs.pk})
    assert response.status_code == 404
    assert SocialAccount.objects.filter(pk=theirs.pk).exists()


def test_magic_link_to_unverified_account_removes_unproven_providers(client, db):
    from django.test import TestCase

    from tests.accounts.helpers import last_link, request_link

    squatted = UserFactory(email="mine@example.com")
    SocialAccount.objects.create(user=squatted, provider="github", uid="attacker")
    request_link(client, "mine@example.com")
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post(last_link())
    squatted.refresh_from_db()
    assert signed_in(client) == squatted.pk
    assert squatted.email_verified_at is not None
    assert not SocialAccount.objects.filter(user=squatted).exists()


def test_provider_without_credentials_is_hidden_and_not_reachable(client, db, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {}
    assert b"GitHub" not in client.get("/accounts/login/").content
    response = client.post("/accounts/github/login/")
    assert response.status_code in (404, 400)


def test_inactive_user_cannot_sign_in_with_provider(client, providers):
    inactive = UserFactory(email="gone@example.com", is_active=False)
    SocialAccount.objects.create(user=inactive, provider="github", uid="101")
    providers.github_user(
        emails=[{"email": "gone@example.com", "primary": True, "verified": True}]
    )
    response = oauth_round_trip(client, "github")
    assert response.status_code == 403
    assert b"inactive" in response.content
    assert signed_in(client) is None


def test_google_unverified_new_account_is_not_marked_verified(client, providers):
    providers.google_user(client_id=GOOGLE_ID, email="unv@example.com", verified=False)
    oauth_round_trip(client, "google")
    user = User.objects.get(email="unv@example.com")
    assert signed_in(client) == user.pk
    assert user.email_verified_at is None


def test_provider_error_shows_a_page_and_is_audited(client, providers):
    providers.routes["/github/login/oauth/access_token"] = (400, {"error": "bad_code"})
    response = oauth_round_trip(client, "github")
    assert response.status_code == 401
    assert b"Sign-in failed" in response.content
    assert signed_in(client) is None
    assert AuditLog.objects.filter(action="sign_in_failed").exists()


def test_connections_page_query_count_does_not_grow(
    user_client, user, providers, django_assert_num_queries
):
    SocialAccount.objects.create(user=user, provider="github", uid="1")
    user_client.get("/accounts/3rdparty/")
    with django_assert_num_queries(6) as few:
        user_client.get("/accounts/3rdparty/")
    count = len(few.captured_queries)
    SocialAccount.objects.create(user=user, provider="google", uid="2")
    SocialAccount.objects.create(user=user, provider="github", uid="3")
    with django_assert_num_queries(count):
        page = user_client.get("/accounts/3rdparty/")
    assert page.content.count(b"Disconnect") == 3


@pytest.mark.parametrize("email", ["a@localhost", "b@[::1]"])
def test_allauth_forms_refuse_addresses_the_user_table_refuses(email):
    from django.core.exceptions import ValidationError

    from accounts.adapters import AccountAdapter

    with pytest.raises(ValidationError, match="valid email"):
        AccountAdapter().clean_email(email)
    assert AccountAdapter().clean_email("ok@example.com") == "ok@example.com"
