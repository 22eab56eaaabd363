"""The database report behind `manage.py db_report` and the admin dashboard.

Every query reads PostgreSQL's catalog and statistics views only (``pg_class``,
``pg_stat_*``, ``pg_stat_statements``): none scans a user table, so the report
costs the same on an empty database and on one with hundreds of millions of
rows. Row counts are the planner's estimates (``pg_class.reltuples``, kept
current by autovacuum/ANALYZE), not ``COUNT(*)``.

The exceptions: the job queue section (:func:`core.jobs.queue_report`) reads
Procrastinate's tables, through their indexes and with bounded scans; a table
never analyzed (``reltuples = -1``) whose statistics hold no live-row count
either is counted, at most ``ROW_COUNT_CAP`` rows (:func:`table_sizes`).

The admin dashboard draws this in four tabs (:data:`TABS`), each reading only
what it shows. Every statement it sends is tagged ``/* dashboard */``
(:func:`dashboard_tagged`), so "slowest statements" can leave the dashboard's
own reads out, as it leaves out DDL, ``SET`` and transaction control.
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from core import charts, replica, selectors
from core.jobs import QueueReport, queue_report

TOP_TABLES = 25
TOP_INDEXES = 40
TOP_STATEMENTS = 10
TOP_ACTIVITY = 50
# Tables never analyzed and without statistics are counted up to this many rows.
ROW_COUNT_CAP = 10_000

# The dashboard's tabs: (slug, title). ``?tab=<slug>`` picks one; no script.
TABS = (
    ("overview", "Overview"),
    ("queries", "Queries"),
    ("tables", "Tables & indexes"),
    ("replication", "Replication & jobs"),
)

# Appended to every statement the dashboard sends. pg_stat_statements keeps a
# trailing comment in the text it stores (a leading one too, but a trailing
# one never hides the statement's first keyword from the DDL filter).
DASHBOARD_TAG = "/* dashboard */"

# Statements "slowest statements" leaves out: schema changes (migrations),
# session settings and transaction control. Matched at the start of the text,
# after any leading comments.
NOT_APPLICATION_SQL = (
    r"^\s*(/\*.*?\*/\s*)*"
    r"(CREATE|ALTER|DROP|TRUNCATE|COMMENT|GRANT|REVOKE|REINDEX|CLUSTER|VACUUM"
    r"|ANALYZE|REFRESH|SET|RESET|SHOW|BEGIN|START|COMMIT|END|ROLLBACK|ABORT"
    r"|SAVEPOINT|RELEASE|PREPARE TRANSACTION|DISCARD|DEALLOCATE|LOCK|CHECKPOINT"
    r"|LISTEN|UNLISTEN|NOTIFY)\M"
)


def _tag(execute, sql, params, many, context):
    if isinstance(sql, str) and DASHBOARD_TAG not in sql:
        sql = f"{sql} {DASHBOARD_TAG}"
    return execute(sql, params, many, context)


@contextmanager
def dashboard_tagged(*aliases: str):
    """Tag every statement sent on ``aliases`` (default: every configured
    database) inside the block with :data:`DASHBOARD_TAG`."""
    aliases = aliases or tuple(connections.settings.keys())
    wrapped = []
    try:
        for alias in aliases:
            manager = connections[alias].execute_wrapper(_tag)
            manager.__enter__()
            wrapped.append(manager)
        yield
    finally:
        for manager in reversed(wrapped):
            manager.__exit__(None, None, None)


@dataclass
class DatabaseReport:
    database: str
    server_version: str
    database_size: int
    max_connections: int
    connections: list[dict]
    tables: list[dict]
    indexes: list[dict]
    unused_indexes: list[dict]
    statements: list[dict] = field(default_factory=list)
    statements_available: bool = False
    statements_note: str = ""
    jobs: QueueReport | None = None
    jobs_note: str = ""

    @property
    def connections_total(self) -> int:
        return sum(row["count"] for row in self.connections)


def _rows(cursor) -> list[dict]:
    names = [col.name for col in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _with_bars(rows: list[dict], key: str) -> list[dict]:
    """Add ``bar_pct`` (0-100, relative to the largest row) for drawing bars."""
    largest = max((row[key] or 0 for row in rows), default=0)
    for row in rows:
        row["bar_pct"] = round(100 * (row[key] or 0) / largest, 1) if largest else 0
    return rows


def connections_by_state(cursor) -> list[dict]:
    cursor.execute(
        "SELECT coalesce(state, 'unknown') AS state, count(*) AS count"
        " FROM pg_stat_activity"
        " WHERE datname = current_database() AND backend_type = 'client backend'"
        " GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    return _rows(cursor)


def table_sizes(cursor, limit: int = TOP_TABLES) -> list[dict]:
    """The largest tables with a row count that is never unknown.

    ``estimated_rows`` is the planner's ``reltuples`` when the table has been
    analyzed. Otherwise (``-1`` until the first ANALYZE or autovacuum) it
    falls back, and ``rows_source`` says how the number was obtained:
    ``stats`` (the cumulative statistics' live-row count, kept up to date by
    every insert and delete: shown as "≈"), else ``counted``: such tables are
    counted, at most ``ROW_COUNT_CAP`` rows each, in one more statement
    (``counted_capped`` when a table has more). A table without pages is an
    exact zero.
    """
    cursor.execute(
        "SELECT n.nspname AS schema, c.relname AS name, c.reltuples,"
        " coalesce(s.n_live_tup, 0) AS live_tuples,"
        " pg_relation_size(c.oid) AS heap_bytes,"
        " pg_table_size(c.oid) AS table_bytes,"
        " pg_indexes_size(c.oid) AS index_bytes,"
        " pg_total_relation_size(c.oid) AS total_bytes"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid"
        " WHERE c.relkind IN ('r', 'p', 'm')"
        " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg\\_%%'"
        " ORDER BY total_bytes DESC, c.relname LIMIT %s",
        [limit],
    )
    rows = _rows(cursor)
    unknown = []
    for row in rows:
        reltuples, live = row.pop("reltuples"), row.pop("live_tuples")
        heap_bytes = row.pop("heap_bytes")
        if reltuples >= 0:
            row["estimated_rows"], row["rows_source"] = int(reltuples), "planner"
        elif live > 0:
            row["estimated_rows"], row["rows_source"] = int(live), "stats"
        else:
            row["estimated_rows"], row["rows_source"] = 0, "counted"
            if heap_bytes:
                unknown.append(row)
    if unknown:
        _rows_count_capped(cursor, unknown)
    return _with_bars(rows, "total_bytes")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rows_count_capped(cursor, rows: list[dict]) -> None:
    """Count the rows of never-analyzed tables, up to ``ROW_COUNT_CAP`` + 1
    each, in one statement (identifiers from the catalog, quoted)."""
    parts = [
        f"SELECT {i} AS i, (SELECT count(*) FROM (SELECT 1 FROM "  # noqa: S608 - quoted names
        f"{_quoted(row['schema'])}.{_quoted(row['name'])} LIMIT %s) capped) AS n"
        for i, row in enumerate(rows)
    ]
    cursor.execute(" UNION ALL ".join(parts), [ROW_COUNT_CAP + 1] * len(rows))
    for i, counted in cursor.fetchall():
        row = rows[i]
        if counted > ROW_COUNT_CAP:
            row["estimated_rows"], row["rows_source"] = ROW_COUNT_CAP, "counted_capped"
        else:
            row["estimated_rows"] = counted


def table_bloat(cursor, limit: int = TOP_TABLES) -> list[dict]:
    """Dead tuples per table (what VACUUM has still to reclaim), most first,
    with the share of dead rows as a bloat estimate and the last (auto)vacuum
    and (auto)analyze."""
    cursor.execute(
        "SELECT schemaname AS schema, relname AS name,"
        " n_live_tup AS live, n_dead_tup AS dead,"
        " CASE WHEN n_live_tup + n_dead_tup > 0"
        " THEN round(100.0 * n_dead_tup / (n_live_tup + n_dead_tup), 1)"
        " ELSE 0 END AS dead_pct,"
        " greatest(last_vacuum, last_autovacuum) AS last_vacuum,"
        " last_autovacuum, autovacuum_count,"
        " greatest(last_analyze, last_autoanalyze) AS last_analyze,"
        " n_mod_since_analyze AS modified_since_analyze"
        " FROM pg_stat_user_tables"
        " ORDER BY n_dead_tup DESC, relname LIMIT %s",
        [limit],
    )
    rows = _rows(cursor)
    for row in rows:
        row["dead_pct"] = float(row["dead_pct"] or 0)
    return _with_bars(rows, "dead")


def index_usage(cursor, limit: int = TOP_INDEXES) -> list[dict]:
    cursor.execute(
        "SELECT s.schemaname AS schema, s.relname AS table, s.indexrelname AS name,"
        " s.idx_scan AS scans, s.idx_tup_read AS tuples_read,"
        " pg_relation_size(s.indexrelid) AS bytes,"
        " i.indisunique AS is_unique, i.indisprimary AS is_primary"
        " FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid"
        " ORDER BY bytes DESC, s.indexrelname LIMIT %s",
        [limit],
    )
    return _with_bars(_rows(cursor), "bytes")


def unused_indexes(cursor, limit: int = TOP_INDEXES) -> list[dict]:
    """Indexes never scanned since statistics were reset.

    Unique and primary-key indexes are left out: they enforce constraints even
    when no query reads them.
    """
    cursor.execute(
        "SELECT s.schemaname AS schema, s.relname AS table, s.indexrelname AS name,"
        " pg_relation_size(s.indexrelid) AS bytes"
        " FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid"
        " WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint k"
        " WHERE k.conindid = s.indexrelid)"
        " ORDER BY bytes DESC, s.indexrelname LIMIT %s",
        [limit],
    )
    return _rows(cursor)


def slowest_statements(connection, limit: int = TOP_STATEMENTS):
    """``(available, note, rows)`` from pg_stat_statements, slowest mean first.

    Leaves out what is not the application's work: migration DDL, ``SET``,
    transaction control (:data:`NOT_APPLICATION_SQL`), the dashboard's own
    statements (:data:`DASHBOARD_TAG`) and reads of pg_stat_statements."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'"
        )
        if cursor.fetchone() is None:
            return (
                False,
                "pg_stat_statements is not available: the extension is not "
                "installed in this database (CREATE EXTENSION pg_stat_statements).",
                [],
            )
        try:
            # A savepoint: the query fails when the library is not preloaded, and
            # that must not abort a surrounding transaction.
            with transaction.atomic(using=connection.alias):
                cursor.execute(
                    "SELECT s.query, s.calls, s.total_exec_time AS total_ms,"
                    " s.mean_exec_time AS mean_ms, s.rows"
                    " FROM pg_stat_statements s"
                    " WHERE s.dbid = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())"
                    " AND s.query !~* %s"
                    " AND strpos(s.query, %s) = 0"
                    " AND strpos(s.query, 'pg_stat_statements') = 0"
                    " ORDER BY s.mean_exec_time DESC LIMIT %s",
                    [NOT_APPLICATION_SQL, DASHBOARD_TAG, limit],
                )
                rows = _rows(cursor)
        except DatabaseError as exc:
            return (
                False,
                "pg_stat_statements is not available: "
                f"{str(exc).strip().splitlines()[0]} (add it to "
                "shared_preload_libraries and restart the server).",
                [],
            )
    return True, "", _with_bars(rows, "mean_ms")


