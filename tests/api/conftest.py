import pytest

from api.services import api_key_create
from tests.accounts.factories import UserFactory


@pytest.fixture
def owner(db):
    return UserFactory(name="Ada Builder")


@pytest.fixture
def key(owner):
    """A read+write key of ``owner``: (ApiKey row, the key itself)."""
    return api_key_create(user=owner, name="script", scopes=["read", "write"])


@pytest.fixture
def api(client, key):
    """``client`` sending ``Authorization: Bearer <key>`` on every call."""

    class Api:
        def __init__(self, token):
            self.token = token

        def _headers(self, headers):
            return {"Authorization": f"Bearer {self.token}", **(headers or {})}

        def get(self, path, data=None, headers=None):
            return client.get(f"/api/v1{path}", data, headers=self._headers(headers))

        def post(self, path, body=None, headers=None, raw=None):
            return client.post(
                f"/api/v1{path}",
                raw if raw is not None else body,
                content_type="application/json",
                headers=self._headers(headers),
            )

        def patch(self, path, body=None, headers=None):
            return client.patch(
                f"/api/v1{path}",
                body,
                content_type="application/json",
                headers=self._headers(headers),
            )

        def delete(self, path, headers=None):
            return client.delete(f"/api/v1{path}", headers=self._headers(headers))

    return Api(key[1])
