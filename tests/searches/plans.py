"""EXPLAIN helpers for the history table's index tests."""

# Indexes that also order by searched_at. On a near-empty test table the
# planner may pick one of them and filter by user (same estimated cost, any
# statistics other tests left); the tests ask whether the user's index can
# serve the query, so these are dropped inside the test's transaction (DDL is
# transactional in PostgreSQL: the rollback at the end of the test restores them).
COMPETING_HISTORY_INDEXES = (
    "searchhist_time_idx",
    "searchhist_provider_time_idx",
    "searchhist_cache_hit_time_idx",
)


def history_competitors_drop(cursor) -> None:
    cursor.execute("DROP INDEX IF EXISTS " + ", ".join(COMPETING_HISTORY_INDEXES))