def statistics_fresh(cursor) -> None:
    """Inside a transaction PostgreSQL serves pg_stat_* from a snapshot taken
    at their first read; drop it so activity and locks are read as of now."""
    cursor.execute("SELECT pg_stat_clear_snapshot()")


def database_summary(cursor) -> dict:
    """Size, version, connection limit and the database-wide counters of
    ``pg_stat_database`` (deadlocks, temporary files, cache hits, rollbacks)
    since ``stats_reset``."""
    cursor.execute(
        "SELECT current_database() AS database,"
        " current_setting('server_version') AS server_version,"
        " pg_database_size(current_database()) AS database_size,"
        " current_setting('max_connections')::int AS max_connections,"
        " pg_is_in_recovery() AS in_recovery,"
        " d.deadlocks, d.temp_files, d.temp_bytes, d.conflicts,"
        " d.xact_commit, d.xact_rollback, d.blks_hit, d.blks_read,"
        " d.stats_reset"
        " FROM pg_stat_database d WHERE d.datname = current_database()"
    )
    row = _rows(cursor)[0]
    reads = (row["blks_hit"] or 0) + (row["blks_read"] or 0)
    row["cache_hit_pct"] = round(100 * row["blks_hit"] / reads, 2) if reads else None
    return row


def running_queries(cursor, limit: int = TOP_ACTIVITY) -> list[dict]:
    """Client connections to this database that are not idle (running, or
    holding a transaction open), longest-running first; the dashboard's own
    connection is left out. ``query`` is what pg_stat_activity keeps
    (``track_activity_query_size``, 1 kB by default)."""
    cursor.execute(
        "SELECT a.pid, a.usename AS user, a.application_name AS application,"
        " a.client_addr, a.state, a.wait_event_type, a.wait_event,"
        " extract(epoch FROM clock_timestamp() - a.query_start)::float AS duration,"
        " extract(epoch FROM clock_timestamp() - a.xact_start)::float AS xact_duration,"
        " a.query, cardinality(pg_blocking_pids(a.pid)) > 0 AS blocked"
        " FROM pg_stat_activity a"
        " WHERE a.datname = current_database()"
        " AND a.backend_type = 'client backend'"
        " AND a.pid <> pg_backend_pid()"
        " AND a.state IS DISTINCT FROM 'idle'"
        " ORDER BY a.query_start NULLS LAST, a.pid LIMIT %s",
        [limit],
    )
    return _rows(cursor)


