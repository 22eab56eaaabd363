import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.searches.factories import (
    APIUsageFactory,
    SavedSearchFactory,
    SearchHistoryFactory,
)


def _get(client, url, params=None):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
    return response, [q["sql"] for q in ctx.captured_queries]


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["searchhistory", "apiusage", "savedsearch"])
def test_admin_lists_render_for_staff(admin_client, model):
    SearchHistoryFactory.create_batch(3)
    APIUsageFactory.create_batch(3)
    SavedSearchFactory.create_batch(3)
    response = admin_client.get(reverse(f"admin:searches_{model}_changelist"))
    assert response.status_code == 200


@pytest.mark.django_db
def test_history_admin_never_counts_the_whole_table(admin_client):
    SearchHistoryFactory.create_batch(5)
    url = reverse("admin:searches_searchhistory_changelist")
    response, queries = _get(admin_client, url)
    assert response.status_code == 200
    counts = [
        q for q in queries if "COUNT(" in q.upper() and "searches_searchhistory" in q
    ]
    # Only the capped count: SELECT COUNT(*) FROM (SELECT ... LIMIT 10001).
    assert len(counts) == 1
    assert "LIMIT 10001" in counts[0]
    # Filters have fixed choices: no DISTINCT scan of the table.
    assert not any(
        "DISTINCT" in q.upper() and "searches_searchhistory" in q for q in queries
    )


@pytest.mark.django_db
def test_history_admin_filters_by_provider_and_date(admin_client):
    SearchHistoryFactory(provider="sample", keywords=["from sample"])
    SearchHistoryFactory(provider="dataforseo", keywords=["from dataforseo"])
    url = reverse("admin:searches_searchhistory_changelist")
    response = admin_client.get(url, {"provider": "dataforseo"})
    assert list(
        response.context["cl"].result_list.values_list("provider", flat=True)
    ) == ["dataforseo"]
    response = admin_client.get(url, {"searched_at__gte": "2000-01-01 00:00:00+00:00"})
    assert response.status_code == 200


@pytest.mark.django_db
def test_history_admin_is_read_only(admin_client):
    row = SearchHistoryFactory()
    assert (
        admin_client.get(reverse("admin:searches_searchhistory_add")).status_code == 403
    )
    response = admin_client.post(
        reverse("admin:searches_searchhistory_change", args=[row.pk]), {"provider": "x"}
    )
    assert response.status_code == 403
    response = admin_client.post(
        reverse("admin:searches_searchhistory_delete", args=[row.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    row.refresh_from_db()
    assert row.provider == "sample"


@pytest.mark.django_db
def test_admin_search_finds_rows_by_exact_user_email(admin_client, user, other_user):
    SearchHistoryFactory(user=user, keywords=["mine"])
    SearchHistoryFactory(user=other_user, keywords=["theirs"])
    url = reverse("admin:searches_searchhistory_changelist")
    response = admin_client.get(url, {"q": user.email.upper()})
    rows = list(response.context["cl"].result_list)
    assert [r.user_id for r in rows] == [user.pk]
    response = admin_client.get(url, {"q": "partial text"})
    assert list(response.context["cl"].result_list) == []


@pytest.mark.django_db
def test_searches_admin_is_closed_to_non_staff(user_client):
    response = user_client.get(reverse("admin:searches_searchhistory_changelist"))
    assert response.status_code == 302


@pytest.mark.django_db
def test_saved_search_admin_renames_through_the_service_and_cannot_add(admin_client):
    saved = SavedSearchFactory(name="Before")
    url = reverse("admin:searches_savedsearch_change", args=[saved.pk])
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"name": "After"})
    assert response.status_code == 302
    saved.refresh_from_db()
    assert saved.name == "After"
    assert (
        admin_client.get(reverse("admin:searches_savedsearch_add")).status_code == 403
    )


@pytest.mark.django_db
def test_saved_search_admin_refuses_an_empty_name(admin_client):
    saved = SavedSearchFactory(name="Keep")
    url = reverse("admin:searches_savedsearch_change", args=[saved.pk])
    response = admin_client.post(url, {"name": ""})
    assert response.status_code == 200
    saved.refresh_from_db()
    assert saved.name == "Keep"
