"""Point-in-time recovery from the off-site store (core.pitr_offsite).

Real parts: the S3 side is moto's server over HTTP (tests/core/conftest.py),
encryption is age (pyrage), and the end-to-end test recovers the shared
embedded cluster's own WAL. Shipping tests that need no real WAL read a
temporary archive (settings.WAL_ARCHIVE_DIR), never the live one.
"""

import datetime as dt
import gzip
import os
import shutil
import tempfile
import time
from io import StringIO
from pathlib import Path

import pyrage
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from core import pitr, pitr_offsite, tasks
from core.backup_crypto import BackupError
from core.backups import target_for
from core.models import AuditLog, FeatureFlag, SystemMetric
from tests.core.backup_helpers import (
    BUCKET,
    base_backup_take,
    fake_base_backup,
    fingerprint,
    point_in_time_restore,
)
from tests.core.factories import FeatureFlagFactory
from tests.jobs import periodic_of

pytestmark = pytest.mark.django_db(transaction=True)

KEY = str(pyrage.x25519.Identity.generate())
SEGMENT = "00000001000000000000000{}"


@pytest.fixture
def archive(tmp_path, settings):
    settings.WAL_ARCHIVE_DIR = tmp_path / "archive"
    settings.WAL_ARCHIVE_DIR.mkdir()
    return settings.WAL_ARCHIVE_DIR


def _archived(archive, name):
    path = archive / name
    path.write_bytes(gzip.compress(os.urandom(64) + name.encode()))
    return path


def _remote(s3, folder="wal/"):
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"prod/db/{folder}")
    return sorted(
        item["Key"].removeprefix(f"prod/db/{folder}")
        for item in listing.get("Contents", [])
    )


def _decrypted(s3, key):
    body = s3.get_object(Bucket=BUCKET, Key=f"prod/db/{key}")["Body"].read()
    return pyrage.decrypt(body, [pyrage.x25519.Identity.from_str(KEY)])


def test_wal_ship_uploads_what_a_kept_base_backup_needs_encrypted_and_only_once(
    s3, archive, settings, backup_dir
):
    fake_base_backup(timezone.now() - dt.timedelta(hours=1), SEGMENT.format(5))
    _archived(archive, SEGMENT.format(3) + ".gz")  # before the oldest base backup
    label = _archived(archive, SEGMENT.format(5) + ".00000028.backup.gz")
    first = _archived(archive, SEGMENT.format(5) + ".gz")
    _archived(archive, SEGMENT.format(6) + ".gz")
    _archived(archive, "00000002.history.gz")
    _archived(archive, f".{SEGMENT.format(7)}.gz.tmp")  # still being written
    (archive / "README").write_text("not WAL")

    result = pitr_offsite.wal_ship()

    needed = [
        SEGMENT.format(5) + ".00000028.backup.gz",
        SEGMENT.format(5) + ".gz",
        SEGMENT.format(6) + ".gz",
        "00000002.history.gz",
    ]
    assert result.shipped == needed and not result.skipped
    assert result.encrypted == 0  # no key: the archive is left as it is
    assert _remote(s3) == needed
    s3_body = s3.get_object(Bucket=BUCKET, Key=f"prod/db/wal/{label.name}")["Body"]
    assert s3_body.read() == label.read_bytes()
    assert sorted(os.listdir(archive)) == sorted(
        [*needed, SEGMENT.format(3) + ".gz", f".{SEGMENT.format(7)}.gz.tmp", "README"]
    )

    # Nothing new: nothing uploaded. A new segment: only it.
    assert pitr_offsite.wal_ship().shipped == []
    _archived(archive, SEGMENT.format(7) + ".gz")
    assert pitr_offsite.wal_ship().shipped == [SEGMENT.format(7) + ".gz"]

    # Retention removed a segment locally: its marker is forgotten.
    first.unlink()
    pitr_offsite.wal_ship()
    markers = backup_dir / pitr_offsite.SHIPPED_MARKERS_DIR
    assert first.name not in os.listdir(markers)
    assert SEGMENT.format(6) + ".gz" in os.listdir(markers)


