"""Log every query slower than ``settings.SLOW_QUERY_MS``.

An execute wrapper is installed on each database connection when it opens
(``connection_created``), so web requests, management commands and shells are
all covered. Only the SQL text with its placeholders is logged: parameter values
may hold emails, tokens or other personal data, and stay out of the log.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

logger = logging.getLogger("core.slow_queries")


def slow_query_logger(execute, sql, params, many, context):
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        elapsed_ms = (time.perf_counter() - started) * 1000
        threshold = getattr(settings, "SLOW_QUERY_MS", None)
        if threshold is not None and elapsed_ms >= threshold:
            connection = context["connection"]
            logger.warning(
                "Slow query (%.1f ms) on %s: %s",
                elapsed_ms,
                connection.alias,
                sql,
                extra={
                    "duration_ms": round(elapsed_ms, 1),
                    "sql": sql,
                    "database": connection.alias,
                    "many": many,
                },
            )


def install_slow_query_logger(sender, connection, **kwargs):
    """``connection_created`` receiver: wrap the connection once.

    The signal fires on every reconnect of the same wrapper object, hence the
    membership check. The wrapper goes first in the list so that code using
    ``connection.execute_wrapper()`` (append, then pop) removes its own wrapper,
    never this one.
    """
    if slow_query_logger not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, slow_query_logger)
