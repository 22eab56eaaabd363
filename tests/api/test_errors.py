"""Bad input gets an RFC 9457 problem, changes nothing, and is never a 500 or
an HTML page."""

from __future__ import annotations

import json

import pytest

from searches.models import SavedSearch, SearchHistory

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def _post_raw(client, token, path, body: bytes):
    return client.post(
        f"/api/v1{path}",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{bad", 400, "invalid_body"),
        (b"[" * 5000 + b"]" * 5000, 400, "invalid_body"),
        (b'{"keywords": ' + b"[" * 40 + b'"a"' + b"]" * 40 + b"}", 400, "invalid_body"),
        (b'{"keywords": ["a\\u0000b"]}', 400, "invalid_body"),
        (b'{"keywords": ["\\ud800"]}', 400, "invalid_body"),
        (b'{"keywords": "seo"}', 422, "invalid"),
        (b'{"keywords": [1, 2]}', 422, "invalid"),
        (b'{"keywords": []}', 422, "invalid"),
        (b'{"keywords": ["ok"], "location": "XX"}', 422, "invalid"),
        (b'{"keywords": ["ok"], "surprise": 1}', 422, "invalid"),
        (b'{"keywords": ["' + b"x" * 81 + b'"]}', 422, "invalid"),
        (b"null", 422, "invalid"),
        (b'"text"', 422, "invalid"),
    ],
)
def test_bad_search_bodies(client, key, body, status, code):
    response = _post_raw(client, key[1], "/searches", body)
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    problem = response.json()
    assert (problem["status"], problem["code"]) == (status, code)
    assert problem["title"] and problem["detail"]
    assert not SearchHistory.objects.exists()


def test_field_errors_name_the_field(client, key):
    response = _post_raw(
        client, key[1], "/searches", b'{"keywords": ["ok"], "language": "xx"}'
    )
    errors = response.json()["errors"]
    assert any(
        e["field"] == "body.payload.language" or e["field"].endswith("language")
        for e in errors
    )


def test_a_huge_body_is_413(client, key, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"keywords": ["k" * 50] * 100}).encode()
    response = _post_raw(client, key[1], "/searches", body)
    assert response.status_code == 413
    assert response["Content-Type"] == PROBLEM


def test_nul_in_a_query_string_is_a_problem_not_html(client, key):
    response = client.get(
        "/api/v1/apps?q=a%00b", headers={"Authorization": f"Bearer {key[1]}"}
    )
    assert response.status_code in (400, 422)
    assert response["Content-Type"] == PROBLEM


@pytest.mark.parametrize(
    "path",
    ["/saved-searches/nope", "/saved-searches/%00", "/apps/" + "a" * 300, "/nowhere"],
)
def test_odd_paths_are_problems(client, key, path):
    response = client.get(
        f"/api/v1{path}", headers={"Authorization": f"Bearer {key[1]}"}
    )
    assert response.status_code in (400, 404, 422)
    assert response["Content-Type"] == PROBLEM


def test_wrong_method_is_405_problem_with_allow(client, key):
    response = client.put(
        "/api/v1/usage", headers={"Authorization": f"Bearer {key[1]}"}
    )
    assert response.status_code == 405
    assert response["Content-Type"] == PROBLEM


def test_bad_cursor_is_404(client, key):
    response = client.get(
        "/api/v1/history?cursor=abc", headers={"Authorization": f"Bearer {key[1]}"}
    )
    assert response.status_code == 404
    assert response.json()["code"] == "cursor_unknown"


def test_a_rename_to_blank_changes_nothing(client, key, owner):
    saved = SavedSearch.objects.create(
        user=owner, name="Keep", keywords=["a"], keyword_count=1, results=[]
    )
    response = client.patch(
        f"/api/v1/saved-searches/{saved.pk}",
        {"name": "   "},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key[1]}"},
    )
    assert response.status_code == 422
    saved.refresh_from_db()
    assert saved.name == "Keep"


def test_unknown_query_parameters_are_refused(client, key):
    response = client.get(
        "/api/v1/history?limt=5", headers={"Authorization": f"Bearer {key[1]}"}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "query.limt", "message": "Unknown parameter."}
    ]
    # Known ones are fine.
    ok = client.get(
        "/api/v1/history?limit=5", headers={"Authorization": f"Bearer {key[1]}"}
    )
    assert ok.status_code == 200


@pytest.mark.parametrize("header", [None, "Bearer lp_live_" + "x" * 32])
def test_a_caller_without_a_valid_key_gets_401_before_any_query_check(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/history?limt=5&anything=1", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert "limt" not in response.content.decode()