def backend_lookup(cursor, pid: int) -> dict | None:
    """One backend of pg_stat_activity (any database, any type), with whether
    it is this connection and this database: what a cancel or terminate
    checks first. None when no such process exists (any more)."""
    cursor.execute(
        "SELECT a.pid, a.backend_type, a.pid = pg_backend_pid() AS is_self,"
        " a.datname = current_database() AS same_database,"
        " a.usename AS user, a.application_name AS application, a.state,"
        " a.query,"
        " extract(epoch FROM clock_timestamp() - a.query_start)::float AS duration"
        " FROM pg_stat_activity a WHERE a.pid = %s",
        [pid],
    )
    rows = _rows(cursor)
    return rows[0] if rows else None


PID_MAX = 2**31 - 1  # PostgreSQL's pids are int4


def pid_parse(value) -> int | None:
    """A process id from user input, or None when it cannot be one."""
    try:
        pid = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return pid if 0 < pid <= PID_MAX else None


def backend_refusal(backend: dict | None, pid: int) -> str | None:
    """Why the dashboard will not cancel or terminate ``backend`` (a
    :func:`backend_lookup` row), or None when it may: a pid that is gone, the
    dashboard's own connection, PostgreSQL's own processes (autovacuum, WAL
    sender, checkpointer…) and connections to other databases are refused."""
    if backend is None:
        return (
            f"No process with pid {pid}: its query or connection has already "
            "ended. Nothing was done."
        )
    if backend["is_self"]:
        return f"Process {pid} is the dashboard's own connection. Nothing was done."
    if backend["backend_type"] != "client backend":
        return (
            f"Process {pid} is PostgreSQL's own {backend['backend_type']}, not a "
            "client connection: it is not signalled from here. Nothing was done."
        )
    if not backend["same_database"]:
        return f"Process {pid} is connected to another database. Nothing was done."
    return None


