import datetime as dt
import json
import os
import shutil
from io import StringIO
from pathlib import Path

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from core.backups import (
    BackupError,
    backup_create,
    backup_restore,
    backup_verify,
    backups_in,
    database_fingerprint,
    manifest_path,
    retention_keep,
    target_for,
)
from core.models import AuditLog, FeatureFlag
from tests.core.backup_helpers import fingerprint
from tests.core.factories import FeatureFlagFactory

pytestmark = pytest.mark.django_db(transaction=True)

UTC = dt.UTC


@pytest.fixture
def some_rows(user, other_user):
    FeatureFlagFactory.create_batch(5)
    return user


def _leftover_verify_databases():
    # Only this process's scratch databases: other runs may share the server.
    with target_for().connect() as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE %s",
            [f"verify\\_{os.getpid()}\\_%"],
        ).fetchone()[0]


def test_backup_then_verify_passes(backup_dir, some_rows):
    before = _leftover_verify_databases()
    out = StringIO()
    call_command("backup_db", stdout=out)
    [(_when, path)] = backups_in(backup_dir, connection.settings_dict["NAME"])

    assert path.stat().st_size > 0
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(backup_dir.stat().st_mode & 0o777) == "0o700"
    assert not list(backup_dir.glob("*.partial")) and not list(backup_dir.glob(".*"))
    verify_out = StringIO()
    call_command("verify_backup", str(path), stdout=verify_out)
    assert "verified" in verify_out.getvalue()
    assert _leftover_verify_databases() == before
    audit = AuditLog.objects.get(action=AuditLog.Action.BACKUP)
    assert audit.changes["ok"] is True and audit.changes["file"] == path.name


def _corrupt_middle(source: Path, dest: Path) -> Path:
    data = bytearray(source.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + 64):
        data[i] ^= 0xFF
    dest.write_bytes(bytes(data))
    return dest


