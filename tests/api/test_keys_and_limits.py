"""API keys: what authenticates, what is refused, and that every call —
refused ones included — leaves its APIUsage row."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from api.models import ApiKey
from api.services import api_key_create, api_key_revoke
from apps_catalog import services as catalog
from core.models import AuditLog
from searches.models import APIUsage
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


def _call(client, path, token, method="get", **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return getattr(client, method)(
        f"/api/v1{path}", content_type="application/json", headers=headers, **kwargs
    )


def _last_usage():
    return APIUsage.objects.order_by("-timestamp", "-id").first()


def test_a_good_key_works_and_is_metered(client, key, owner):
    api_key, token = key
    response = _call(client, "/usage", token)
    assert response.status_code == 200
    assert response.json()["limit"] == 300
    usage = _last_usage()
    assert (usage.user, usage.endpoint, usage.method, usage.status_code) == (
        owner,
        "/api/v1/usage",
        "GET",
        200,
    )
    assert usage.key_prefix == api_key.prefix
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None
    assert response["RateLimit-Limit"] == "120"


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer nope", "Basic dXNlcjpwYXNz", "Bearer lp_live_" + "x" * 32],
)
def test_missing_or_unknown_keys_get_401_problem(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/usage", headers=headers)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "not_authenticated"
    usage = _last_usage()
    assert (usage.user, usage.status_code) == (None, 401)


def test_a_revoked_key_is_refused(client, key, owner):
    api_key, token = key
    api_key_revoke(api_key=api_key, actor=owner)
    assert _call(client, "/usage", token).status_code == 401
    assert _last_usage().status_code == 401
    assert AuditLog.objects.filter(
        action="api_key_revoked", target_id=api_key.pk
    ).exists()


def test_an_expired_key_is_refused(client, owner):
    api_key, token = api_key_create(
        user=owner, name="short", expires_at=timezone.now() + dt.timedelta(minutes=1)
    )
    ApiKey.objects.filter(pk=api_key.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert _call(client, "/usage", token).status_code == 401
    assert _last_usage().status_code == 401


def test_a_deactivated_users_key_is_refused(client, key, owner):
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    assert _call(client, "/usage", key[1]).status_code == 401


def test_another_users_objects_are_404(client, key):
    other = UserFactory()
    app = catalog.app_create(owner=other, name="Theirs")
    response = _call(
        client, f"/me/apps/{app.pk}", key[1], "patch", data={"name": "Mine"}
    )
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    app.refresh_from_db()
    assert app.name == "Theirs"
    # A draft of someone else is not in the public catalog either.
    assert _call(client, f"/apps/{app.pk}", key[1]).status_code == 404
    assert _last_usage().status_code == 404


def test_a_read_only_key_cannot_write(client, owner):
    _, token = api_key_create(user=owner, name="read", scopes=["read"])
    response = _call(client, "/me/apps", token, "post", data={"name": "New"})
    assert response.status_code == 403
    assert response.json()["code"] == "scope_missing"
    assert not owner.apps.exists()
    assert _last_usage().status_code == 403
    # Reading is fine.
    assert _call(client, "/me/apps", token).status_code == 200


def test_the_per_minute_limit_answers_429_with_headers(client, key, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    token = key[1]
    statuses = [_call(client, "/usage", token).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = _call(client, "/usage", token)
    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"
    assert response["RateLimit-Limit"] == "3"
    assert response["RateLimit-Remaining"] == "0"
    assert 0 < int(response["Retry-After"]) <= 60
    assert response["Retry-After"] == response["RateLimit-Reset"]
    assert APIUsage.objects.filter(status_code=429).count() == 2


def test_a_key_never_signs_in_a_browser_or_the_admin(client, owner):
    owner.role = "ADMIN"
    owner.save(update_fields=["role"])
    _, token = api_key_create(user=owner, name="admin key", scopes=["read", "write"])
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/account/", headers=headers).status_code == 302
    assert client.get("/admin/", headers=headers).status_code == 302
    assert "_auth_user_id" not in client.session


def test_a_session_does_not_authenticate_the_api(client, owner):
    client.force_login(owner)
    response = client.get("/api/v1/usage")
    assert response.status_code == 401


def test_keys_are_stored_as_hashes_with_a_visible_prefix(owner):
    api_key, token = api_key_create(user=owner, name="ci", scopes=["read"])
    assert token.startswith("lp_live_") and len(token) == 40
    assert api_key.prefix == token[:12]
    assert token not in api_key.key_hash
    assert not ApiKey.objects.filter(key_hash=token).exists()
    row = AuditLog.objects.get(action="api_key_created", target_id=api_key.pk)
    assert token not in str(row.changes)


def test_management_command_prints_a_working_key(client, owner, capsys):
    call_command("api_key_create", owner.email, "--name", "ops", "--scope", "read")
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("lp_live_")
    assert _call(client, "/usage", token).status_code == 200
    assert ApiKey.objects.get(user=owner, name="ops").scopes == ["read"]


def test_management_command_refuses_unknown_users(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No user"):
        call_command("api_key_create", "nobody@example.com", "--name", "x")


def test_calls_without_a_valid_key_are_limited_per_address_and_stop_metering(
    client, key, settings
):
    settings.API_UNAUTHENTICATED_RATE_LIMIT_PER_MINUTE = 3
    headers = [{}, {"Authorization": "Bearer lp_live_" + "x" * 32}]
    statuses = [
        client.get("/api/v1/usage", headers=headers[i % 2]).status_code
        for i in range(6)
    ]

    assert statuses == [401, 401, 401, 429, 429, 429]
    response = client.get("/api/v1/usage")
    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "rate_limited"
    assert "without a valid API key" in response.json()["detail"]
    assert 0 < int(response["Retry-After"]) <= 60
    # Only the calls under the limit left rows: a flood cannot grow the table.
    assert APIUsage.objects.filter(user=None).count() == 3
    assert not APIUsage.objects.filter(status_code=429).exists()
    # Someone with a valid key behind the same address is not refused.
    assert _call(client, "/usage", key[1]).status_code == 200


def test_made_up_paths_without_a_key_count_against_the_same_limit(client, settings):
    settings.API_UNAUTHENTICATED_RATE_LIMIT_PER_MINUTE = 2
    statuses = [client.get(f"/api/v1/nothing-{i}").status_code for i in range(4)]

    assert statuses == [404, 404, 429, 429]
    assert APIUsage.objects.count() == 2


def test_another_address_is_not_limited_by_the_first_ones_calls(client, settings):
    settings.API_UNAUTHENTICATED_RATE_LIMIT_PER_MINUTE = 1
    client.get("/api/v1/usage")
    assert client.get("/api/v1/usage").status_code == 429
    assert client.get("/api/v1/usage", REMOTE_ADDR="10.1.2.3").status_code == 401


def test_a_cache_outage_lets_calls_through_instead_of_answering_500(
    client, key, monkeypatch
):
    """The per-key and per-address counters live in the cache; with the cache
    down nothing is counted, and calls are answered as if under the limit."""
    from django.core.cache import cache

    def down(*args, **kwargs):
        raise ConnectionError("cache is down")

    monkeypatch.setattr(cache, "incr", down)
    monkeypatch.setattr(cache, "add", down)

    assert client.get("/api/v1/usage").status_code == 401
    assert _call(client, "/usage", key[1]).status_code == 200
