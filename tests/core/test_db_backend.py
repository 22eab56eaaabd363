"""core.db.postgresql: server-side binding with bulk_create batches that fit."""

import os
import resource
import time

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


@pytest.mark.django_db(transaction=True)
def test_a_quiet_connection_is_healthy_without_a_query(monkeypatch):
    from django.db.backends.postgresql.base import DatabaseWrapper

    connection.ensure_connection()

    def no_query(self):
        raise AssertionError("the health check sent SELECT 1")

    monkeypatch.setattr(DatabaseWrapper, "is_usable", no_query)
    assert connection.is_usable()


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_ended_is_not_healthy():
    import psycopg

    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
        # The FATAL notice and the close reach the socket.
        for _ in range(100):
            if (
                other.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]
                ).fetchone()[0]
                == 0
            ):
                break
            time.sleep(0.02)

    assert not connection.is_usable()
    connection.close()
    connection.ensure_connection()
    assert connection.is_usable()


@pytest.mark.django_db(transaction=True)
def test_an_idle_connection_on_a_high_descriptor_is_still_usable():
    """A process with many files open gets descriptors past 1024, where
    select() refuses to look; the idle check must not call such a connection
    dead (it would reconnect on every request)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        pytest.skip(f"open-files limit {soft} is below 1200")
    held = []
    try:
        while not held or held[-1] < 1100:
            held.append(os.open(os.devnull, os.O_RDONLY))
        connection.close()
        connection.ensure_connection()
        assert connection.connection.fileno() > 1024

        assert connection.is_usable()
    finally:
        connection.close()
        for fd in held:
            os.close(fd)
