"""The health check shared by /healthz and `manage.py db_health`."""

from __future__ import annotations

import time

from django.core.cache import cache
from django.db import DatabaseError, connections

from core import replica
from core.jobs import queue_health

# Share of max_connections in use above which the report carries a warning.
CONNECTIONS_WARN_RATIO = 0.8


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def check_database(using: str = "default") -> dict:
    """One round trip: reachability, response time, version, connection use
    and, when the server archives WAL, whether archiving works
    (``pg_stat_archiver``: the archive command failed more recently than it
    last succeeded)."""
    started = time.perf_counter()
    try:
        with connections[using].cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('server_version'),"
                " current_setting('max_connections')::int,"
                " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                "'client backend'),"
                " current_setting('archive_mode') <> 'off',"
                " a.last_archived_wal, a.last_archived_time,"
                " a.last_failed_wal, a.last_failed_time"
                " FROM pg_stat_archiver a"
            )
            (
                version,
                max_connections,
                used,
                archiving,
                archived_wal,
                archived_at,
                failed_wal,
                failed_at,
            ) = cursor.fetchone()
    except DatabaseError as exc:
        # A connection left broken by the failure must not be reused by the
        # next request.
        connections[using].close_if_unusable_or_obsolete()
        return {
            "connected": False,
            "response_time_ms": _elapsed_ms(started),
            "error": exc.__class__.__name__,
        }
    result = {
        "connected": True,
        "response_time_ms": _elapsed_ms(started),
        "server_version": version,
        "connections": {"used": used, "max": max_connections},
    }
    if archiving:
        result["archiver"] = {
            "failing": failed_at is not None
            and (archived_at is None or failed_at > archived_at),
            "last_archived_wal": archived_wal,
            "last_archived_at": archived_at.isoformat() if archived_at else None,
            "last_failed_wal": failed_wal,
            "last_failed_at": failed_at.isoformat() if failed_at else None,
        }
    return result


def check_cache() -> dict:
    started = time.perf_counter()
    key = "healthz:probe"
    try:
        cache.set(key, "1", 10)
        ok = cache.get(key) == "1"
    except Exception as exc:
        return {"ok": False, "error": exc.__class__.__name__}
    return {"ok": ok, "response_time_ms": _elapsed_ms(started)}


def check_queue() -> dict:
    """The job queue (:func:`core.jobs.queue_health`): ``ok``, ``degraded``
    with its reasons, or ``error`` when its tables cannot be read."""
    started = time.perf_counter()
    try:
        health = queue_health()
    except DatabaseError as exc:
        # The reads ran in their own transaction (or savepoint), rolled back by
        # now: the connection stays usable for the rest of the request.
        return {
            "status": "error",
            "reasons": [f"the job tables cannot be read ({exc.__class__.__name__})"],
            "response_time_ms": _elapsed_ms(started),
        }
    return {**health.as_dict(), "response_time_ms": _elapsed_ms(started)}


def check_replica() -> dict:
    """The read replica (only with DATABASE_READ_URL): reachable, lag in
    seconds and bytes (bytes against the primary's current WAL position), and
    where reads go: ``primary`` while it lags beyond REPLICA_MAX_LAG_SECONDS
    or cannot be read."""
    limit = replica.max_lag_seconds()
    result = {"connected": False, "max_lag_seconds": limit, "reads": "primary"}
    primary_lsn = None
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT CASE WHEN pg_is_in_recovery() THEN NULL"
                " ELSE pg_current_wal_lsn()::text END"
            )
            primary_lsn = cursor.fetchone()[0]
    except DatabaseError:
        connections["default"].close_if_unusable_or_obsolete()
    try:
        lag = replica.measure_lag(primary_lsn=primary_lsn)
    except DatabaseError as exc:
        connections[replica.REPLICA_ALIAS].close_if_unusable_or_obsolete()
        result["error"] = exc.__class__.__name__
        return result
    result.update(lag.as_dict(), connected=True)
    if not lag.exceeds(limit):
        result["reads"] = "replica"
    return result


def health_report() -> dict:
    """The health of the database, the cache, the job queue and the read
    replica when there is one (all but the database checked only when the
    database is reachable).

    ``status`` is ``error`` when the database is unreachable or the cache fails
    (/healthz answers 503: take this instance out). It is ``degraded`` when the
    job queue is behind or unreadable (/healthz still answers 200: the site
    serves pages and queues jobs, and another web instance would not help); the
    queue's reasons are added to the warnings; so is a read replica that is
    unreachable or lags beyond REPLICA_MAX_LAG_SECONDS (reads use the primary
    meanwhile), and WAL archiving that keeps failing. A connection count close
    to ``max_connections`` only adds a warning.
    """
    database = check_database()
    report = {"status": "ok", "database": database, "warnings": []}
    if not database["connected"]:
        report["status"] = "error"
        return report
    report["cache"] = check_cache()
    if not report["cache"]["ok"]:
        report["status"] = "error"
    report["queue"] = check_queue()
    if report["queue"]["status"] != "ok":
        if report["status"] == "ok":
            report["status"] = "degraded"
        report["warnings"].extend(
            f"Job queue: {reason}" for reason in report["queue"]["reasons"]
        )
    if replica.replica_configured():
        report["replica"] = check_replica()
        reason = _replica_warning(report["replica"])
        if reason:
            # Reads fall back to the primary: pages are served, but slower
            # and the primary carries all the load.
            if report["status"] == "ok":
                report["status"] = "degraded"
            report["warnings"].append(reason)
    archiver = database.get("archiver")
    if archiver and archiver["failing"]:
        # Pages are served, but point-in-time restore stops at the last
        # archived segment and pg_wal grows until archiving works again.
        if report["status"] == "ok":
            report["status"] = "degraded"
        report["warnings"].append(
            f"WAL archiving is failing (last failure: {archiver['last_failed_wal']} "
            f"at {archiver['last_failed_at']}; last archived: "
            f"{archiver['last_archived_wal'] or 'none'}): point-in-time restore "
            "stops there and pg_wal grows; check archive_command and the "
            "archive's disk"
        )
    conns = database["connections"]
    if conns["max"] and conns["used"] >= conns["max"] * CONNECTIONS_WARN_RATIO:
        report["warnings"].append(
            f"{conns['used']} of {conns['max']} connections in use"
        )
    return report


def _replica_warning(state: dict) -> str:
    if not state["connected"]:
        error = state.get("error", "error")
        return f"Read replica unreachable ({error}): reads use the primary"
    if state["reads"] == "primary":
        return (
            f"Read replica lags {state['lag_seconds']} s / {state['lag_bytes']} bytes"
            f" (limit {state['max_lag_seconds']} s): reads use the primary"
        )
    if not state["in_recovery"]:
        return "Read replica is not a standby (promoted?): check DATABASE_READ_URL"
    return ""


# What /healthz tells anyone: enough for a load balancer or an uptime monitor,
# nothing about the server (version, connection counts, queue) an attacker
# could use. The full report is for HEALTHZ_TOKEN holders and staff.
PUBLIC_DATABASE_KEYS = ("connected", "response_time_ms")


def health_public(report: dict) -> dict:
    """The public part of :func:`health_report`'s ``report``: the status and
    whether the database answered, and how fast."""
    database = report["database"]
    return {
        "status": report["status"],
        "database": {key: database[key] for key in PUBLIC_DATABASE_KEYS},
    }
