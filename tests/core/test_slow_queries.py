import logging

import pytest
from django.db import connection, connections

from core.slow_queries import slow_query_logger

LOGGER = "core.slow_queries"


def _slow_records(caplog):
    return [r for r in caplog.records if r.name == LOGGER]


@pytest.mark.django_db
def test_slow_query_is_logged_once_with_duration_and_placeholders(settings, caplog):
    settings.SLOW_QUERY_MS = 50
    caplog.set_level(logging.WARNING, logger=LOGGER)

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s), %s::text", [0.1, "secret@example.com"])

    records = _slow_records(caplog)
    assert len(records) == 1
    record = records[0]
    assert record.levelno == logging.WARNING
    assert record.duration_ms >= 100
    assert record.sql == "SELECT pg_sleep(%s), %s::text"
    assert "secret@example.com" not in record.getMessage()
    assert "0.1" not in record.getMessage()


@pytest.mark.django_db
def test_fast_query_logs_nothing(settings, caplog):
    settings.SLOW_QUERY_MS = 50
    caplog.set_level(logging.WARNING, logger=LOGGER)

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")

    assert _slow_records(caplog) == []


@pytest.mark.django_db(transaction=True)
def test_orm_queries_are_covered_and_wrapper_installed_once(settings, caplog):
    settings.SLOW_QUERY_MS = 0
    caplog.set_level(logging.WARNING, logger=LOGGER)
    # Reconnecting fires connection_created again: still a single wrapper.
    connection.close()
    connection.ensure_connection()

    from core.models import FeatureFlag

    list(FeatureFlag.objects.filter(key="x"))

    assert connection.execute_wrappers.count(slow_query_logger) == 1
    records = [r for r in _slow_records(caplog) if "ops_featureflag" in r.sql]
    assert len(records) == 1


@pytest.mark.django_db
def test_execute_wrapper_context_leaves_slow_query_logger_in_place():
    def passthrough(execute, sql, params, many, context):
        return execute(sql, params, many, context)

    connection.ensure_connection()
    with connection.execute_wrapper(passthrough), connection.cursor() as cursor:
        cursor.execute("SELECT 1")

    assert connection.execute_wrappers.count(slow_query_logger) == 1
    assert passthrough not in connection.execute_wrappers
    assert all(
        conn.execute_wrappers.count(slow_query_logger) <= 1
        for conn in connections.all()
    )


def test_management_commands_log_slow_queries(db, settings, caplog):
    from django.core.management import call_command

    settings.SLOW_QUERY_MS = 0
    caplog.set_level(logging.WARNING, logger=LOGGER)

    call_command("prune_audit_log")

    assert any("ops_auditlog" in r.sql for r in _slow_records(caplog))


@pytest.mark.django_db
def test_web_requests_log_slow_queries(client, settings, caplog):
    settings.SLOW_QUERY_MS = 0
    caplog.set_level(logging.WARNING, logger=LOGGER)

    client.get("/healthz")

    assert any("pg_stat_activity" in r.sql for r in _slow_records(caplog))
