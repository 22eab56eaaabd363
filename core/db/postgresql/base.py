"""Django's PostgreSQL backend, with ``bulk_create`` batches that fit the protocol
and a health check that costs no round trip.

With ``server_side_binding`` (config/database.py turns it on for direct
connections) every value travels as a protocol parameter, and a statement may
carry at most 65,535 of them. Django 5.2 sends a whole ``bulk_create`` as one
INSERT unless it can use UNNEST (one array per column), which it cannot for a
model with an ArrayField, JSON or other non-scalar column: 5,000 search-history
rows are 70,000 parameters and the INSERT fails ("number of parameters must be
between 0 and 65535"). Batches are therefore capped by the number of columns;
client-side binding (behind PgBouncer) inlines the values and keeps Django's
unbatched default.

``CONN_HEALTH_CHECKS`` makes Django check a reused connection before each
request's first query with ``SELECT 1``: a round trip (and a statement for the
server) on every request, about a seventh of a webhook delivery's. A server
that ends a connection (restart, ``pg_terminate_backend``, a pooler going away)
sends its FATAL notice and closes the socket, so an idle connection that has
something to read is the one to check; a quiet socket is healthy, checked
without sending anything. A peer that vanished without closing (a cut
network) is caught by neither check before the first query times out.
"""

import select

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

    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        # poll, not select: select refuses a descriptor numbered 1024 or
        # more, which a process with many files open can hand out.
        poller = select.poll()
        try:
            poller.register(connection.fileno(), select.POLLIN)
            readable = poller.poll(0)
        except (OSError, ValueError):  # the socket is gone
            return False
        if readable:
            # Something arrived on an idle connection: the server's goodbye,
            # or an asynchronous notice. Django's SELECT 1 tells which.
            return super().is_usable()
        return True