def test_with_a_key_the_archive_is_encrypted_at_rest_and_shipped_as_it_is(
    s3, archive, settings, backup_dir
):
    settings.BACKUP_ENCRYPTION_KEY = KEY
    fake_base_backup(timezone.now() - dt.timedelta(hours=1), SEGMENT.format(5))
    shipped_before = _archived(archive, SEGMENT.format(5) + ".gz")
    original = {SEGMENT.format(5) + ".gz": shipped_before.read_bytes()}
    settings.BACKUP_ENCRYPTION_KEY = ""
    assert pitr_offsite.wal_ship().shipped == [SEGMENT.format(5) + ".gz"]
    settings.BACKUP_ENCRYPTION_KEY = KEY
    for n in (6, 7):
        original[SEGMENT.format(n) + ".gz"] = _archived(
            archive, SEGMENT.format(n) + ".gz"
        ).read_bytes()

    result = pitr_offsite.wal_ship()

    assert result.encrypted == 3
    # No plaintext left; each file decrypts to what the server archived.
    assert sorted(os.listdir(archive)) == sorted(f"{n}.age" for n in original)
    identity = [pyrage.x25519.Identity.from_str(KEY)]
    for name, content in original.items():
        assert pyrage.decrypt((archive / f"{name}.age").read_bytes(), identity) == (
            content
        )
    # Shipped once each: the one sent before the key stays as it went; the
    # new ones go encrypted, byte for byte the file at rest.
    assert result.shipped == [SEGMENT.format(6) + ".gz", SEGMENT.format(7) + ".gz"]
    assert _remote(s3) == [
        SEGMENT.format(5) + ".gz",
        SEGMENT.format(6) + ".gz.age",
        SEGMENT.format(7) + ".gz.age",
    ]
    assert (
        _decrypted(s3, f"wal/{SEGMENT.format(7)}.gz.age")
        == (original[SEGMENT.format(7) + ".gz"])
    )

    # The server archived a segment again (after a crash it cannot see the
    # encrypted copy): the same content is dropped quietly...
    again = archive / (SEGMENT.format(6) + ".gz")
    again.write_bytes(gzip.compress(gzip.decompress(original[again.name])))
    assert pitr_offsite.wal_ship().encrypted == 1
    assert not again.exists()
    # An encryption killed half-way leaves a partial file: gone once stale.
    partial = archive / f".{SEGMENT.format(8)}.gz.age.1a2b3c4d.partial"
    partial.write_bytes(b"half")
    fresh = archive / f".{SEGMENT.format(9)}.gz.age.5e6f7a8b.partial"
    fresh.write_bytes(b"half")
    os.utime(partial, (time.time() - 13 * 3600,) * 2)
    pitr_offsite.wal_ship()
    assert not partial.exists() and fresh.exists()
    fresh.unlink()
    # ...a different one is kept, and the run fails so a person looks.
    # The other files are still encrypted and shipped first.
    again.write_bytes(gzip.compress(b"another server's WAL"))
    newest = _archived(archive, SEGMENT.format("A") + ".gz")
    with pytest.raises(BackupError, match="another server archiving"):
        pitr_offsite.wal_ship()
    assert again.exists() and (archive / f"{again.name}.age").exists()
    assert not newest.exists()
    assert SEGMENT.format("A") + ".gz.age" in _remote(s3)


def test_wal_ship_without_the_store_or_a_base_backup_ships_nothing(
    s3, archive, settings, backup_dir
):
    _archived(archive, SEGMENT.format(5) + ".gz")
    assert "no base backup" in pitr_offsite.wal_ship().skipped
    with pytest.raises(CommandError, match="no base backup"):
        call_command("backup_db", "--ship-wal", stdout=StringIO())
    settings.BACKUP_STORAGE_URL = ""
    fake_base_backup(timezone.now(), SEGMENT.format(5))
    assert "BACKUP_STORAGE_URL" in pitr_offsite.wal_ship().skipped
    assert _remote(s3) == []


