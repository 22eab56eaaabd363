"""Restores check before they write; encrypted backups; off-site copies.

The S3 side is a real S3-compatible server (moto's server mode) listening on a
free local port, spoken to over HTTP by boto3: never a mock object.
"""

import datetime as dt
import json
import logging
import shutil
from io import StringIO

import pyrage
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from core.backup_storage import (
    artifact_cleanup,
    artifact_fetch,
    artifact_publish,
    remote_list,
)
from core.backups import (
    backup_create,
    backup_name,
    manifest_path,
    retention_keep,
    target_for,
)
from core.models import AuditLog
from tests.core.backup_helpers import AWS_SECRET, BUCKET, fingerprint
from tests.core.factories import FeatureFlagFactory

pytestmark = pytest.mark.django_db(transaction=True)

KEY = str(pyrage.x25519.Identity.generate())
OTHER_KEY = str(pyrage.x25519.Identity.generate())


@pytest.fixture
def some_rows(user, other_user):
    FeatureFlagFactory.create_batch(5)
    return user


def _database_exists(name):
    with target_for().connect() as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return row.fetchone() is not None


def _keys(client):
    return sorted(
        item["Key"]
        for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    )


# --- 3. restores check before they write ----------------------------------------


def test_bit_flipped_dump_is_refused_before_any_database_is_touched(
    backup_dir, some_rows, scratch_databases
):
    path = backup_create(prune=False).path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    before = fingerprint()
    name = f"{connection.settings_dict['NAME']}_flipped"
    scratch_databases.append(name)

    with pytest.raises(CommandError, match=r"checksum differs.*No database"):
        call_command("restore_db", str(path), "--yes", "--database-name", name)
    assert not _database_exists(name)
    # Into the configured database with --clean: refused, and nothing changed.
    with pytest.raises(CommandError, match="checksum differs"):
        call_command("restore_db", str(path), "--yes", "--clean")
    # Only the audit row of the refusal was written.
    after = fingerprint()
    for state in (before, after):
        state["tables"].pop("public.ops_auditlog")
        state["sequences"].pop("public.ops_auditlog_id_seq", None)
    assert after == before
    assert AuditLog.objects.filter(
        action=AuditLog.Action.RESTORE, changes__ok=False
    ).exists()


# --- 4. encryption and off-site copies ------------------------------------------


def test_encrypted_backup_upload_download_verify_restore_round_trip(
    s3, settings, some_rows, scratch_databases, caplog, backup_dir
):
    settings.BACKUP_ENCRYPTION_KEY = KEY
    caplog.set_level(logging.DEBUG)
    expected = fingerprint()

    result = backup_create()

    # Only ciphertext at rest; the manifest (counts and checksums) is plaintext.
    assert result.path.name.endswith(".dump.age")
    assert sorted(p.name for p in backup_dir.iterdir()) == [
        result.path.name,
        result.path.name + ".manifest.json",
    ]
    assert result.path.read_bytes().startswith(b"age-encryption.org/v1")
    manifest = json.loads(manifest_path(result.path).read_text())
    assert {"sha256", "encrypted_sha256", "tables"} <= manifest.keys()
    assert _keys(s3) == [
        f"prod/db/{result.path.name}",
        f"prod/db/{result.path.name}.manifest.json",
    ]

    # The local copy is lost: everything comes back from the bucket.
    shutil.rmtree(backup_dir)
    out = StringIO()
    call_command("verify_backup", f"s3:{result.path.name}", stdout=out)
    assert "verified" in out.getvalue()
    name = f"{connection.settings_dict['NAME']}_offsite"
    scratch_databases.append(name)
    call_command(
        "restore_db",
        f"s3:{result.path.name}",
        "--yes",
        "--database-name",
        name,
        stdout=out,
    )
    assert fingerprint(name) == expected
    # Decrypted copies were temporary.
    assert not list(backup_dir.glob(".fetch-*"))

    # No secret anywhere it could leak.
    audit = json.dumps(list(AuditLog.objects.values_list("changes", flat=True)))
    for secret in (KEY, AWS_SECRET):
        assert secret not in audit
        assert secret not in caplog.text
        assert secret not in out.getvalue()


