"""The archived WAL at rest and off-site, and point-in-time recovery from the
off-site store (``BACKUP_STORAGE_URL``).

Base backups already go off-site when they are made (``core.pitr._publish``:
``base/<UTC time>/…`` and ``base/<UTC time>.pitr.json``). This module adds the
WAL, so a lost machine can be recovered to a point in time and not only to the
last nightly dump:

- :func:`wal_ship` (the ``core.wal_ship`` job, every minute; ``backup_db
  --ship-wal``) first encrypts, with ``BACKUP_ENCRYPTION_KEY`` set, each
  plaintext file the server archived (``<name>.gz`` → ``<name>.gz.age``,
  :func:`wal_archive_encrypt`): the server's archive command has no key (it
  runs as the server's user, which cannot even run this app's Python), so a
  segment lies in plaintext for at most about a minute. Then, with
  ``BACKUP_STORAGE_URL`` set, it uploads each archived file not shipped yet as
  ``wal/<name>.gz[.age]``. Only files a kept base backup needs go (from the
  oldest local base backup's first segment on, and every timeline history
  file). An empty marker per shipped file in ``BACKUP_DIR/wal-shipped/``
  remembers what went, so a run costs one directory listing when nothing is
  new; a marker whose archive file retention removed is forgotten.
- :func:`offsite_prune` (after each base backup) keeps the newest
  ``BASE_BACKUP_KEEP`` base backups off-site too, and the shipped WAL from the
  oldest kept one's first segment on.
- :func:`remote_base_backups`, :func:`base_backup_fetch` and :func:`wal_fetch`
  bring them back for ``restore_db --point-in-time T --from-storage``
  (``core.pitr.pitr_restore``), decrypted into the restore's private directory.

RPO with shipping: ``archive_timeout`` (60 s) until a segment is archived, plus
up to a minute until the next ``wal_ship`` run.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from core import backup_storage, pitr
from core.backup_crypto import (
    ENCRYPTED_SUFFIX,
    BackupError,
    decrypt_file,
    encrypt_file,
    encryption_enabled,
)
from core.backups import backup_dir

logger = logging.getLogger(__name__)

WAL_REMOTE_DIR = "wal"
SHIPPED_MARKERS_DIR = "wal-shipped"
# What the archive command writes (core.embedded_postgres): segments, the
# .backup label pg_basebackup leaves, timeline history files; all gzipped.
# Encrypted at rest, the same with .age (wal_archive_encrypt).
_PLAIN_WAL_FILE = re.compile(
    r"(?:[0-9A-F]{24}(?:\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)\.gz"
)
_WAL_FILE = re.compile(_PLAIN_WAL_FILE.pattern + f"(?:{re.escape(ENCRYPTED_SUFFIX)})?")
_REMOTE_INFO = re.compile(
    rf"{pitr.BASE_DIR_NAME}/(\d{{8}}T\d{{6}}Z){re.escape(pitr.INFO_SUFFIX)}"
    rf"(?:{re.escape(ENCRYPTED_SUFFIX)})?"
)


def _needed(name: str, first_segment: str) -> bool:
    """Whether archived WAL file ``name`` is needed to recover from a base
    backup starting at ``first_segment``: history files always (a recovery
    reads them to follow timelines); segments and labels from that one on."""
    return name.endswith(".history.gz") or name[:24] >= first_segment


def _plain_name(remote_name: str) -> str:
    return Path(remote_name).name.removesuffix(ENCRYPTED_SUFFIX)


# --- shipping -----------------------------------------------------------------------


@dataclass
class ShipResult:
    shipped: list[str] = field(default_factory=list)
    # Why nothing was shipped ("" when the archive was read for shipping).
    skipped: str = ""
    # Files encrypted at rest by this run.
    encrypted: int = 0


def _gunzipped_equal(first: Path, second: Path) -> bool:
    with gzip.open(first, "rb") as a, gzip.open(second, "rb") as b:
        while True:
            chunk = a.read(1 << 20)
            if chunk != b.read(1 << 20):
                return False
            if not chunk:
                return True


def wal_archive_encrypt(archive: Path) -> int:
    """Encrypt every plaintext file in the WAL archive in place (``.gz`` →
    ``.gz.age``, written atomically before the plaintext goes); return how many.

    A plaintext file next to its encrypted copy was archived again by the
    server (after a crash it cannot tell the copy is there): identical once
    decrypted, the plaintext goes; different, both stay and this raises — two
    servers archive into one directory, and a person must look.
    """
    done = 0
    conflicts = []
    stale = time.time() - pitr.STALE_PARTIAL_AGE.total_seconds()
    for name in sorted(os.listdir(archive) if archive.is_dir() else []):
        if name.endswith(".partial") and name.startswith("."):
            # An encryption this job did not finish (killed): the plaintext
            # is still there and is encrypted again below.
            with contextlib.suppress(FileNotFoundError):
                if (archive / name).stat().st_mtime < stale:
                    (archive / name).unlink()
            continue
        if not _PLAIN_WAL_FILE.fullmatch(name):
            continue
        plain = archive / name
        sealed = archive / (name + ENCRYPTED_SUFFIX)
        if sealed.exists():
            with tempfile.TemporaryDirectory(dir=backup_dir()) as scratch:
                copy = decrypt_file(sealed, Path(scratch) / name)
                same = _gunzipped_equal(copy, plain)
            if not same:
                conflicts.append(name)
                continue
            plain.unlink()
        else:
            encrypt_file(plain)
        done += 1
    if conflicts:
        raise BackupError(
            f"{len(conflicts)} archived WAL file(s) in {archive} differ from their "
            f"encrypted copies (first: {conflicts[0]}): is another server archiving "
            "into this directory? Both copies are kept."
        )
    return done


def _markers_dir() -> Path:
    path = backup_dir() / SHIPPED_MARKERS_DIR
    path.mkdir(exist_ok=True)
    path.chmod(0o700)
    return path


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        # Costs nothing, and encryption deletes only this name.
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
        target.chmod(0o600)


def wal_ship(*, using: str | None = None, progress=None) -> ShipResult:
    """Upload the archived WAL files that are not off-site yet (module doc).

    Oldest first, each marked as soon as it is uploaded: a failure (raised as
    :class:`~core.backup_crypto.BackupError`) leaves the rest for the next
    run, which picks up where this one stopped.
    """
    archive = pitr.wal_archive_dir(using)
    result = ShipResult()
    conflict = None
    if encryption_enabled():
        try:
            result.encrypted = wal_archive_encrypt(archive)
        except BackupError as exc:
            # Raised once the rest is shipped: a conflict on one file must
            # not hold back the off-site copy of the others.
            conflict = exc
    _ship(archive, result, progress)
    if conflict is not None:
        raise conflict
    return result


def _ship(archive: Path, result: ShipResult, progress) -> None:
    if not backup_storage.storage_enabled():
        result.skipped = "BACKUP_STORAGE_URL is not set"
        return
    backups = pitr.base_backups()
    if not backups:
        # WAL older than the first base backup restores nothing.
        result.skipped = "no base backup yet (backup_db --base)"
        return
    first_segment = backups[0].start_wal
    names = sorted(
        name
        for name in (os.listdir(archive) if archive.is_dir() else [])
        if _WAL_FILE.fullmatch(name)
    )
    markers = _markers_dir()
    with tempfile.TemporaryDirectory(prefix=".ship-", dir=backup_dir()) as scratch:
        for name in names:
            # Marked by the plain name: a file encrypted at rest after it was
            # shipped is not shipped again.
            plain = _plain_name(name)
            if not _needed(plain, first_segment) or (markers / plain).exists():
                continue
            copy = Path(scratch) / name
            _link_or_copy(archive / name, copy)
            published = backup_storage.artifact_publish(
                copy, remote_name=f"{WAL_REMOTE_DIR}/{plain}"
            )
            published.unlink(missing_ok=True)
            (markers / plain).touch()
            result.shipped.append(plain)
            pitr.progress_say(progress, f"shipped {plain}")
    present = {_plain_name(name) for name in names}
    for marker in markers.iterdir():
        if marker.name not in present:
            marker.unlink(missing_ok=True)
    if result.shipped:
        logger.info(
            "Shipped %d WAL file(s) off-site, up to %s",
            len(result.shipped),
            result.shipped[-1],
        )


# --- off-site base backups ----------------------------------------------------------


def _remote_info(name: str) -> dict:
    with backup_storage.fetched(backup_storage.REMOTE_SCHEME + name) as item:
        return json.loads(item.path.read_text())


def remote_base_backups() -> list[pitr.BaseBackup]:
    """The base backups in the off-site store, oldest first. Their ``path`` is
    the remote folder (``base/<UTC time>``), not a local one."""
    found = []
    for name in backup_storage.remote_list(pitr.BASE_DIR_NAME):
        match = _REMOTE_INFO.fullmatch(name)
        if not match:
            continue
        try:
            info = _remote_info(name)
            found.append(
                pitr.BaseBackup.from_info(
                    Path(pitr.BASE_DIR_NAME) / match.group(1), info
                )
            )
        except (ValueError, KeyError) as exc:
            logger.warning("Ignoring off-site base backup %s: %s", name, exc)
    return sorted(found, key=lambda b: b.finished_at)


def wal_decrypt_needed(archive: Path, first_segment: str, into: Path) -> int:
    """Decrypt the archive's encrypted files needed from ``first_segment`` on
    into ``into`` (as ``<name>.gz``, for the recovery's restore_command);
    return how many."""
    into.mkdir(parents=True, exist_ok=True)
    count = 0
    for name in sorted(os.listdir(archive) if archive.is_dir() else []):
        plain = _plain_name(name)
        if (
            name.endswith(ENCRYPTED_SUFFIX)
            and _PLAIN_WAL_FILE.fullmatch(plain)
            and _needed(plain, first_segment)
        ):
            decrypt_file(archive / name, into / plain)
            count += 1
    return count


def _fetch_into(remote_name: str, directory: Path) -> Path:
    """Download (and decrypt) one object into ``directory`` under its plain name."""
    target = directory / _plain_name(remote_name)
    with backup_storage.fetched(backup_storage.REMOTE_SCHEME + remote_name) as item:
        # A temporary copy (downloaded, maybe decrypted): moved, not copied.
        shutil.move(item.path, target)
    target.chmod(0o600)
    return target


def base_backup_fetch(backup: pitr.BaseBackup, into: Path) -> Path:
    """Bring an off-site base backup's files into ``into`` (decrypted); return
    ``into``, laid out as a local base backup directory."""
    into.mkdir(parents=True, exist_ok=True)
    names = backup_storage.remote_list(backup.path.as_posix())
    if not any(_plain_name(n) == "base.tar.gz" for n in names):
        raise pitr.PitrError(
            f"Off-site base backup {backup.path.as_posix()} has no base.tar.gz."
        )
    for name in names:
        _fetch_into(name, into)
    return into


def wal_fetch(first_segment: str, into: Path, *, progress=None) -> int:
    """Bring every shipped WAL file needed from ``first_segment`` on into
    ``into`` as the archive holds them (``<name>.gz``); return how many."""
    into.mkdir(parents=True, exist_ok=True)
    count = 0
    for name in sorted(backup_storage.remote_list(WAL_REMOTE_DIR)):
        plain = _plain_name(name)
        if _PLAIN_WAL_FILE.fullmatch(plain) and _needed(plain, first_segment):
            _fetch_into(name, into)
            count += 1
            if count % 50 == 0:
                pitr.progress_say(progress, f"  fetched {count} WAL files …")
    return count


# --- retention ----------------------------------------------------------------------


@dataclass
class OffsitePruneResult:
    base_backups: list[str] = field(default_factory=list)
    wal_files: int = 0


def offsite_prune(*, keep: int | None = None, progress=None) -> OffsitePruneResult:
    """Keep the newest ``keep`` (``BASE_BACKUP_KEEP``) base backups off-site and
    the shipped WAL they need; delete the rest from the store."""
    result = OffsitePruneResult()
    if not backup_storage.storage_enabled():
        return result
    keep = keep or pitr.base_backups_keep()
    remote = remote_base_backups()
    doomed = remote[:-keep] if len(remote) > keep else []
    for backup in doomed:
        folder = backup.path.as_posix()
        # The record first: a half-deleted backup is never listed as one.
        info = folder + pitr.INFO_SUFFIX
        backup_storage.remote_delete([info, info + ENCRYPTED_SUFFIX])
        backup_storage.remote_delete(backup_storage.remote_list(folder))
        result.base_backups.append(folder)
    kept = remote[-keep:]
    if kept:
        first_segment = kept[0].start_wal
        old_wal = [
            name
            for name in backup_storage.remote_list(WAL_REMOTE_DIR)
            if _PLAIN_WAL_FILE.fullmatch(_plain_name(name))
            and not _needed(_plain_name(name), first_segment)
        ]
        backup_storage.remote_delete(old_wal)
        result.wal_files = len(old_wal)
    if result.base_backups or result.wal_files:
        pitr.progress_say(
            progress,
            f"off-site retention: removed {len(result.base_backups)} base backup(s) "
            f"and {result.wal_files} WAL file(s)",
        )
    return result
