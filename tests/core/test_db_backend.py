"""core.db.postgresql: server-side binding with bulk_create batches that fit."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from searches.models import SearchHistory
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_suite_runs_with_server_side_binding():
    # Direct connections (the suite's) bind on the server (config/database.py),
    # so every test below exercises the production path.
    assert connection.features.uses_server_side_binding


def test_bulk_create_beyond_the_protocols_parameter_limit_is_batched():
    # SearchHistory has an ArrayField: no UNNEST, one parameter per value.
    user = UserFactory()
    fields = len(SearchHistory._meta.concrete_fields)
    rows = 65_535 // fields + 10

    with CaptureQueriesContext(connection) as captured:
        SearchHistory.objects.bulk_create(
            SearchHistory(user=user, keywords=["kw"], keyword_count=1)
            for _ in range(rows)
        )

    assert SearchHistory.objects.filter(user=user).count() == rows
    inserts = [q for q in captured.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 2
