"""The account's API keys page: create (shown once), list, revoke."""

from __future__ import annotations

import pytest

from api.models import ApiKey
from api.services import api_key_create
from core.models import AuditLog
from tests.a11y import axe_violations, horizontal_overflow
from tests.accounts.factories import UserFactory
from tests.e2e import screenshot, sign_in_browser

pytestmark = pytest.mark.django_db


def test_create_shows_the_key_once_and_it_works(client, user):
    client.force_login(user)
    response = client.post(
        "/account/api-keys/",
        {"name": "nightly", "scopes": ["read"], "expires_in": "30"},
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    token = response.context["new_key"]
    assert token.startswith("lp_live_") and token in response.content.decode()
    key = ApiKey.objects.get(user=user)
    assert (key.name, key.scopes, key.expires_at is not None) == (
        "nightly",
        ["read"],
        True,
    )
    assert AuditLog.objects.filter(action="api_key_created", actor=user).exists()
    # Never again: the list shows the prefix only.
    again = client.get("/account/api-keys/").content.decode()
    assert token not in again and key.prefix in again
    api = client.get("/api/v1/usage", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200


@pytest.mark.parametrize(
    "data",
    [
        {"name": "", "scopes": ["read"]},
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["admin"]},
        {"name": "x", "scopes": ["read"], "expires_in": "7"},
        {"name": "x\x00", "scopes": ["read"]},
    ],
)
def test_bad_input_creates_nothing(client, user, data):
    client.force_login(user)
    response = client.post("/account/api-keys/", data)
    assert response.status_code == 400
    assert not ApiKey.objects.exists()


def test_revoke_is_own_keys_only(client, user):
    own, token = api_key_create(user=user, name="mine")
    theirs, _ = api_key_create(user=UserFactory(), name="theirs")
    client.force_login(user)
    assert client.post(f"/account/api-keys/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    response = client.post(f"/account/api-keys/{own.pk}/revoke/", follow=True)
    assert "revoked" in response.content.decode()
    own.refresh_from_db()
    assert own.revoked_at is not None
    assert (
        client.get(
            "/api/v1/usage", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 401
    )


def test_signed_out_visitors_are_sent_to_sign_in(client):
    assert client.get("/account/api-keys/").status_code == 302
    assert client.post("/account/api-keys/", {"name": "x"}).status_code == 302


def test_account_page_links_to_keys_and_docs(client, user):
    client.force_login(user)
    html = client.get("/account/").content.decode()
    assert 'href="/account/api-keys/"' in html and 'href="/api/v1/docs"' in html


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_keys_page_in_a_browser(live_url, page):
    user = UserFactory(name="Ada")
    sign_in_browser(page, live_url, user)
    for width, theme in ((390, "light"), (1366, "dark")):
        page.context.add_cookies([{"name": "theme", "value": theme, "url": live_url}])
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_url}/account/api-keys/")
        page.fill("input[name=name]", f"script {width}")
        page.click("button:has-text('Create key')")
        page.wait_for_selector("#new-key-value")
        assert page.input_value("#new-key-value").startswith("lp_live_")
        assert horizontal_overflow(page) == 0
        assert axe_violations(page) == []
        screenshot(page, f"api-keys-{width}-{theme}")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_api_docs_render_under_the_csp(live_url, page):
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_url}/api/v1/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=15_000)
    assert page.locator(".opblock").count() >= 16
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_staff_revoke_a_key_from_the_admin(admin_client, admin_user, user):
    api_key, _ = api_key_create(user=user, name="leaked")
    changelist = admin_client.get("/admin/api/apikey/")
    assert changelist.status_code == 200
    assert api_key.prefix in changelist.content.decode()
    assert api_key.key_hash not in changelist.content.decode()
    response = admin_client.post(
        "/admin/api/apikey/",
        {"action": "revoke_keys", "_selected_action": [api_key.pk]},
        follow=True,
    )
    assert response.status_code == 200
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    row = AuditLog.objects.get(action="api_key_revoked", target_id=api_key.pk)
    assert row.actor == admin_user
    page = admin_client.get(f"/admin/api/apikey/{api_key.pk}/change/")
    assert page.status_code == 200
    assert api_key.key_hash not in page.content.decode()
