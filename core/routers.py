"""Database router for a read replica (enabled when DATABASE_READ_URL is set).

Reads go to the ``replica`` alias and writes to ``default`` (the primary), with
three exceptions that send reads to the primary:

- the request (or command) already wrote, or read inside a transaction: it must
  see its own writes, which the replica may not have replayed yet;
- the primary is inside ``transaction.atomic``: reads that decide a write
  (``select_for_update``, get-then-update) belong in that transaction;
- the replica is unreachable: reads fall back to the primary instead of failing.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS

from core import replica

DIRECT_ALIAS = "direct"
_SAME_DATA = frozenset({DEFAULT_DB_ALIAS, replica.REPLICA_ALIAS, DIRECT_ALIAS})


class PrimaryReplicaRouter:
    def db_for_read(self, model, **hints):
        if replica.is_pinned():
            return DEFAULT_DB_ALIAS
        if replica.primary_in_transaction():
            # Anything may have been written in this transaction, through the
            # ORM or a raw cursor the router never sees.
            replica.mark_write()
            return DEFAULT_DB_ALIAS
        if not replica.replica_usable():
            return DEFAULT_DB_ALIAS
        return replica.REPLICA_ALIAS

    def db_for_write(self, model, **hints):
        replica.mark_write()
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        # Primary and replica hold the same rows.
        if obj1._state.db in _SAME_DATA and obj2._state.db in _SAME_DATA:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # The replica replays the primary's schema (and refuses writes anyway).
        if db == replica.REPLICA_ALIAS:
            return False
        if db in (DEFAULT_DB_ALIAS, DIRECT_ALIAS):
            return True
        # Any other alias (a scratch database, say) is not this router's business.
        return None
