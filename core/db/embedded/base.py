"""PostgreSQL backend that starts the embedded server on the first connection.

Used when no DATABASE_URL is set. The settings carry ``PGDATA`` (the data
directory); HOST is filled in with the server's socket directory on connect, so
importing settings never starts a server and a server that went away (stopped,
crashed, machine restarted) is brought back by the next connection attempt.
"""

from core.db.postgresql import base as postgresql
from core.embedded_postgres import ensure_server


class DatabaseWrapper(postgresql.DatabaseWrapper):
    def get_connection_params(self):
        if self.settings_dict.get("PGDATA"):
            server = ensure_server(self.settings_dict["PGDATA"])
            self.settings_dict["HOST"] = str(server.socket_dir)
        return super().get_connection_params()
