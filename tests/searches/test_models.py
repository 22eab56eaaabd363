import pytest
from django.db import IntegrityError, connection, transaction

from searches.models import SavedSearch, SearchHistory
from searches.seed import seed_demo
from tests.accounts.factories import UserFactory
from tests.searches.factories import SavedSearchFactory
from tests.searches.plans import history_competitors_drop


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields",
    [
        {"name": ""},
        {"keywords": [], "keyword_count": 1},
        {"keyword_count": 0},
        {"keyword_count": 201},
        {"match_type": "fuzzy"},
    ],
)
def test_saved_search_constraints_hold_in_the_database(user, fields):
    values = {
        "user": user,
        "name": "ok",
        "keywords": ["a"],
        "keyword_count": 1,
        "results": [],
        **fields,
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        SavedSearch.objects.create(**values)


@pytest.mark.django_db
def test_history_indexes_serve_the_history_page_query(user):
    """The history page's keyset query walks searchhist_user_time_idx."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        # Whether the index can give the order, whatever the statistics other
        # tests' rows left (a bitmap scan and a sort of a few rows may look cheaper).
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        history_competitors_drop(cursor)
        qs = SearchHistory.objects.filter(user=user).order_by("-searched_at", "-id")[
            :51
        ]
        sql, params = qs.query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "searchhist_user_time_idx" in plan
    assert "Sort" not in plan


@pytest.mark.django_db
def test_seed_demo_is_idempotent():
    admin = UserFactory(role="ADMIN")
    UserFactory.create_batch(2)
    first = seed_demo(admin=admin, stdout=None)
    assert first["saved searches"] == 9
    assert first["search history"] == 90
    assert first["api usage"] == 30
    second = seed_demo(admin=admin, stdout=None)
    assert set(second.values()) == {0}
    assert SavedSearch.objects.count() == 9


@pytest.mark.django_db
def test_saved_search_factory_builds_a_valid_row():
    saved = SavedSearchFactory()
    saved.full_clean()


@pytest.mark.django_db
def test_saved_list_query_walks_its_index_without_a_sort(user):
    """/search/saved/ reads one page along savedsearch_user_access_idx, ties by id."""
    from searches.selectors import saved_searches_for

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        # Whether the index can give the order at all, whatever the statistics
        # of the moment (a near-empty table may sort a handful of rows instead).
        cursor.execute("SET LOCAL enable_sort = off")
        sql, params = saved_searches_for(user)[:25].query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "savedsearch_user_access_idx" in plan
    assert "Sort" not in plan
