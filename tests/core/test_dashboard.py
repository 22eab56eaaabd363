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
TABS = ("overview", "queries", "tables", "replication")


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
        if ") capped) AS n" in sql:
            # Tables never analyzed and without statistics: counted, capped
            # (core.monitoring.table_sizes).
            assert "LIMIT 10001" in sql
            continue
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

    response = admin_client.get(f"{DASHBOARD}?tab=queries")

    assert response.status_code == 200
    assert "Not available" in response.content.decode()
    assert "CREATE EXTENSION pg_stat_statements" in response.content.decode()


TAB_SECTIONS = {
    "overview": ("Connections by state", 'id="charts"', "deadlock", "cache hits"),
    "queries": ("Running queries", "Blocking locks", "Slowest statements"),
    "tables": (
        "Tables by size",
        "Dead rows and vacuum",
        "Unused indexes",
        'class="bar fill-',
        "ops_auditlog",
    ),
    "replication": ("Replication", "Replication slots", "Job queue"),
}
# Queries per tab, session and user lookups (2) included; each tab reads only
# what it shows. Tables: one more when a table was never analyzed and has no
# statistics (its capped count); replication: the job queue's 6.
TAB_MAX_QUERIES = {"overview": 9, "queries": 10, "tables": 10, "replication": 13}


@pytest.mark.django_db
@pytest.mark.parametrize("tab", TABS)
def test_each_tab_renders_for_staff_with_a_bounded_query_count(admin_client, tab):
    url = f"{DASHBOARD}?tab={tab}"
    admin_client.get(url)  # warm the session/user lookups

    # The statements as sent: with server-side binding the captured SQL is the
    # text before the execute wrappers (the dashboard's tag is one of them), so
    # read what psycopg sent (Django's own last_executed_query reads it so too).
    sent = []

    def record(execute, sql, params, many, context):
        try:
            return execute(sql, params, many, context)
        finally:
            sent.append(context["cursor"].cursor._query.query.decode())

    with CaptureQueriesContext(connection) as first, connection.execute_wrapper(record):
        response = admin_client.get(url)
    # Many more rows in the database do not add queries (queued jobs and
    # periodic ticks, metrics included).
    from tests.core.factories import AuditLogFactory, FeatureFlagFactory

    FeatureFlagFactory.create_batch(30)
    AuditLogFactory.create_batch(30)
    for _ in range(30):
        mail_job()
    job_finish(periodic_defer(minute_tick(3)), "succeeded")
    periodic_defer(minute_tick(2))
    with CaptureQueriesContext(connection) as second:
        admin_client.get(url)

    assert response.status_code == 200
    html = response.content.decode()
    for section in TAB_SECTIONS[tab]:
        assert section in html, section
    # The other tabs' sections are not on this page.
    for other, sections in TAB_SECTIONS.items():
        if other != tab:
            assert f"<h2>{sections[0]}</h2>" not in html
    assert f'href="?tab={tab}" aria-current="page"' in html
    assert len(first) == len(second)
    assert len(first) <= TAB_MAX_QUERIES[tab], [q["sql"][:80] for q in first]
    # Everything the page read itself is tagged (the session lookups before
    # the view are the request's, not the dashboard's).
    own = [sql for sql in sent if "pg_" in sql]
    assert own and all("/* dashboard */" in sql for sql in own)


@pytest.mark.django_db
def test_an_unknown_tab_shows_the_overview(admin_client):
    response = admin_client.get(f"{DASHBOARD}?tab=<script>")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="?tab=overview" aria-current="page"' in html
    assert "<script>" not in html.split('id="content-main"', 1)[1]


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

    response = admin_client.get(f"{DASHBOARD}?tab=replication")

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
    html = admin_client.get(f"{DASHBOARD}?tab=replication").content.decode()

    section = html.split('id="job-queue"', 1)[1].split("</section>", 1)[0]
    assert "Queue health: <strong>ok</strong>" in section
    assert "No job queued or running." in section
    assert "OVERDUE" not in section
    assert "never" in section  # no periodic tick deferred yet
