from datetime import timedelta
from io import StringIO

import pytest
from allauth.usersessions.models import UserSession
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts import seed
from accounts.models import MagicLink, User
from core.models import AuditLog
from tests.accounts.factories import UserFactory


def test_account_page_shows_tier_usage_and_trial(client, db, settings):
    # A paid plan can be bought, so the meter offers one (upgrades_available).
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    settings.STRIPE_PRICE_PRO = "price_pro"
    settings.STRIPE_PRICE_ENTERPRISE = "price_ent"
    reset = timezone.now() + timedelta(days=9)
    user = UserFactory(
        tier="FREE",
        keyword_searches_this_month=275,
        monthly_reset_at=reset,
        trial_ends_at=timezone.now() + timedelta(days=3),
    )
    client.force_login(user)
    page = client.get("/account/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Free" in html
    assert '<progress value="275" max="300"' in html
    assert "Almost at your monthly limit." in html
    assert "Upgrade for more" in html and 'href="/billing/"' in html
    assert "trial ends" in html
    assert 'href="/accounts/3rdparty/"' in html and 'href="/accounts/sessions/"' in html


def test_enterprise_usage_is_unlimited(client, db):
    user = UserFactory(tier="ENTERPRISE", keyword_searches_this_month=5000)
    client.force_login(user)
    assert b"unlimited plan" in client.get("/account/").content


def test_account_page_requires_sign_in(client, db):
    response = client.get("/account/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_profile_update_saves_and_is_audited(user_client, user):
    response = user_client.post(
        "/account/profile/",
        {
            "name": "Ada L",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "image": "https://example.com/ada.png",
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.name, user.last_name, user.image) == (
        "Ada L",
        "Lovelace",
        "https://example.com/ada.png",
    )
    assert AuditLog.objects.get(action="profile_updated").changes["name"][1] == "Ada L"


def test_bad_image_url_is_a_form_error_and_nothing_is_saved(user_client, user):
    old_name = user.name
    response = user_client.post(
        "/account/profile/",
        {"name": "Changed", "first_name": "", "last_name": "", "image": "not a url"},
    )
    assert response.status_code == 400
    assert b"Enter a valid URL" in response.content
    user.refresh_from_db()
    assert user.name == old_name
    assert not AuditLog.objects.filter(action="profile_updated").exists()


def test_too_long_name_is_a_form_error(user_client, user):
    response = user_client.post("/account/profile/", {"name": "x" * 300, "image": ""})
    assert response.status_code == 400
    assert b"at most 255 characters" in response.content


def test_delete_needs_the_exact_email(user_client, user):
    response = user_client.post("/account/delete/", {"confirm_email": "wrong@x.com"})
    assert response.status_code == 400
    assert b"Type your email address exactly" in response.content
    assert User.objects.filter(pk=user.pk).exists()


def test_delete_account_removes_user_signs_out_and_audits(user_client, user):
    user_pk, email = user.pk, user.email
    MagicLink.objects.create(
        email=email,
        user=user,
        token_hash="0" * 64,
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    page = user_client.get("/account/delete/")
    assert page.status_code == 200
    response = user_client.post("/account/delete/", {"confirm_email": email.upper()})
    assert response.status_code == 302
    assert not User.objects.filter(pk=user_pk).exists()
    assert not MagicLink.objects.exists()
    assert user_client.session.get(SESSION_KEY) is None
    assert user_client.get("/account/").status_code == 302
    entry = AuditLog.objects.get(action="user_deleted")
    assert entry.target_id == user_pk and entry.changes["email"] == email


def test_delete_page_needs_sign_in(client, db):
    assert (
        client.post("/account/delete/", {"confirm_email": "a@b.co"}).status_code == 302
    )


def test_cleanup_expired_removes_old_links_and_sessions(db):
    now = timezone.now()
    user = UserFactory()
    fresh = MagicLink.objects.create(
        email="a@example.com",
        token_hash="1" * 64,
        expires_at=now + timedelta(minutes=5),
    )
    MagicLink.objects.create(
        email="b@example.com",
        token_hash="2" * 64,
        created_at=now - timedelta(hours=1),
        expires_at=now - timedelta(minutes=50),
    )
    MagicLink.objects.create(
        email="c@example.com",
        token_hash="3" * 64,
        created_at=now - timedelta(days=2),
        expires_at=now + timedelta(minutes=1),
        used_at=now - timedelta(days=2),
    )
    old = SessionStore()
    old.create()
    Session.objects.filter(session_key=old.session_key).update(
        expire_date=now - timedelta(days=1)
    )
    UserSession.objects.create(user=user, ip="10.0.0.1", session_key=old.session_key)
    live = SessionStore()
    live.create()

    out = StringIO()
    call_command("cleanup_expired", stdout=out)
    assert list(MagicLink.objects.all()) == [fresh]
    assert not Session.objects.filter(session_key=old.session_key).exists()
    assert Session.objects.filter(session_key=live.session_key).exists()
    assert not UserSession.objects.exists()
    text = out.getvalue()
    assert "expired magic links: 1 deleted" in text
    assert "used magic links: 1 deleted" in text
    assert "stale user sessions: 1 deleted" in text


def test_cleanup_expired_exits_non_zero_on_failure(db, monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(
        "accounts.management.commands.cleanup_expired.cleanup_expired", boom
    )
    with pytest.raises(CommandError, match="database went away"):
        call_command("cleanup_expired")


def test_seed_creates_each_tier_once(db):
    admin = UserFactory(role="ADMIN")
    first = seed.seed_demo(admin=admin, stdout=StringIO())
    assert first == {"demo users": 5}
    assert set(
        User.objects.filter(email__startswith="demo-").values_list("tier", flat=True)
    ) == {"FREE", "PRO", "ENTERPRISE"}
    assert seed.seed_demo(admin=admin, stdout=None) == {"demo users": 0}
    admin.refresh_from_db()
    assert admin.email_verified_at is not None


def test_deletion_cascades_owned_rows_and_keeps_search_history_anonymised(
    user_client, user
):
    from searches.models import SavedSearch, SearchHistory
    from tests.searches.factories import SavedSearchFactory, SearchHistoryFactory

    SavedSearchFactory(user=user)
    history = SearchHistoryFactory(user=user)
    user_client.post("/account/delete/", {"confirm_email": user.email})
    assert not SavedSearch.objects.exists()
    history.refresh_from_db()
    assert history.user_id is None
    assert SearchHistory.objects.count() == 1


def test_deleting_a_user_releases_their_forks_from_parents_counts(
    user_client, user, other_user
):
    from apps_catalog import services as catalog
    from tests.apps_catalog.factories import AppFactory

    parent = AppFactory(owner=other_user)
    catalog.app_fork(app=parent, actor=user)
    user_client.post("/account/delete/", {"confirm_email": user.email})
    parent.refresh_from_db()
    assert parent.fork_count == 0


@pytest.mark.parametrize("status", ["active", "past_due", "paused"])
def test_running_subscription_must_be_cancelled_before_deletion(
    user_client, user, status
):
    User.objects.filter(pk=user.pk).update(
        stripe_subscription_id="sub_123", subscription_status=status
    )
    response = user_client.post("/account/delete/", {"confirm_email": user.email})
    assert response.status_code == 400
    assert b"running subscription" in response.content
    assert User.objects.filter(pk=user.pk).exists()
