import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone

from searches.models import APIUsage, SearchHistory

URL = "/api/keywords/"


def _call(client, body, **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(
        URL,
        data,
        content_type="application/json",
        HTTP_USER_AGENT="api-test/1",
        **extra,
    )


@pytest.mark.django_db
def test_api_returns_results_and_usage_and_records_the_call(user_client, user):
    response = _call(user_client, {"keywords": ["seo tools", "Backlinks", "seo tools"]})
    assert response.status_code == 200
    data = response.json()
    assert data["keywords"] == ["seo tools", "backlinks"]
    assert data["provider"] == "sample"
    assert data["sample_data"] is True
    assert data["cache_hit"] is False
    assert {r["keyword"] for r in data["results"]} == {"seo tools", "backlinks"}
    assert set(data["results"][0]) == {
        "keyword", "search_volume", "difficulty", "cpc", "competition", "intent"
    }  # fmt: skip
    assert data["usage"]["used"] == 2
    assert data["usage"]["limit"] == 300
    usage = APIUsage.objects.get()
    assert (usage.user, usage.method, usage.endpoint, usage.status_code) == (
        user, "POST", URL, 200
    )  # fmt: skip
    assert usage.user_agent == "api-test/1"
    assert usage.ip_address == "127.0.0.1"
    assert usage.duration_ms >= 0
    assert SearchHistory.objects.get().pk == data["search_id"]


@pytest.mark.django_db
def test_api_accepts_a_comma_separated_string(user_client):
    response = _call(user_client, {"keywords": "a, b\nc", "location": "gb"})
    assert response.status_code == 200
    assert response.json()["keywords"] == ["a", "b", "c"]
    assert response.json()["location"] == "GB"


@pytest.mark.django_db
def test_api_refuses_anonymous_callers_with_401_and_records_it(client):
    response = _call(client, {"keywords": ["seo"]})
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    usage = APIUsage.objects.get()
    assert usage.user is None and usage.status_code == 401
    assert not SearchHistory.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        {},
        {"keywords": []},
        {"keywords": [f"kw {i}" for i in range(201)]},
        {"keywords": ["x" * 81]},
        {"keywords": ["seo\u0000tools"]},
        {"keywords": ["ok"], "location": "XX"},
        {"keywords": ["ok"], "match_type": 3},
        {"keywords": 5},
        pytest.param("[" * 100_000, id="deeply-nested-array"),
        pytest.param('{"keywords": ' * 50_000, id="deeply-nested-object"),
    ],
)
def test_api_bad_input_is_400_and_writes_nothing_but_usage(user_client, user, body):
    response = _call(user_client, body)
    assert response.status_code == 400
    assert response.json()["message"]
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 0
    assert not SearchHistory.objects.exists()
    assert APIUsage.objects.get().status_code == 400


@pytest.mark.django_db
def test_api_oversized_body_is_413_and_recorded_as_such(user_client, user, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = _call(user_client, {"keywords": ["kw"] * 400})
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 0
    assert not SearchHistory.objects.exists()
    assert APIUsage.objects.get().status_code == 413
    # A form-encoded body is read by the CSRF check, before the JSON parse.
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/search/")  # sets the csrftoken cookie
    response = client.post(URL, {"keywords": "kw, " * 400})
    assert response.status_code == 413
    assert APIUsage.objects.filter(status_code=413).count() == 2


@pytest.mark.django_db
def test_api_over_quota_is_429_with_used_and_limit(user_client, user):
    user.keyword_searches_this_month = 300
    user.monthly_reset_at = timezone.now() + dt.timedelta(days=2)
    user.save()
    response = _call(user_client, {"keywords": ["seo"]})
    assert response.status_code == 429
    data = response.json()
    assert (data["used"], data["limit"]) == (300, 300)
    assert data["upgrade_url"].endswith("/billing/")
    assert APIUsage.objects.get().status_code == 429


@pytest.mark.django_db
def test_api_provider_error_is_502_and_uses_no_quota(
    user_client, user, broken_provider
):
    response = _call(user_client, {"keywords": ["seo"]})
    assert response.status_code == 502
    assert "temporarily unavailable" in response.json()["message"]
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 0
    assert APIUsage.objects.get().status_code == 502


@pytest.mark.django_db
def test_api_get_is_405_and_recorded(user_client):
    response = user_client.get(URL)
    assert response.status_code == 405
    assert APIUsage.objects.get().method == "GET"


@pytest.mark.django_db
def test_api_enforces_csrf_for_session_users_and_records_the_refusal(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = _call(client, {"keywords": ["seo"]})
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed"
    assert not SearchHistory.objects.exists()
    assert APIUsage.objects.get().status_code == 403

    client.get("/search/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = _call(client, {"keywords": ["seo"]}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert APIUsage.objects.filter(status_code=200).count() == 1


@pytest.mark.django_db
def test_api_records_a_call_that_breaks_with_500(user, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr("searches.services.search_run", broken)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    response = _call(client, {"keywords": ["seo"]})
    assert response.status_code == 500
    assert APIUsage.objects.get().status_code == 500


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"keywords": ["\\ud800"]}', id="escaped-in-a-list"),
        pytest.param('{"keywords": "seo, \\udfff tools"}', id="escaped-in-a-string"),
        pytest.param('{"keywords": ["ok"], "location": "\\ud800"}', id="in-an-option"),
        pytest.param(b'{"keywords": ["\xed\xa0\x80"]}', id="raw-utf8-surrogate"),
        pytest.param(b'{"keywords": ["\xff\xfe seo"]}', id="raw-invalid-utf8"),
    ],
)
def test_api_lone_surrogate_is_400_and_recorded(user_client, user, body):
    # A lone surrogate used to reach PostgreSQL (and the cache key) as a 500.
    response = _call(user_client, body)

    assert response.status_code == 400
    assert response.json()["error"] in {"invalid_text", "invalid_json"}
    assert response.json()["message"]
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 0
    assert not SearchHistory.objects.exists()
    assert APIUsage.objects.get().status_code == 400


@pytest.mark.django_db
def test_api_says_which_text_it_refused(user_client):
    response = _call(user_client, '{"keywords": ["\\ud800"]}')

    assert response.json()["error"] == "invalid_text"
    assert "not valid Unicode" in response.json()["message"]


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["%ED%A0%80", "%FF%FE", "seo%00tools"])
def test_search_form_with_broken_text_answers_a_page_not_a_500(user_client, value):
    # Browsers cannot send a lone surrogate in a form; a crafted body can send
    # its UTF-8 bytes, which Django decodes to U+FFFD before the form sees it.
    response = user_client.post(
        "/search/",
        f"keywords={value}&location=US&language=en&match_type=broad",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code in {200, 302, 400}
    for history in SearchHistory.objects.all():
        assert all(keyword.encode() for keyword in history.keywords)