def test_a_failed_upload_is_retried_by_the_next_run(
    s3, s3_server, archive, settings, backup_dir
):
    fake_base_backup(timezone.now(), SEGMENT.format(5))
    _archived(archive, SEGMENT.format(5) + ".gz")
    _archived(archive, SEGMENT.format(6) + ".gz")
    good = settings.BACKUP_STORAGE_URL
    settings.BACKUP_STORAGE_URL = (
        f"s3://no-such-bucket/db?endpoint_url={s3_server}&region=us-east-1"
    )
    with pytest.raises(CommandError, match="Could not upload"):
        call_command("backup_db", "--ship-wal", stdout=StringIO())
    assert not os.listdir(backup_dir / pitr_offsite.SHIPPED_MARKERS_DIR)

    settings.BACKUP_STORAGE_URL = good
    out = StringIO()
    call_command("backup_db", "--ship-wal", stdout=out)
    assert "Shipped 2 WAL file(s) off-site" in out.getvalue()
    assert _remote(s3) == [SEGMENT.format(5) + ".gz", SEGMENT.format(6) + ".gz"]


def test_wal_ship_job_runs_every_minute_outside_the_heavy_lock(
    archive, backup_dir, monkeypatch
):

    periodic = periodic_of(tasks.wal_ship)
    assert periodic.cron == "* * * * *"
    assert tasks.wal_ship.queue == "maintenance"
    # Never queued behind an hour-long backup or VACUUM.
    assert tasks.wal_ship.lock != tasks.HEAVY_LOCK
    assert tasks.wal_ship(timestamp=0) == 0  # no store configured
    connection.ensure_connection()
    monkeypatch.delitem(connection.settings_dict, "PGDATA")
    assert tasks.wal_ship(timestamp=0) == 0  # external server


def _put_base_backup(s3, stamp, start_wal):
    """An off-site base backup as core.pitr._publish lays it out (plaintext)."""
    when = dt.datetime.strptime(stamp, pitr.TIMESTAMP_FORMAT).replace(tzinfo=dt.UTC)
    info = (
        f'{{"started_at": "{when.isoformat()}", "finished_at": "{when.isoformat()}",'
        f' "start_wal": "{start_wal}", "timeline": 1, "bytes": 0}}'
    )
    s3.put_object(Bucket=BUCKET, Key=f"prod/db/base/{stamp}.pitr.json", Body=info)
    for name in ("base.tar.gz", "pg_wal.tar.gz", "backup_manifest"):
        s3.put_object(Bucket=BUCKET, Key=f"prod/db/base/{stamp}/{name}", Body=b"x")


def test_offsite_retention_keeps_the_newest_base_backups_and_the_wal_they_need(
    s3, backup_dir
):
    _put_base_backup(s3, "20261120T024500Z", SEGMENT.format(2))
    _put_base_backup(s3, "20261121T024500Z", SEGMENT.format(5))
    _put_base_backup(s3, "20261122T024500Z", SEGMENT.format(8))
    for name in [
        *(SEGMENT.format(n) + ".gz" for n in range(2, 10)),
        SEGMENT.format(2) + ".00000028.backup.gz",
        "00000002.history.gz",
    ]:
        s3.put_object(Bucket=BUCKET, Key=f"prod/db/wal/{name}", Body=b"x")

    result = pitr_offsite.offsite_prune(keep=2)

    assert result.base_backups == ["base/20261120T024500Z"]
    assert result.wal_files == 4
    assert [b.path.name for b in pitr_offsite.remote_base_backups()] == [
        "20261121T024500Z",
        "20261122T024500Z",
    ]
    assert not any(k.startswith("20261120T024500Z") for k in _remote(s3, "base/"))
    assert _remote(s3) == [
        *(SEGMENT.format(n) + ".gz" for n in range(5, 10)),
        "00000002.history.gz",
    ]


