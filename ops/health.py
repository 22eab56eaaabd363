"""The health check shared by /healthz and `manage.py db_health`."""

from __future__ import annotations

import time

from django.core.cache import cache
from django.db import DatabaseError, connections


def check_database(using: str = "default") -> dict:
    started = time.perf_counter()
    try:
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        # A connection left broken by the failure must not be reused by the
        # next request.
        connections[using].close_if_unusable_or_obsolete()
        return {
            "connected": False,
            "response_time_ms": round((time.perf_counter() - started) * 1000, 2),
            "error": exc.__class__.__name__,
        }
    return {
        "connected": True,
        "response_time_ms": round((time.perf_counter() - started) * 1000, 2),
    }


def check_cache() -> dict:
    started = time.perf_counter()
    key = "healthz:probe"
    try:
        cache.set(key, "1", 10)
        ok = cache.get(key) == "1"
    except Exception as exc:
        return {"ok": False, "error": exc.__class__.__name__}
    return {
        "ok": ok,
        "response_time_ms": round((time.perf_counter() - started) * 1000, 2),
    }


def health_report() -> dict:
    database = check_database()
    report = {
        "status": "ok" if database["connected"] else "error",
        "database": database,
    }
    if database["connected"]:
        report["cache"] = check_cache()
    return report
