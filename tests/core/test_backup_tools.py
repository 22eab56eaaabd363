from pathlib import Path

import pytest

from core.backups import BackupError, Target, backup_name, client_binary
from core.embedded_postgres import bin_path


def _target(major, embedded):
    return Target({"dbname": "app", "host": "h"}, server_major=major, embedded=embedded)


def test_embedded_server_uses_the_wheels_client_binaries():
    assert client_binary("pg_dump", _target(18, True)) == bin_path("pg_dump")


@pytest.mark.skipif(
    not Path("/usr/lib/postgresql/15/bin/pg_dump").exists(),
    reason="PostgreSQL 15 client not installed",
)
def test_other_server_uses_the_client_of_its_major_version():
    assert client_binary("pg_dump", _target(15, False)) == Path(
        "/usr/lib/postgresql/15/bin/pg_dump"
    )


def test_no_client_new_enough_is_a_clear_error():
    with pytest.raises(BackupError, match="postgresql-client-99"):
        client_binary("pg_dump", _target(99, False))


def test_backup_file_is_named_by_utc_time():
    import datetime as dt

    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))

    assert backup_name("app", when) == "app-20260102T010405Z.dump"


def test_connection_env_carries_no_inherited_pg_variables(monkeypatch):
    monkeypatch.setenv("PGDATABASE", "somewhere_else")
    target = Target(
        {"dbname": "app", "host": "db", "port": 5433, "password": "pw"}, 16, False
    )

    env = target.env()

    assert "PGDATABASE" not in env
    assert env["PGHOST"] == "db" and env["PGPORT"] == "5433"
    assert env["PGPASSWORD"] == "pw"