def test_wrong_key_fails_clearly_and_creates_nothing(
    s3, settings, some_rows, scratch_databases, backup_dir
):
    settings.BACKUP_ENCRYPTION_KEY = KEY
    path = backup_create().path
    settings.BACKUP_ENCRYPTION_KEY = OTHER_KEY
    name = f"{connection.settings_dict['NAME']}_wrongkey"
    scratch_databases.append(name)

    for source in (str(path), f"s3:{path.name}"):
        with pytest.raises(CommandError) as raised:
            call_command("restore_db", source, "--yes", "--database-name", name)
        message = str(raised.value)
        assert "wrong BACKUP_ENCRYPTION_KEY" in message
        assert OTHER_KEY not in message and KEY not in message
        assert not _database_exists(name)
    with pytest.raises(CommandError, match="FAILED"):
        call_command("verify_backup", str(path), stdout=StringIO())
    assert not list(backup_dir.glob(".fetch-*"))

    # Not a key at all: a message that does not quote it.
    settings.BACKUP_ENCRYPTION_KEY = "AGE-SECRET-KEY-1NOTAKEY"
    with pytest.raises(CommandError, match="not an age identity") as raised:
        call_command("restore_db", str(path), "--yes", "--database-name", name)
    assert "NOTAKEY" not in str(raised.value)


def test_retention_prunes_remote_copies_by_the_same_rule(
    s3, settings, some_rows, backup_dir
):
    prefix = connection.settings_dict["NAME"]
    now = dt.datetime(2026, 11, 27, 2, 15, tzinfo=dt.UTC)
    # Two backups a day for 40 days, already off-site (their local copies gone).
    old_times = [
        now - dt.timedelta(days=day, hours=hour)
        for day in range(1, 41)
        for hour in (0, 6)
    ]
    for when in old_times:
        name = f"prod/db/{backup_name(prefix, when)}.age"
        s3.put_object(Bucket=BUCKET, Key=name, Body=b"x")
        s3.put_object(Bucket=BUCKET, Key=name + ".manifest.json", Body=b"{}")
    settings.BACKUP_ENCRYPTION_KEY = KEY

    result = backup_create(now=now)

    kept = retention_keep([now, *old_times])
    expected = sorted(f"{backup_name(prefix, when)}.age" for when in kept)
    assert sorted(n for n in remote_list() if not n.endswith(".json")) == expected
    assert len(result.pruned_remote) == len(old_times) + 1 - len(kept)
    # Every pruned backup's manifest went with it.
    assert len(_keys(s3)) == 2 * len(kept)


def test_artifact_publish_and_fetch(s3, settings, backup_dir, tmp_path):
    settings.BACKUP_ENCRYPTION_KEY = KEY
    base = backup_dir / "base"
    base.mkdir(parents=True)
    artifact = base / "base-20261127T020000Z.tar.gz"
    artifact.write_bytes(b"base backup bytes" * 1000)

    final = artifact_publish(artifact)

    assert final.name == artifact.name + ".age"
    assert not artifact.exists()
    assert f"prod/db/base/{final.name}" in _keys(s3)
    final.unlink()
    fetched = artifact_fetch(f"s3:base/{final.name}")
    try:
        assert fetched.read_bytes() == b"base backup bytes" * 1000
    finally:
        artifact_cleanup(fetched)
    # A caller-chosen remote name gets the suffix that says "decrypt me".
    again = base / "copy.bin"
    again.write_bytes(b"wal")
    artifact_publish(again, remote_name="base/x/copy.bin")
    fetched = artifact_fetch("s3:base/x/copy.bin.age")
    try:
        assert fetched.read_bytes() == b"wal"
    finally:
        artifact_cleanup(fetched)
    assert not fetched.parent.exists()


def test_without_settings_publish_is_a_no_op(backup_dir):
    backup_dir.mkdir(parents=True)
    artifact = backup_dir / "plain.bin"
    artifact.write_bytes(b"plain")
    assert artifact_publish(artifact) == artifact
    assert artifact.read_bytes() == b"plain"