def blocking_locks(cursor, limit: int = TOP_ACTIVITY) -> list[dict]:
    """Who waits for whom: one row per (waiting, blocking) pair, from
    ``pg_blocking_pids``, with the lock the waiter asked for and both queries.
    Only backends waiting on a lock are asked (``pg_blocking_pids`` is not
    free)."""
    cursor.execute(
        "SELECT w.pid AS waiting_pid, w.application_name AS waiting_application,"
        " w.query AS waiting_query,"
        " extract(epoch FROM clock_timestamp() - w.query_start)::float AS waiting_for,"
        " (SELECT l.mode || coalesce(' on ' || l.relation::regclass::text,"
        " ' (' || l.locktype || ')') FROM pg_locks l"
        " WHERE l.pid = w.pid AND NOT l.granted LIMIT 1) AS lock,"
        " b.pid AS blocking_pid, b.application_name AS blocking_application,"
        " b.state AS blocking_state, b.query AS blocking_query,"
        " extract(epoch FROM clock_timestamp() - b.xact_start)::float"
        " AS blocking_xact_for"
        " FROM pg_stat_activity w"
        " CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid)"
        " JOIN pg_stat_activity b ON b.pid = blocker.pid"
        " WHERE w.wait_event_type = 'Lock' AND w.datname = current_database()"
        " ORDER BY w.query_start NULLS LAST, w.pid, b.pid LIMIT %s",
        [limit],
    )
    return _rows(cursor)


