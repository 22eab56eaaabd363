"""Point-in-time recovery on the real embedded server (core.pitr).

The test settings use the shared embedded server, which archives its WAL into
its own archive (core.embedded_postgres.wal_archive_dir). These tests put base
backups under a temporary BACKUP_DIR and only ever *read* the live archive;
the retention test prunes a temporary archive (settings.WAL_ARCHIVE_DIR), never
the live one.
"""

import datetime as dt
import subprocess
import tempfile
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from core import pitr
from core.backups import target_for
from core.embedded_postgres import bin_path
from core.models import AuditLog, FeatureFlag, SystemMetric
from tests.core.backup_helpers import (
    base_backup_take,
    fake_base_backup,
    fingerprint,
    point_in_time_restore,
)
from tests.core.factories import FeatureFlagFactory, SystemMetricFactory
from tests.jobs import periodic_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_point_in_time_restore_matches_the_snapshot_taken_at_t(
    backup_dir, scratch_databases, user, tmp_path
):
    private_copies = set(Path(tempfile.gettempdir()).glob("pitr-*"))
    base_backup_take()
    FeatureFlagFactory.create_batch(20)
    SystemMetricFactory.create_batch(5, metric="pitr.test")
    snapshot = fingerprint()
    t = timezone.now()
    time.sleep(0.05)
    # After T: deletes and changes the restore must not show.
    FeatureFlag.objects.filter(key__in=["flag-0", "flag-1"]).delete()
    FeatureFlag.objects.update(rollout_percent=50)
    SystemMetric.objects.filter(metric="pitr.test").delete()
    FeatureFlagFactory.create_batch(3)
    assert fingerprint()["tables"] != snapshot["tables"]

    name, text = point_in_time_restore(scratch_databases, t.isoformat())

    restored = fingerprint(name)
    assert restored["tables"] == snapshot["tables"]
    # Sequences are WAL-logged up to 32 values ahead: never behind.
    for seq, value in snapshot["sequences"].items():
        assert (restored["sequences"][seq] or 0) >= (value or 0)
    assert "Recovered to" in text and "archived the live server's WAL" in text
    # The private copy is stopped and deleted.
    assert set(Path(tempfile.gettempdir()).glob("pitr-*")) == private_copies
    audit = AuditLog.objects.filter(action=AuditLog.Action.RESTORE).latest("id")
    assert audit.changes["ok"] is True
    assert (
        audit.changes["kind"] == "point_in_time" and audit.changes["database"] == name
    )

    # --data-dir: the whole recovered cluster, promoted and stopped.
    data_dir = tmp_path / "recovered"
    call_command(
        "restore_db",
        "--point-in-time",
        t.isoformat(),
        "--data-dir",
        str(data_dir),
        "--yes",
        stdout=StringIO(),
    )
    assert (data_dir / "PG_VERSION").is_file()
    assert not (data_dir / "recovery.signal").exists()
    assert not (data_dir / "postmaster.pid").exists()
    assert "restore_command" not in (data_dir / "postgresql.auto.conf").read_text()


def test_times_outside_the_window_are_refused(backup_dir, scratch_databases):
    fake_base_backup(timezone.now() - dt.timedelta(hours=2), "000000010000000000000001")
    [backup] = pitr.base_backups()
    before = backup.started_at - dt.timedelta(minutes=5)
    with pytest.raises(CommandError, match="before the first kept base backup") as exc:
        call_command(
            "restore_db",
            "--point-in-time",
            before.isoformat(),
            "--database-name",
            "pitr_never",
            "--yes",
        )
    assert "recoverable window" in str(exc.value)
    assert pitr._fmt(backup.finished_at) in str(exc.value)

    future = timezone.now() + dt.timedelta(hours=1)
    with pytest.raises(CommandError, match=r"in the future.*recoverable window"):
        call_command(
            "restore_db",
            "--point-in-time",
            future.isoformat().replace("+00:00", "Z"),
            "--database-name",
            "pitr_never",
            "--yes",
        )
    with target_for().connect() as conn:
        assert not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = 'pitr_never'"
        ).fetchone()


def test_no_base_backup_yet_is_refused(backup_dir):
    with pytest.raises(CommandError, match="No base backup yet"):
        call_command(
            "restore_db",
            "--point-in-time",
            timezone.now().isoformat(),
            "--database-name",
            "pitr_never",
            "--yes",
        )


def test_base_backup_is_verified_and_retention_prunes_old_wal(
    backup_dir, settings, tmp_path
):
    archive = tmp_path / "wal"
    archive.mkdir()
    settings.WAL_ARCHIVE_DIR = archive
    settings.BASE_BACKUP_KEEP = 1
    old = [
        "000000010000000000000001.gz",
        "000000010000000000000002.gz",
        "000000010000000000000002.00000028.backup.gz",
        # Encrypted at rest (core.pitr_offsite.wal_archive_encrypt).
        "000000010000000000000003.gz.age",
    ]
    newer = [
        "0000000100000FFF00000001.gz",
        "0000000100000FFF00000002.gz.age",
        "00000002.history.gz",
    ]
    for name in [*old, *newer]:
        (archive / name).write_bytes(b"x")

    first = fake_base_backup(
        timezone.now() - dt.timedelta(days=1), "000000010000000000000002"
    )
    out = StringIO()
    call_command("backup_db", "--base", stdout=out)

    [second] = pitr.base_backups()
    assert second.path != first and not first.exists()
    assert not pitr.info_path(first).exists() and pitr.info_path(second.path).exists()
    # -X stream: the WAL the copy needs is in pg_wal.tar.gz.
    files = sorted(p.name for p in second.path.iterdir())
    assert files == ["backup_manifest", "base.tar.gz", "pg_wal.tar.gz"]
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in second.path.iterdir())
    assert oct(second.path.stat().st_mode & 0o777) == "0o700"
    assert not list(second.path.parent.glob(".*"))  # no partial left
    # pg_verifybackup accepts it as it is on disk (no file beside the manifest's).
    verify = subprocess.run(
        [str(bin_path("pg_verifybackup")), "-n", str(second.path)],
        capture_output=True,
        check=False,
    )
    assert verify.returncode == 0
    remaining = {p.name for p in archive.iterdir()}
    assert not remaining & set(old)
    assert set(newer) <= remaining
    assert "pruned base backup" in out.getvalue()
    audit = AuditLog.objects.filter(action=AuditLog.Action.BACKUP).latest("id")
    assert audit.changes["kind"] == "base" and audit.changes["ok"] is True
    assert audit.changes["wal_pruned"] == len(old)


def test_base_backup_refuses_an_external_server(backup_dir, monkeypatch):
    connection.ensure_connection()
    monkeypatch.delitem(connection.settings_dict, "PGDATA")
    with pytest.raises(CommandError, match=r"external server.*README"):
        call_command("backup_db", "--base")
    assert not (backup_dir / "base").exists() or not any(
        (backup_dir / "base").iterdir()
    )


def test_nightly_base_backup_is_scheduled_and_skips_an_external_server(
    backup_dir, monkeypatch, settings
):

    from core import tasks

    periodic = periodic_of(tasks.base_backup)
    assert periodic.cron == settings.BASE_BACKUP_SCHEDULE_CRON == "45 2 * * *"
    assert tasks.base_backup.lock == tasks.HEAVY_LOCK
    connection.ensure_connection()
    monkeypatch.delitem(connection.settings_dict, "PGDATA")
    assert tasks.base_backup(timestamp=0) == "skipped: external server"
