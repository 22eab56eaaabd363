import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.monitoring import database_report
from tests.core.test_jobs import (
    job_defer,
    job_finish,
    mail_job,
    minute_tick,
    periodic_defer,
    queue_empty,
    utc,
)

DASHBOARD = reverse("admin:ops_databasedashboard_changelist")


@pytest.fixture(autouse=True)
def _queue_empty(db):
    """No job committed by another test module makes this queue look late."""
    queue_empty()


@pytest.mark.django_db
def test_report_reads_only_catalog_and_statistics_views():
    with CaptureQueriesContext(connection) as queries:
        report = database_report()

    assert report.database == connection.settings_dict["NAME"]
    assert report.database_size > 0
    assert any(t["name"] == "ops_auditlog" for t in report.tables)
    relations, queue_relations = set(), set()
    for query in queries.captured_queries:
        sql = query["sql"]
        assert 'count(*) from "' not in sql.lower()
        names = set(re.findall(r"\b(?:FROM|JOIN)\s+([a-z_\"]+)", sql))
        if "procrastinate_" in sql:
            # The job queue section (core.jobs): Procrastinate's tables, read
            # through their indexes (tests/core/test_jobs.py).
            names -= set(re.findall(r"\bWITH\s+([a-z_]+)\s+AS", sql))
            queue_relations |= names
        else:
            relations |= names
    # Only PostgreSQL's own views: never an application table.
    assert relations
    assert all(name.startswith("pg_") for name in relations), relations
    assert queue_relations
    assert all(
        name.startswith(("pg_", "procrastinate_")) for name in queue_relations
    ), queue_relations


@pytest.mark.django_db
def test_report_draws_bars_relative_to_the_largest_table():
    report = database_report()

    assert report.tables[0]["bar_pct"] == 100
    assert all(0 <= t["bar_pct"] <= 100 for t in report.tables)
    sizes = [t["total_bytes"] for t in report.tables]
    assert sizes == sorted(sizes, reverse=True)


@pytest.mark.django_db
def test_report_lists_connections_and_unused_non_constraint_indexes():
    report = database_report()

    assert report.connections_total >= 1
    assert report.max_connections > 0
    names = {row["name"] for row in report.unused_indexes}
    assert not any(n.endswith("_pkey") for n in names)


@pytest.mark.django_db
def test_slowest_statements_available_on_server_that_preloads_them():
    with connection.cursor() as cursor:
        cursor.execute("SHOW shared_preload_libraries")
        preloaded = "pg_stat_statements" in cursor.fetchone()[0]

    report = database_report()

    assert report.statements_available is preloaded
    if preloaded:
        assert report.statements and "mean_ms" in report.statements[0]
    else:
        assert "not available" in report.statements_note


@pytest.mark.django_db
def test_missing_extension_shows_not_available_without_breaking_the_page(
    admin_client,
):
    # Inside the test's transaction: dropped here, back after the rollback.
    with connection.cursor() as cursor:
        cursor.execute("DROP EXTENSION IF EXISTS pg_stat_statements")

    response = admin_client.get(DASHBOARD)

    assert response.status_code == 200
    assert "Not available" in response.content.decode()
    assert "CREATE EXTENSION pg_stat_statements" in response.content.decode()


@pytest.mark.django_db
def test_dashboard_renders_for_staff_with_bars_and_fixed_query_count(admin_client):
    admin_client.get(DASHBOARD)  # warm the session/user lookups

    with CaptureQueriesContext(connection) as first:
        response = admin_client.get(DASHBOARD)
    # Many more rows in the database do not add queries (queued jobs and
    # periodic ticks included).
    from tests.core.factories import AuditLogFactory, FeatureFlagFactory

    FeatureFlagFactory.create_batch(30)
    AuditLogFactory.create_batch(30)
    for _ in range(30):
        mail_job()
    job_finish(periodic_defer(minute_tick(3)), "succeeded")
    periodic_defer(minute_tick(2))
    with CaptureQueriesContext(connection) as second:
        admin_client.get(DASHBOARD)

    assert response.status_code == 200
    html = response.content.decode()
    for section in (
        "Connections by state",
        "Slowest statements",
        "Tables by size",
        "Unused indexes",
        "Job queue",
        'class="bar fill-',
    ):
        assert section in html
    assert "ops_auditlog" in html
    assert len(first) == len(second)
    # Session and user lookups take 2; the report 9 (7 + a savepoint pair around
    # pg_stat_statements); the job queue section 6 (4 + a savepoint pair).
    assert len(first) <= 20


@pytest.mark.django_db
def test_dashboard_is_linked_from_the_admin_index(admin_client):
    response = admin_client.get(reverse("admin:index"))

    assert DASHBOARD in response.content.decode()


@pytest.mark.django_db
def test_non_staff_are_sent_away_from_the_dashboard(user_client, client):
    response = user_client.get(DASHBOARD)
    assert response.status_code == 302
    assert "/login/" in response["Location"]

    anonymous = client.get(DASHBOARD)
    assert anonymous.status_code == 302


@pytest.mark.django_db
def test_db_report_prints_the_same_numbers():
    out = StringIO()
    call_command("db_report", stdout=out)
    text = out.getvalue()

    report = database_report()
    assert f"Database {report.database}" in text
    assert "Slowest statements" in text
    assert "ops_auditlog" in text
    assert f"of {report.max_connections})" in text


@pytest.mark.django_db
def test_dashboard_shows_the_job_queue_and_flags_an_overdue_periodic_job(
    admin_client,
):
    mail_job()
    mail_job()
    job_defer(task="core.other", queue="maintenance")
    # The every-minute stalled-job recovery last succeeded ten minutes ago.
    tick = minute_tick(10)
    job_finish(periodic_defer(tick), "succeeded", at=utc(tick + 1))

    response = admin_client.get(DASHBOARD)

    assert response.status_code == 200
    html = response.content.decode()
    section = html.split('id="job-queue"', 1)[1].split("</section>", 1)[0]
    assert "Queue health: degraded" in section
    assert "periodic job core.jobs_stalled_retry (jobs_stalled_retry) has not" in (
        section
    )
    assert "<strong>3</strong> queued or running" in section
    jobs_url = reverse("admin:procrastinate_procrastinatejob_changelist")
    assert f'href="{jobs_url}?queue_name=mail"' in section
    periodic = section.split("<h3>Periodic jobs</h3>", 1)[1]
    row = periodic.split("core.jobs_stalled_retry", 1)[1].split("</tr>", 1)[0]
    assert "<code>* * * * *</code>" in row
    assert "every 1 min" in row
    assert "OVERDUE" in row
    assert "succeeded" in row


@pytest.mark.django_db
def test_dashboard_says_the_queue_is_ok_on_a_fresh_install(admin_client):
    html = admin_client.get(DASHBOARD).content.decode()

    section = html.split('id="job-queue"', 1)[1].split("</section>", 1)[0]
    assert "Queue health: <strong>ok</strong>" in section
    assert "No job queued or running." in section
    assert "OVERDUE" not in section
    assert "never" in section  # no periodic tick deferred yet