@dataclass
class ReplicationReport:
    in_recovery: bool
    standbys: list[dict]
    slots: list[dict]
    replica_configured: bool
    replica: dict | None = None
    replica_note: str = ""
    # pg_stat_archiver while archive_mode is on (None: the server does not
    # archive WAL); "failing" as core.health judges it.
    archiver: dict | None = None


def replication_report(using: str = "default") -> ReplicationReport:
    """Streaming standbys as the primary sees them (``pg_stat_replication``:
    state and write/flush/replay lag), replication slots with the WAL each
    holds back, and, when a ``replica`` alias is configured (core.replica),
    that replica's own view: in recovery, replay delay and bytes behind."""
    with connections[using].cursor() as cursor:
        # With WAL archiving's state (pg_stat_archiver has one row): one round
        # trip for both.
        cursor.execute(
            "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN NULL"
            " ELSE pg_current_wal_lsn()::text END,"
            " current_setting('archive_mode') <> 'off' AS archiving,"
            " archived_count, last_archived_wal, last_archived_time,"
            " failed_count, last_failed_wal, last_failed_time,"
            " last_failed_time IS NOT NULL AND last_failed_time >"
            " coalesce(last_archived_time, '-infinity') AS failing"
            " FROM pg_stat_archiver"
        )
        in_recovery, primary_lsn, archiving, *archived = cursor.fetchone()
        archiver = (
            dict(zip([c.name for c in cursor.description][3:], archived, strict=True))
            if archiving
            else None
        )
        cursor.execute(
            "SELECT pid, application_name AS name, client_addr, state, sync_state,"
            " extract(epoch FROM write_lag)::float AS write_lag,"
            " extract(epoch FROM flush_lag)::float AS flush_lag,"
            " extract(epoch FROM replay_lag)::float AS replay_lag,"
            " CASE WHEN pg_is_in_recovery() THEN NULL"
            " ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint"
            " END AS replay_bytes_behind"
            " FROM pg_stat_replication ORDER BY application_name, pid"
        )
        standbys = _rows(cursor)
        cursor.execute(
            "SELECT slot_name AS name, slot_type AS type, active,"
            " CASE WHEN pg_is_in_recovery() THEN NULL"
            " ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint"
            " END AS retained_bytes"
            " FROM pg_replication_slots ORDER BY slot_name"
        )
        slots = _rows(cursor)
    report = ReplicationReport(
        in_recovery=in_recovery,
        standbys=standbys,
        slots=slots,
        replica_configured=replica.replica_configured(),
        archiver=archiver,
    )
    if report.replica_configured:
        report.replica, report.replica_note = _replica_lag(
            replica.REPLICA_ALIAS, primary_lsn
        )
    return report


def _replica_lag(alias: str, primary_lsn: str | None) -> tuple[dict | None, str]:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT pg_is_in_recovery() AS in_recovery,"
                " extract(epoch FROM clock_timestamp()"
                " - pg_last_xact_replay_timestamp())::float AS replay_delay,"
                " pg_last_wal_replay_lsn()::text AS replay_lsn,"
                " CASE WHEN %s::pg_lsn IS NULL OR pg_last_wal_replay_lsn() IS NULL"
                " THEN NULL"
                " ELSE pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())::bigint"
                " END AS bytes_behind",
                [primary_lsn, primary_lsn],
            )
            return _rows(cursor)[0], ""
    except DatabaseError as exc:
        connections[alias].close_if_unusable_or_obsolete()
        return None, (
            f"The replica ({alias}) cannot be read: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc}"
        )


