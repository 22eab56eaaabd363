"""Routine maintenance: VACUUM (ANALYZE)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db import DatabaseError, connections

_USER_TABLES = (
    "SELECT n.nspname, c.relname FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog',"
    " 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%' ORDER BY 1, 2"
)


class MaintenanceError(Exception):
    pass


@dataclass
class VacuumResult:
    table: str
    seconds: float
    error: str = ""


def vacuum_analyze(
    *, tables: list[str] | None = None, using: str = "default"
) -> list[VacuumResult]:
    """Run ``VACUUM (ANALYZE)`` on each user table (or the named ones).

    VACUUM cannot run inside a transaction block: the connection must be in
    autocommit mode (the default outside ``transaction.atomic``). A failure on one
    table is recorded and the next table is still processed.
    """
    connection = connections[using]
    if connection.in_atomic_block:
        raise MaintenanceError("VACUUM cannot run inside a transaction.")
    with connection.cursor() as cursor:
        cursor.execute(_USER_TABLES, [])
        known = {
            f"{schema}.{name}": (schema, name) for schema, name in cursor.fetchall()
        }
    by_name = {name: key for key, (_schema, name) in known.items()}
    if tables:
        selected = []
        for table in tables:
            key = table if table in known else by_name.get(table)
            if key is None:
                raise MaintenanceError(f"No such table: {table}")
            selected.append(key)
    else:
        selected = list(known)

    quote = connection.ops.quote_name
    results = []
    for key in selected:
        schema, name = known[key]
        started = time.perf_counter()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM (ANALYZE) {quote(schema)}.{quote(name)}")
        except DatabaseError as exc:
            results.append(
                VacuumResult(key, time.perf_counter() - started, str(exc).strip())
            )
            continue
        results.append(VacuumResult(key, time.perf_counter() - started))
    return results
