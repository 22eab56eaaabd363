from pathlib import Path

import environ

from config.database import build_databases


def databases_for(monkeypatch, **variables):
    for name in (
        "DATABASE_URL",
        "DIRECT_URL",
        "DATABASE_READ_URL",
        "DB_POOLER",
        "DB_PREPARED_STATEMENTS",
        "DB_PREPARE_THRESHOLD",
        "EMBEDDED_PGDATA",  # a run pointed at its own cluster (README)
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return build_databases(environ.Env(), Path("/srv/app"))


def test_without_database_url_the_embedded_server_is_used(monkeypatch):
    databases = databases_for(monkeypatch)

    assert databases["default"]["ENGINE"] == "core.db.embedded"
    assert databases["default"]["PGDATA"] == "/srv/app/var/postgres"
    assert set(databases) == {"default"}


def test_database_url_points_at_that_server(monkeypatch):
    databases = databases_for(
        monkeypatch, DATABASE_URL="postgres://app:pw@db.internal:6543/prod"
    )

    default = databases["default"]
    assert default["ENGINE"] == "core.db.postgresql"
    assert (default["HOST"], default["PORT"], default["NAME"]) == (
        "db.internal",
        6543,
        "prod",
    )
    assert default["CONN_HEALTH_CHECKS"] is True
    assert not default.get("DISABLE_SERVER_SIDE_CURSORS")
    # A direct connection binds on the server and prepares what it runs often.
    assert default["OPTIONS"]["server_side_binding"] is True
    assert default["OPTIONS"]["prepare_threshold"] == 5


def test_pgbouncer_flag_makes_connection_safe_for_transaction_pooling(monkeypatch):
    databases = databases_for(
        monkeypatch,
        DATABASE_URL="postgres://app@pooler:6432/prod?pgbouncer=true&sslmode=require",
    )

    default = databases["default"]
    assert default["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert default["OPTIONS"]["sslmode"] == "require"
    assert "pgbouncer" not in default["OPTIONS"]
    # Prepared statements live in a server session the pool hands around.
    assert "server_side_binding" not in default["OPTIONS"]
    assert "prepare_threshold" not in default["OPTIONS"]


def test_db_pooler_variable_also_enables_transaction_pooling(monkeypatch):
    databases = databases_for(
        monkeypatch,
        DATABASE_URL="postgres://app@pooler:6432/prod",
        DB_POOLER="transaction",
    )

    assert databases["default"]["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert "server_side_binding" not in databases["default"]["OPTIONS"]
    assert "prepare_threshold" not in databases["default"]["OPTIONS"]


def test_prepared_statements_can_be_turned_off(monkeypatch):
    databases = databases_for(
        monkeypatch,
        DATABASE_URL="postgres://app@db:5432/prod",
        DB_PREPARED_STATEMENTS="false",
    )

    assert "server_side_binding" not in databases["default"]["OPTIONS"]
    assert "prepare_threshold" not in databases["default"]["OPTIONS"]


def test_direct_url_gets_its_own_unpooled_alias(monkeypatch):
    databases = databases_for(
        monkeypatch,
        DATABASE_URL="postgres://app@pooler:6432/prod?pgbouncer=true",
        DIRECT_URL="postgres://app@db:5432/prod",
    )

    assert databases["direct"]["HOST"] == "db"
    assert not databases["direct"].get("DISABLE_SERVER_SIDE_CURSORS")
    assert databases["direct"]["OPTIONS"]["server_side_binding"] is True
    assert "server_side_binding" not in databases["default"]["OPTIONS"]
    # Options are copied, never shared between aliases.
    assert databases["direct"]["OPTIONS"] is not databases["default"]["OPTIONS"]


def test_read_url_adds_a_replica_alias(monkeypatch):
    databases = databases_for(
        monkeypatch,
        DATABASE_URL="postgres://app@db:5432/prod",
        DATABASE_READ_URL="postgres://app@replica:5432/prod",
    )

    assert databases["replica"]["HOST"] == "replica"
    assert databases["replica"]["TEST"] == {"MIRROR": "default"}


def test_percent_encoded_socket_directory_is_decoded(monkeypatch):
    databases = databases_for(
        monkeypatch,
        DATABASE_URL="postgres://postgres@%2Fsrv%2Fapp%2Fvar%2Fpostgres/app",
    )

    assert databases["default"]["HOST"] == "/srv/app/var/postgres"