def database_report(using: str = "default") -> DatabaseReport:
    """Everything the dashboard and `db_report` show, from one connection."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_database(), current_setting('server_version'),"
            " pg_database_size(current_database()),"
            " current_setting('max_connections')::int"
        )
        name, version, size, max_connections = cursor.fetchone()
        conns = connections_by_state(cursor)
        tables = table_sizes(cursor)
        indexes = index_usage(cursor)
        unused = unused_indexes(cursor)
    available, note, statements = slowest_statements(connection)
    jobs, jobs_note = job_queue(using)
    return DatabaseReport(
        database=name,
        server_version=version,
        database_size=size,
        max_connections=max_connections,
        connections=conns,
        tables=tables,
        indexes=indexes,
        unused_indexes=unused,
        statements=statements,
        statements_available=available,
        statements_note=note,
        jobs=jobs,
        jobs_note=jobs_note,
    )


def job_queue(using: str = "default") -> tuple[QueueReport | None, str]:
    """``(report, note)``: the job queue section, or why it is missing (the
    tables not migrated yet, say) without breaking the rest of the page."""
    try:
        return queue_report(using=using), ""
    except DatabaseError as exc:
        return None, (
            "The job queue cannot be read: "
            f"{str(exc).strip().splitlines()[0]} (have the migrations run?)."
        )


# --- The admin dashboard's tabs -------------------------------------------------------

CHART_HOURS = 7 * 24
CHART_DAYS = 30


def metric_charts(*, now: dt.datetime | None = None) -> list[charts.Chart]:
    """The recorded metrics over time: database response time and connections
    in use (hourly averages over a week, from ``core.db_health`` every five
    minutes) and searches and sign-ups per day over 30 days (recorded by the
    searches and accounts jobs). Four indexed reads of SystemMetric, however
    many rows it holds."""
    now = now or timezone.now()
    since = now - dt.timedelta(hours=CHART_HOURS)
    today = now.astimezone(dt.UTC).date()
    first_day = today - dt.timedelta(days=CHART_DAYS - 1)
    lines = [
        ("response-time", "Database response time", "ms", "db.response_time_ms"),
        ("connections", "Connections in use", "connections", "db.connections"),
    ]
    days = [
        ("searches", "Searches per day", "searches", "searches.per_day"),
        ("signups", "Sign-ups per day", "sign-ups", "accounts.signups_per_day"),
    ]
    drawn = []
    for slug, title, unit, metric in lines:
        series = [
            (hour, average)
            for hour, average, _ in selectors.metric_hourly(metric, since=since)
        ]
        drawn.append(charts.line_chart(slug, title, unit, series, start=since, end=now))
    for slug, title, unit, metric in days:
        counts = selectors.metric_daily(metric, since=first_day)
        drawn.append(
            charts.daily_bar_chart(
                slug, title, unit, counts, today=today, days=CHART_DAYS
            )
        )
    return drawn


def replica_lag_chart(*, now: dt.datetime | None = None) -> charts.Chart:
    """The read replica's lag over a week: the worst of each hour (an average
    would hide the minutes that sent reads to the primary), from what
    ``core.db_health`` records every five minutes. One indexed read."""
    now = now or timezone.now()
    since = now - dt.timedelta(hours=CHART_HOURS)
    series = [
        (hour, peak)
        for hour, _, peak in selectors.metric_hourly(
            "db.replica_lag_seconds", since=since
        )
    ]
    return charts.line_chart(
        "replica-lag",
        "Read replica lag, worst per hour",
        "s",
        series,
        start=since,
        end=now,
    )


def dashboard_tab(tab: str, using: str = "default") -> dict:
    """What one tab of the admin dashboard shows, read with the statements
    tagged as the dashboard's own. An unknown tab is the overview."""
    tab = tab if tab in dict(TABS) else TABS[0][0]
    connection = connections[using]
    context: dict = {"tab": tab}
    with dashboard_tagged(), connection.cursor() as cursor:
        statistics_fresh(cursor)
        context["summary"] = database_summary(cursor)
        if tab == "overview":
            context["connections"] = connections_by_state(cursor)
            context["connections_total"] = sum(
                row["count"] for row in context["connections"]
            )
            context["charts"] = metric_charts()
        elif tab == "queries":
            context["running"] = running_queries(cursor)
            context["locks"] = blocking_locks(cursor)
        elif tab == "tables":
            context["tables"] = table_sizes(cursor)
            context["bloat"] = table_bloat(cursor)
            context["indexes"] = index_usage(cursor)
            context["unused_indexes"] = unused_indexes(cursor)
    with dashboard_tagged():
        if tab == "queries":
            available, note, statements = slowest_statements(connection)
            context.update(
                statements_available=available,
                statements_note=note,
                statements=statements,
            )
        elif tab == "replication":
            context["replication"] = replication_report(using)
            if context["replication"].replica_configured:
                context["replica_chart"] = replica_lag_chart()
            context["jobs"], context["jobs_note"] = job_queue(using)
    return context