def _truncate(source: Path, dest: Path) -> Path:
    data = source.read_bytes()
    dest.write_bytes(data[: len(data) // 10])
    return dest


@pytest.mark.parametrize("damage", [_corrupt_middle, _truncate], ids=["flipped", "cut"])
def test_damaged_backup_fails_verification_with_nonzero_exit(
    backup_dir, some_rows, tmp_path, damage
):
    good = backup_create().path
    bad = damage(good, tmp_path / "bad.dump")
    # The manifest comes along: only the dump itself is damaged.
    shutil.copy(manifest_path(good), manifest_path(bad))
    before = _leftover_verify_databases()

    with pytest.raises(CommandError, match="FAILED verification"):
        call_command("verify_backup", str(bad), stdout=StringIO())
    assert _leftover_verify_databases() == before


def test_truncated_backup_without_manifest_fails_in_the_restore(
    backup_dir, some_rows, tmp_path
):
    good = backup_create().path
    bad = _truncate(good, tmp_path / "cut.dump")

    result = backup_verify(path=bad)

    assert not result.ok
    assert result.compared_with.startswith("live database")
    assert any("pg_restore failed" in p for p in result.problems)


def test_damaged_backup_is_caught_by_the_file_checksum(backup_dir, some_rows, tmp_path):
    good = backup_create().path
    bad = _corrupt_middle(good, tmp_path / "bad.dump")
    shutil.copy(manifest_path(good), manifest_path(bad))

    result = backup_verify(path=bad)

    assert not result.ok
    assert "damaged or truncated" in result.problems[0]


def test_verify_without_manifest_compares_with_live_database(backup_dir, some_rows):
    path = backup_create().path
    manifest_path(path).unlink()
    FeatureFlagFactory(key="added-after-backup")

    result = backup_verify(path=path)

    assert not result.ok
    assert result.compared_with.startswith("live database")
    assert any("ops_featureflag" in p for p in result.problems)


def test_restore_round_trip_reproduces_every_table(
    backup_dir, some_rows, scratch_databases
):
    expected = fingerprint()
    path = backup_create().path
    name = f"{connection.settings_dict['NAME']}_roundtrip"
    scratch_databases.append(name)

    call_command(
        "restore_db", str(path), "--yes", "--database-name", name, stdout=StringIO()
    )

    restored = fingerprint(name)
    assert restored == expected
    assert len(restored["tables"]) > 10
    assert restored["tables"]["public.ops_featureflag"]["rows"] == 5
    assert AuditLog.objects.filter(action=AuditLog.Action.RESTORE).exists()


def test_restore_refuses_without_yes(backup_dir, some_rows, scratch_databases):
    path = backup_create().path

    with pytest.raises(CommandError, match="--yes"):
        call_command("restore_db", str(path), "--database-name", "never_created")
    assert not _database_exists("never_created")


def _database_exists(name):
    with target_for().connect() as conn:
        return bool(
            conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
        )


def test_restore_refuses_non_empty_database_unless_clean(
    backup_dir, some_rows, scratch_databases
):
    path = backup_create().path
    name = f"{connection.settings_dict['NAME']}_nonempty"
    scratch_databases.append(name)
    backup_restore(path=path, confirm=True, database_name=name)

    with pytest.raises(CommandError, match="not empty"):
        call_command("restore_db", str(path), "--yes", "--database-name", name)

    # With --clean the dump replaces what is there.
    with target_for().connect(name, autocommit=True) as conn:
        conn.execute("DELETE FROM ops_featureflag")
    call_command(
        "restore_db",
        str(path),
        "--yes",
        "--clean",
        "--database-name",
        name,
        stdout=StringIO(),
    )
    assert fingerprint(name)["tables"]["public.ops_featureflag"]["rows"] == 5


def test_restore_of_damaged_file_stops_and_changes_nothing(
    backup_dir, some_rows, scratch_databases, tmp_path
):
    good = backup_create().path
    bad = _truncate(good, tmp_path / "bad.dump")
    name = f"{connection.settings_dict['NAME']}_partial"
    scratch_databases.append(name)

    # Without a manifest (nothing to check the file against) only --no-manifest
    # gets it as far as pg_restore.
    with pytest.raises(CommandError, match="--no-manifest"):
        call_command("restore_db", str(bad), "--yes", "--database-name", name)
    assert not _database_exists(name)
    with pytest.raises(CommandError, match="pg_restore failed"):
        call_command(
            "restore_db", str(bad), "--yes", "--no-manifest", "--database-name", name
        )
    # The database it created for the restore is gone again: no half restore.
    assert not _database_exists(name)


def test_failed_backup_prunes_nothing_and_leaves_no_file(backup_dir, some_rows):
    backup_dir.mkdir(parents=True)
    prefix = connection.settings_dict["NAME"]
    old = [
        backup_dir / f"{prefix}-{day:%Y%m%d}T020000Z.dump"
        for day in (dt.date(2020, 1, d) for d in range(1, 29))
    ]
    for path in old:
        path.write_bytes(b"x")
    real_name = connection.settings_dict["NAME"]
    connection.settings_dict["NAME"] = "no_such_database_for_backup"
    try:
        with pytest.raises(BackupError):
            backup_create()
    finally:
        connection.settings_dict["NAME"] = real_name

    assert sorted(backup_dir.iterdir()) == sorted(old)
    assert AuditLog.objects.get(action=AuditLog.Action.BACKUP).changes["ok"] is False


def test_real_run_applies_retention(backup_dir, some_rows):
    backup_dir.mkdir(parents=True)
    prefix = connection.settings_dict["NAME"]
    now = dt.datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    # 40 daily backups before now: the 30 newest days survive with the new one...
    days = [now - dt.timedelta(days=n) for n in range(1, 41)]
    for when in days:
        (backup_dir / f"{prefix}-{when:%Y%m%dT%H%M%SZ}.dump").write_bytes(b"x")
    other = backup_dir / "otherdb-20200101T000000Z.dump"
    other.write_bytes(b"x")

    result = backup_create(now=now)

    kept = {when for when, _ in backups_in(backup_dir, prefix)}
    assert result.path.exists()
    assert kept == retention_keep([now, *days])
    # New + 29 older days, plus older weekly/monthly representatives.
    assert len([k for k in kept if k > now - dt.timedelta(days=30)]) == 30
    assert len(result.pruned) == 41 - len(kept)
    assert other.exists()  # another database's backups are not touched


def test_backup_of_unchanged_database_has_samefingerprint(backup_dir, some_rows):
    assert FeatureFlag.objects.count() == 5
    path = backup_create().path

    import json

    manifest = json.loads(manifest_path(path).read_text())
    live = fingerprint()
    assert (
        manifest["tables"]["public.ops_featureflag"]
        == (live["tables"]["public.ops_featureflag"])
    )


def test_backup_with_verify_prunes_only_after_the_new_file_verified(
    backup_dir, some_rows
):
    backup_dir.mkdir(parents=True)
    prefix = connection.settings_dict["NAME"]
    old = backup_dir / f"{prefix}-20200101T020000Z.dump"
    same_day_older = backup_dir / f"{prefix}-{dt.datetime.now(UTC):%Y%m%d}T000000Z.dump"
    old.write_bytes(b"x")
    same_day_older.write_bytes(b"x")
    out = StringIO()

    call_command("backup_db", "--verify", stdout=out)

    assert "Verified:" in out.getvalue()
    # The older backup of the same day is superseded; the 2020 one is its month's.
    assert not same_day_older.exists()
    assert old.exists()


def test_backup_failing_verification_is_set_aside_and_prunes_nothing(
    backup_dir, some_rows, monkeypatch
):
    import core.backups

    backup_dir.mkdir(parents=True)
    prefix = connection.settings_dict["NAME"]
    same_day_older = backup_dir / f"{prefix}-{dt.datetime.now(UTC):%Y%m%d}T000000Z.dump"
    same_day_older.write_bytes(b"x")
    # Stands in for a restore that does not match (real ones: tests above).
    monkeypatch.setattr(
        core.backups,
        "backup_verify",
        lambda **kw: core.backups.VerifyResult(False, "test", problems=["mismatch"]),
    )

    with pytest.raises(CommandError, match="failed verification: mismatch"):
        call_command("backup_db", "--verify", stdout=StringIO())

    assert same_day_older.exists()
    [failed] = backup_dir.glob("*.dump.failed")
    assert [p for _, p in backups_in(backup_dir, prefix)] == [same_day_older]
    # Its manifest went with it: none is left naming a dump that is not there.
    assert manifest_path(failed).is_file()
    assert list(backup_dir.glob("*.dump.manifest.json")) == []
    assert AuditLog.objects.filter(
        changes__file=failed.name, changes__ok=False
    ).exists()


def test_backup_failing_at_the_rename_leaves_no_manifest_behind(
    backup_dir, some_rows, monkeypatch
):
    import core.backups

    real_replace = os.replace

    def failing_replace(src, dst):
        if str(src).endswith(".partial"):
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(core.backups.os, "replace", failing_replace)

    with pytest.raises(BackupError, match="disk full"):
        backup_create()

    # Neither the dump nor a manifest naming a dump that does not exist.
    assert list(backup_dir.iterdir()) == []


@pytest.mark.parametrize(
    "content",
    ["[]", '"text"', '{"tables": []}', '{"tables": {"public.x": 1}}'],
)
def test_verify_with_a_manifest_of_the_wrong_shape_is_a_clear_failure(
    backup_dir, some_rows, tmp_path, content
):
    path = backup_create(prune=False).path
    manifest = tmp_path / "other.json"
    manifest.write_text(content)

    with pytest.raises(CommandError, match="FAILED verification"):
        call_command(
            "verify_backup", str(path), "--manifest", str(manifest), stdout=StringIO()
        )

    result = backup_verify(path=path, manifest=manifest)
    assert result.problems == ["manifest is not a backup manifest"]


def test_verify_backup_command_turns_a_backup_error_into_a_clear_message(
    backup_dir, some_rows, monkeypatch
):
    import core.backups

    path = backup_create(prune=False).path

    def no_client(name, target):
        raise BackupError(f"No {name} for PostgreSQL 99 found.")

    monkeypatch.setattr(core.backups, "client_binary", no_client)

    with pytest.raises(CommandError, match="No pg_restore for PostgreSQL 99"):
        call_command("verify_backup", str(path), stdout=StringIO())


def test_restore_without_a_client_creates_no_database(
    backup_dir, some_rows, scratch_databases, monkeypatch
):
    import core.backups

    path = backup_create(prune=False).path
    name = f"{connection.settings_dict['NAME']}_noclient"
    scratch_databases.append(name)

    def no_client(binary, target):
        raise BackupError(f"No {binary} for PostgreSQL 99 found.")

    monkeypatch.setattr(core.backups, "client_binary", no_client)

    with pytest.raises(CommandError, match="No pg_restore"):
        call_command("restore_db", str(path), "--yes", "--database-name", name)
    # Nothing half done: no empty database left behind for the next run.
    assert not _database_exists(name)


def test_no_createdb_privilege_is_a_clear_error_for_restore_and_verify(
    backup_dir, some_rows, scratch_databases, monkeypatch
):
    import core.backups

    path = backup_create(prune=False).path
    name = f"{connection.settings_dict['NAME']}_nopriv"
    scratch_databases.append(name)

    def denied(target, dbname):
        raise psycopg.errors.InsufficientPrivilege("permission denied to create")

    monkeypatch.setattr(core.backups, "_create_database", denied)

    with pytest.raises(CommandError, match="permission denied to create"):
        call_command("restore_db", str(path), "--yes", "--database-name", name)
    with pytest.raises(CommandError, match="permission denied to create"):
        call_command("verify_backup", str(path), stdout=StringIO())


def test_the_content_checksum_builds_no_value_as_big_as_the_table(some_rows):
    # Method 1 joined every row of a table into one text value: past 1 GB
    # (10 million history rows in the large bench) PostgreSQL refused it and
    # every backup failed. Method 2 sums per-row hashes: row order does not
    # matter, a changed row does.
    before = fingerprint()
    flag = FeatureFlag.objects.order_by("pk").first()
    # Rewriting a row moves it to the end of the heap: same content, new order.
    FeatureFlag.objects.filter(pk=flag.pk).update(enabled=not flag.enabled)
    FeatureFlag.objects.filter(pk=flag.pk).update(enabled=flag.enabled)
    assert fingerprint() == before
    assert before["fingerprint_method"] == 2

    FeatureFlag.objects.filter(pk=flag.pk).update(enabled=not flag.enabled)
    after = fingerprint()
    changed = after["tables"]["public.ops_featureflag"]
    assert changed["rows"] == before["tables"]["public.ops_featureflag"]["rows"]
    assert changed["checksum"] != before["tables"]["public.ops_featureflag"]["checksum"]

    with target_for().connect() as conn:
        sql = database_fingerprint.__globals__["_CHECKSUM_SQL"][2]
        assert "string_agg" not in sql and "ORDER BY" not in sql
        assert database_fingerprint(conn)["tables"] == after["tables"]


def test_a_backup_whose_manifest_predates_the_checksum_change_still_verifies(
    backup_dir, some_rows
):
    # As written before: method 1 checksums (of what the dump holds: read
    # before the backup writes its audit row), no method recorded.
    with target_for().connect() as conn:
        legacy = database_fingerprint(conn, method=1)
    path = backup_create().path
    manifest = manifest_path(path)
    data = json.loads(manifest.read_text())
    assert data["fingerprint_method"] == 2
    del data["fingerprint_method"]
    data["tables"] = legacy["tables"]
    manifest.write_text(json.dumps(data))

    result = backup_verify(path=path)

    assert result.ok, result.problems