def _archive_copy(base, settings, tmp_path):
    """Archive the live server's current segment, then point the app at a copy
    of what a recovery from ``base`` needs: encrypting or pruning touches the
    copy, never the developer's live archive."""
    live = pitr.wal_archive_dir()
    pitr._archive_current_wal(target_for(), live, None)
    copy = tmp_path / "archive"
    copy.mkdir()
    for item in live.iterdir():
        if item.name.endswith(".gz") and pitr_offsite._needed(
            item.name, base.start_wal
        ):
            shutil.copy2(item, copy / item.name)
    settings.WAL_ARCHIVE_DIR = copy
    return copy


def test_with_a_key_a_point_in_time_restore_reads_the_encrypted_backup_and_wal(
    settings, backup_dir, tmp_path, scratch_databases, user
):
    settings.BACKUP_ENCRYPTION_KEY = KEY
    base = base_backup_take()
    # At rest like the dumps: no plaintext copy of the cluster.
    assert sorted(p.name for p in base.path.iterdir()) == [
        "backup_manifest.age",
        "base.tar.gz.age",
        "pg_wal.tar.gz.age",
    ]
    FeatureFlagFactory.create_batch(7)
    at_t = fingerprint()
    t = timezone.now()
    time.sleep(0.05)
    FeatureFlag.objects.update(rollout_percent=70)
    copy = _archive_copy(base, settings, tmp_path)
    result = pitr_offsite.wal_ship()  # no store: encrypts only
    assert result.encrypted >= 1 and "BACKUP_STORAGE_URL" in result.skipped
    assert not [n for n in os.listdir(copy) if not n.endswith(".age")]

    name, text = point_in_time_restore(scratch_databases, t.isoformat())
    assert fingerprint(name)["tables"] == at_t["tables"]
    assert f"decrypting base backup {base.path.name}" in text
    assert "archived WAL file(s)" in text
    # The decrypted copies went with the private directory.
    assert not [
        p
        for p in Path(tempfile.gettempdir()).glob("pitr-*")
        if p.is_dir() and (p / "wal").exists()
    ]


def test_the_database_at_t_is_recovered_from_the_store_after_the_machine_is_lost(
    s3, settings, backup_dir, tmp_path, scratch_databases, user
):
    settings.BACKUP_ENCRYPTION_KEY = KEY
    base = base_backup_take()  # uploaded (encrypted) as it is made
    FeatureFlagFactory.create_batch(12)
    at_t = fingerprint()
    t = timezone.now()
    time.sleep(0.05)
    FeatureFlag.objects.filter(key__in=["flag-0", "flag-1"]).delete()
    FeatureFlag.objects.update(rollout_percent=30)
    at_end = fingerprint()
    _archive_copy(base, settings, tmp_path)
    shipped = pitr_offsite.wal_ship().shipped
    assert shipped and shipped[0] >= base.start_wal
    assert all(k.endswith(".age") for k in _remote(s3))

    # The machine is lost: its base backups, markers and WAL archive with it.
    shutil.rmtree(backup_dir)
    settings.BACKUP_DIR = tmp_path / "new-machine"
    settings.WAL_ARCHIVE_DIR = tmp_path / "empty-archive"
    with pytest.raises(CommandError, match="No base backup yet"):
        call_command(
            "restore_db",
            "--point-in-time",
            t.isoformat(),
            "--database-name",
            "never",
            "--yes",
            stdout=StringIO(),
        )

    name, text = point_in_time_restore(
        scratch_databases, t.isoformat(), "--from-storage"
    )
    assert fingerprint(name)["tables"] == at_t["tables"]
    assert f"fetching base backup s3:base/{base.path.name}" in text
    assert "archived the live server's WAL" not in text
    audit = AuditLog.objects.filter(action=AuditLog.Action.RESTORE).latest("id")
    assert audit.changes["ok"] is True
    assert audit.changes["base_backup"] == f"s3:base/{base.path.name}"

    # latest: everything that was shipped.
    latest, text = point_in_time_restore(scratch_databases, "latest", "--from-storage")
    assert "Recovered to the end of the WAL from base backup" in text
    restored = fingerprint(latest)["tables"]
    for table, state in at_end["tables"].items():
        if table != "public.ops_auditlog":  # restores write audit rows
            assert restored[table] == state, table

    # A time the shipped WAL does not reach: said so, nothing left behind.
    with pytest.raises(CommandError, match=r"ends before .* shipped off-site"):
        call_command(
            "restore_db",
            "--point-in-time",
            timezone.now().isoformat(),
            "--from-storage",
            "--database-name",
            "too_late",
            "--yes",
            stdout=StringIO(),
        )
    with target_for().connect() as conn:
        assert not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = 'too_late'"
        ).fetchone()


