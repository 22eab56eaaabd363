import pytest

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
    return UserFactory(role="ADMIN", name="Admin")


@pytest.fixture
def user_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client
