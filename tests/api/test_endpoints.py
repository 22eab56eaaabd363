"""What each operation does, scoped to the key's owner."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps_catalog import services as catalog
from apps_catalog.models import App
from searches.models import APIUsage, SavedSearch, SearchHistory
from tests.accounts.factories import UserFactory
from tests.searches.factories import SavedSearchFactory, SearchHistoryFactory

pytestmark = pytest.mark.django_db


def test_search_counts_against_the_same_quota_as_the_page(api, owner):
    response = api.post("/searches", {"keywords": ["SEO tools", "seo tools", "crm"]})
    assert response.status_code == 200
    body = response.json()
    assert body["keywords"] == ["seo tools", "crm"]
    assert body["usage"]["used"] == 2
    assert body["is_sample"] is True
    assert SearchHistory.objects.get(pk=body["history_id"]).user == owner
    owner.refresh_from_db()
    assert owner.keyword_searches_this_month == 2
    # The same search again comes from the cache, and still counts.
    again = api.post("/searches", {"keywords": ["seo tools", "crm"]}).json()
    assert again["cache_hit"] is True
    assert again["usage"]["used"] == 4


def test_over_quota_is_429_and_nothing_counted(api, owner):
    owner.keyword_searches_this_month = 299
    owner.monthly_reset_at = timezone.now() + dt.timedelta(days=3)
    owner.save(update_fields=["keyword_searches_this_month", "monthly_reset_at"])
    response = api.post("/searches", {"keywords": ["a", "b"]})
    assert response.status_code == 429
    problem = response.json()
    assert (problem["code"], problem["used"], problem["limit"]) == (
        "quota_exceeded",
        299,
        300,
    )
    owner.refresh_from_db()
    assert owner.keyword_searches_this_month == 299


def test_saved_searches_round_trip(api, owner):
    created = api.post(
        "/saved-searches", {"name": "CRM ideas", "search": {"keywords": ["crm"]}}
    )
    assert created.status_code == 201
    saved_id = created.json()["id"]
    assert created.json()["results"][0]["keyword"] == "crm"
    listed = api.get("/saved-searches").json()
    assert [i["id"] for i in listed["items"]] == [saved_id]
    assert "results" not in listed["items"][0]
    renamed = api.patch(f"/saved-searches/{saved_id}", {"name": "CRM"})
    assert renamed.json()["name"] == "CRM"
    assert api.get(f"/saved-searches/{saved_id}").json()["name"] == "CRM"
    assert api.delete(f"/saved-searches/{saved_id}").status_code == 204
    assert not SavedSearch.objects.exists()


def _queries(api, path, params) -> int:
    """Queries of one call, leaving out the database cache's own (the rate
    limit counter lives in Redis in production: README "Configuration")."""
    with CaptureQueriesContext(connection) as captured:
        assert api.get(path, params).status_code == 200
    return sum("django_cache" not in q["sql"] for q in captured.captured_queries)


def test_history_pages_with_a_cursor(api, owner):
    now = timezone.now()
    for i in range(7):
        SearchHistoryFactory(user=owner, searched_at=now - dt.timedelta(minutes=i))
    SearchHistoryFactory()  # someone else's
    api.get("/usage")  # the key's last_used_at is written once a minute: done now
    # Key lookup, history page, usage row: the same for 3 rows or 7.
    assert _queries(api, "/history", {"limit": 3}) == _queries(
        api, "/history", {"limit": 7}
    )
    assert _queries(api, "/history", {"limit": 7}) <= 5
    first = api.get("/history", {"limit": 3}).json()
    assert len(first["items"]) == 3
    seen = [i["id"] for i in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api.get("/history", {"limit": 3, "cursor": cursor}).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
    expected = list(
        SearchHistory.objects.filter(user=owner)
        .order_by("-searched_at", "-id")
        .values_list("id", flat=True)
    )
    assert seen == expected


def test_catalog_lists_active_apps_with_filters_and_cursor(api):
    ada = UserFactory(name="Ada")
    for i in range(5):
        catalog.app_create(owner=ada, name=f"Habit {i}", status=App.Status.ACTIVE)
    draft = catalog.app_create(owner=ada, name="Habit draft")
    first = api.get("/apps", {"q": "habit", "limit": 2}).json()
    ids = [a["id"] for a in first["items"]]
    page2 = api.get("/apps", {"q": "habit", "limit": 2, "cursor": first["next_cursor"]})
    ids += [a["id"] for a in page2.json()["items"]]
    assert len(set(ids)) == 4
    assert draft.pk not in ids
    assert first["items"][0]["owner_name"] == "Ada"
    assert "email" not in str(first)
    one = api.get(f"/apps/{ids[0]}").json()
    assert one["monetization"] == []


def test_catalog_list_queries_do_not_grow(api):
    ada = UserFactory()
    for i in range(30):
        catalog.app_create(owner=ada, name=f"App {i}", status=App.Status.ACTIVE)
    api.get("/usage")
    assert _queries(api, "/apps", {"limit": 3}) == _queries(api, "/apps", {"limit": 30})
    assert _queries(api, "/apps", {"limit": 30}) <= 5


@pytest.mark.parametrize("path", ["/me/apps", "/saved-searches"])
def test_own_list_queries_do_not_grow(api, owner, path):
    for i in range(12):
        catalog.app_create(owner=owner, name=f"Mine {i}")
        SavedSearchFactory(user=owner)
    api.get("/usage")
    assert _queries(api, path, {"limit": 2}) == _queries(api, path, {"limit": 12})
    assert _queries(api, path, {"limit": 12}) <= 5
    assert len(api.get(path, {"limit": 12}).json()["items"]) == 12


def test_own_apps_and_requirements_with_the_version_check(api, owner):
    app = api.post("/me/apps", {"name": "Tracker", "status": "ACTIVE"}).json()
    assert app["owner_name"] == "Ada Builder"
    updated = api.patch(f"/me/apps/{app['id']}", {"description": "Habits"}).json()
    assert (updated["name"], updated["description"]) == ("Tracker", "Habits")
    requirement = api.post(
        f"/me/apps/{app['id']}/requirements",
        {"description": "Sync", "priority": "HIGH"},
    ).json()
    assert requirement["version"] == 1
    path = f"/me/apps/{app['id']}/requirements/{requirement['id']}"
    moved = api.patch(path, {"version": 1, "status": "IN_PROGRESS"})
    assert moved.json()["version"] == 2
    stale = api.patch(path, {"version": 1, "description": "Old edit"})
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 2
    listed = api.get(f"/me/apps/{app['id']}/requirements").json()
    assert [(r["description"], r["status"]) for r in listed] == [
        ("Sync", "IN_PROGRESS")
    ]


def test_a_taken_domain_is_409(api):
    api.post("/me/apps", {"name": "One", "domain": "one.example.com"})
    response = api.post("/me/apps", {"name": "Two", "domain": "one.example.com"})
    assert response.status_code == 409
    assert App.objects.filter(name="Two").count() == 0


def test_the_openapi_document_and_docs_are_served(client):
    document = client.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert "bearer" in str(document["components"]["securitySchemes"]).lower()
    problem = document["paths"]["/api/v1/usage"]["get"]["responses"]["401"]["content"]
    assert "application/problem+json" in problem
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    # Documentation is not a call of the API: not metered.
    assert not APIUsage.objects.exists()