def test_from_storage_needs_the_store_and_a_point_in_time(backup_dir, settings):
    settings.BACKUP_STORAGE_URL = ""
    with pytest.raises(CommandError, match="needs BACKUP_STORAGE_URL"):
        call_command(
            "restore_db",
            "--point-in-time",
            "latest",
            "--from-storage",
            "--database-name",
            "x",
            "--yes",
        )
    with pytest.raises(CommandError, match="goes with --point-in-time"):
        call_command("restore_db", "some.dump", "--from-storage", "--yes")


def test_the_restore_drill_recovers_reads_compares_and_drops_its_database(
    s3, settings, backup_dir, tmp_path, user
):
    """verify_backup --point-in-time: local, then from the store (the path a
    lost machine takes); the scratch database never stays."""
    settings.BACKUP_ENCRYPTION_KEY = KEY
    base = base_backup_take()
    FeatureFlagFactory.create_batch(4)
    _archive_copy(base, settings, tmp_path)
    pitr_offsite.wal_ship()

    for options, source in (([], "local"), (["--from-storage"], "storage")):
        out = StringIO()
        call_command("verify_backup", "--point-in-time", *options, stdout=out)
        assert f"Point-in-time restore drill ({source}) passed" in out.getvalue()
        metric = SystemMetric.objects.filter(
            metric="backup.pitr_verify_seconds", tags__source=source
        ).get()
        assert metric.value > 0
    with target_for().connect() as conn:
        assert not conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'pitr_verify_%'"
        ).fetchall()
    drills = AuditLog.objects.filter(changes__kind="pitr_verify")
    assert [d.changes["ok"] for d in drills] == [True, True]


def test_a_drill_that_cannot_restore_fails_and_leaves_nothing(s3, settings, backup_dir):
    # No base backup in the store: nothing to recover from.
    with pytest.raises(CommandError, match="drill FAILED"):
        call_command(
            "verify_backup", "--point-in-time", "--from-storage", stdout=StringIO()
        )
    assert AuditLog.objects.get(changes__kind="pitr_verify").changes["ok"] is False
    assert not SystemMetric.objects.filter(metric="backup.pitr_verify_seconds")
    with pytest.raises(CommandError, match="goes with --point-in-time"):
        call_command("verify_backup", "x.dump", "--from-storage")


def test_the_drill_runs_weekly_under_the_heavy_lock_and_skips_what_it_cannot(
    backup_dir, settings, monkeypatch
):

    periodic = periodic_of(tasks.pitr_verify)
    assert periodic.cron == settings.PITR_VERIFY_SCHEDULE_CRON == "15 5 * * 0"
    assert tasks.pitr_verify.lock == tasks.HEAVY_LOCK
    assert tasks.pitr_verify(timestamp=0) == "skipped: no base backup yet"
    connection.ensure_connection()
    monkeypatch.delitem(connection.settings_dict, "PGDATA")
    assert tasks.pitr_verify(timestamp=0) == "skipped: external server"
