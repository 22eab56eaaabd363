"""EXPLAIN helpers for tests that ask which index serves a statement."""

from django.db import connection


def plan_of(sql: str, *, analyze=None) -> str:
    """The plan PostgreSQL picks for ``sql``, sequential scans ruled out.

    ``analyze`` is a model whose table is analyzed first. Without statistics a small
    test table makes many plans cost the same, and PostgreSQL 18 may then
    skip-scan an index led by another column (seen in CI); a test that fills
    the table like production and analyzes it asks what a real backlog gets.
    """
    with connection.cursor() as cursor:
        if analyze:
            table = connection.ops.quote_name(analyze._meta.db_table)
            cursor.execute(f"ANALYZE {table}")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())
