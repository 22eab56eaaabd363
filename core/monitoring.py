"""The database report behind `manage.py db_report` and the admin dashboard.

Every query reads PostgreSQL's catalog and statistics views only (``pg_class``,
``pg_stat_*``, ``pg_stat_statements``): none scans a user table, so the report
costs the same on an empty database and on one with hundreds of millions of
rows. Row counts are the planner's estimates (``pg_class.reltuples``, kept
current by autovacuum/ANALYZE), not ``COUNT(*)``.

The one exception is the job queue section (:func:`core.jobs.queue_report`):
it reads Procrastinate's tables, through their indexes and with bounded scans.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import DatabaseError, connections, transaction

from core.jobs import QueueReport, queue_report

TOP_TABLES = 25
TOP_INDEXES = 40
TOP_STATEMENTS = 10


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
    cursor.execute(
        "SELECT n.nspname AS schema, c.relname AS name,"
        # -1 means never analyzed: unknown, not zero.
        " CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END"
        " AS estimated_rows,"
        " pg_table_size(c.oid) AS table_bytes,"
        " pg_indexes_size(c.oid) AS index_bytes,"
        " pg_total_relation_size(c.oid) AS total_bytes"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p', 'm')"
        " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg\\_%%'"
        " ORDER BY total_bytes DESC, c.relname LIMIT %s",
        [limit],
    )
    return _with_bars(_rows(cursor), "total_bytes")


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
    """``(available, note, rows)`` from pg_stat_statements, slowest mean first."""
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
                    " ORDER BY s.mean_exec_time DESC LIMIT %s",
                    [limit],
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
