import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

from tests.accounts.factories import UserFactory

# Real-browser fixtures (browser, page, live_url) for @pytest.mark.browser tests.
pytest_plugins = ["tests.e2e"]


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def admin_user(db):
    """An ADMIN with an authenticator app enrolled: the admin opens only for
    staff with a second factor (accounts.middleware.AdminMFARequiredMiddleware).
    Its secret is ``admin_user.totp_secret``."""
    admin = UserFactory(role="ADMIN", name="Admin")
    admin.totp_secret = generate_totp_secret()
    TOTP.activate(admin, admin.totp_secret)
    return admin


@pytest.fixture
def user_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client
