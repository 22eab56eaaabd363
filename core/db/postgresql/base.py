"""Django's PostgreSQL backend, with ``bulk_create`` batches that fit the protocol.

With ``server_side_binding`` (config/database.py turns it on for direct
connections) every value travels as a protocol parameter, and a statement may
carry at most 65,535 of them. Django 5.2 sends a whole ``bulk_create`` as one
INSERT unless it can use UNNEST (one array per column), which it cannot for a
model with an ArrayField, JSON or other non-scalar column: 5,000 search-history
rows are 70,000 parameters and the INSERT fails ("number of parameters must be
between 0 and 65535"). Batches are therefore capped by the number of columns;
client-side binding (behind PgBouncer) inlines the values and keeps Django's
unbatched default.
"""

from django.db.backends.postgresql import base, operations

# The protocol's Bind message counts parameters in an Int16.
MAX_QUERY_PARAMS = 65_535


class DatabaseOperations(operations.DatabaseOperations):
    def bulk_batch_size(self, fields, objs):
        if self.connection.features.uses_server_side_binding and fields:
            return max(MAX_QUERY_PARAMS // len(fields), 1)
        return super().bulk_batch_size(fields, objs)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
