"""Point-in-time recovery of the embedded server: base backups + archived WAL.

- The embedded server archives every WAL segment (gzipped, written atomically)
  into ``BACKUP_DIR/wal`` (core.embedded_postgres: ``archive_command``,
  ``archive_timeout`` 60 s, so at most about a minute of commits lives only on
  the server's disk).
- ``backup_db --base`` (:func:`base_backup_create`) takes a physical copy of the
  whole cluster with the server's own ``pg_basebackup`` (tar, gzip level 1, a
  SHA-256 backup manifest, ``-X stream`` so the copy is consistent on its own),
  checks it with ``pg_verifybackup``, encrypts each file with
  ``BACKUP_ENCRYPTION_KEY`` when it is set, and renames it from a temporary
  name to ``BACKUP_DIR/base/<UTC time>/`` only then. Retention keeps the newest
  ``BASE_BACKUP_KEEP`` (7) and removes the archived WAL older than the oldest
  kept one (``pg_archivecleanup``): the recoverable window runs from the end of
  the oldest kept base backup to now.
- ``restore_db --point-in-time T`` (:func:`pitr_restore`) recovers a private
  copy of the cluster to T (newest base backup finished before T + archived
  WAL), on a private socket, then copies the app's database from it into a new
  database on the running server (or, with ``--data-dir``, leaves the whole
  recovered cluster for replacing a lost primary). The private copy is always
  stopped and deleted. Encrypted base backups and WAL files (the archive is
  encrypted at rest by core.pitr_offsite.wal_ship) are decrypted into the
  private directory first; ``--from-storage`` takes both from the off-site
  store (core.pitr_offsite).

Only the embedded server: an external server (DATABASE_URL) archives with its
own ``archive_command`` or the provider's PITR (README "Backups, restore,
verification"); the app never pretends to archive what it cannot reach.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from django.conf import settings
from django.db import connections
from django.utils import timezone

from core import embedded_postgres
from core.backup_crypto import (
    ENCRYPTED_SUFFIX,
    decrypt_file,
    encrypt_file,
    encryption_enabled,
    is_encrypted,
)
from core.backups import (
    _USER_TABLES,
    BackupError,
    Target,
    _audit,
    _create_database,
    _database_exists,
    _drop_database,
    _first_error,
    backup_alias,
    backup_dir,
    database_fingerprint,
    pg_restore_args,
    target_for,
)
from core.models import AuditLog
from core.services import metric_record

if TYPE_CHECKING:
    from core.pitr_offsite import OffsitePruneResult

logger = logging.getLogger(__name__)

BASE_DIR_NAME = "base"
# Next to each backup directory, written last: the backup is complete only
# with it. Not inside: pg_verifybackup refuses any file its manifest lacks.
INFO_SUFFIX = ".pitr.json"
# restore_db --point-in-time latest: all the WAL there is.
LATEST = "latest"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
DEFAULT_KEEP = 7
STALE_PARTIAL_AGE = dt.timedelta(hours=12)
# How long to wait for the live server to archive the segment holding T.
ARCHIVE_WAIT_SECONDS = 120
# Replaying a day of WAL on a busy server can take long; a dead postmaster is
# noticed at once, so this only bounds a recovery that hangs.
RECOVERY_TIMEOUT_SECONDS = 6 * 3600
SUBPROCESS_TIMEOUT = 6 * 3600
# Files a base backup copies from the live data directory that must not travel
# to another cluster (PLATFORM.md: the wheel's handle list, its log, a lock).
_LIVE_ONLY = (".handle_pids.json", "log", "postmaster.pid", "postmaster.opts")
README_POINTER = (
    'see README "Backups, restore, verification" for what to configure on the '
    "server (archive_command + pg_basebackup) or at the provider (its "
    "point-in-time recovery)"
)

Progress = Callable[[str], None]


class PitrError(BackupError):
    """A base backup or point-in-time restore that did not succeed."""


def progress_say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)
    else:
        logger.info("%s", message)


# --- where things are -------------------------------------------------------------


def embedded_server(using: str | None = None) -> bool:
    """Whether the app's database is the embedded server (the jobs skip an
    external one, which archives with its own tools)."""
    return bool(connections[using or backup_alias()].settings_dict.get("PGDATA"))


def embedded_pgdata(using: str | None = None) -> Path:
    """The embedded server's data directory; refuses an external server."""
    if not embedded_server(using):
        raise PitrError(
            "Base backups and point-in-time restore work on the embedded server "
            "only; this app uses an external server (DATABASE_URL): "
            + README_POINTER
            + "."
        )
    pgdata = connections[using or backup_alias()].settings_dict["PGDATA"]
    return Path(pgdata).expanduser().resolve()


def wal_archive_dir(using: str | None = None) -> Path:
    """The directory the server archives WAL into (and restores read from).

    ``settings.WAL_ARCHIVE_DIR`` overrides where this module reads and prunes
    (tests prune a copy, never the live archive); the server's own
    ``archive_command`` follows the environment (core.embedded_postgres).
    """
    override = getattr(settings, "WAL_ARCHIVE_DIR", None)
    if override:
        return Path(override)
    return embedded_postgres.wal_archive_dir(embedded_pgdata(using))


def base_backups_dir() -> Path:
    path = backup_dir() / BASE_DIR_NAME
    path.mkdir(exist_ok=True)
    path.chmod(0o700)
    return path


def base_backups_keep() -> int:
    return max(1, int(getattr(settings, "BASE_BACKUP_KEEP", DEFAULT_KEEP)))


def _bin(name: str) -> str:
    return str(embedded_postgres.bin_path(name))


def _lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def wal_file_name(timeline: int, lsn: int, segment_size: int) -> str:
    """The WAL segment holding ``lsn`` (as ``pg_walfile_name``)."""
    segment = lsn // segment_size
    per_xlogid = 0x100000000 // segment_size
    return f"{timeline:08X}{segment // per_xlogid:08X}{segment % per_xlogid:08X}"


# --- base backups -----------------------------------------------------------------


def info_path(path: Path) -> Path:
    return path.with_name(path.name + INFO_SUFFIX)


@dataclass(frozen=True)
class BaseBackup:
    path: Path
    started_at: dt.datetime
    # The earliest time this backup can recover to: after pg_basebackup (and
    # so the end of the backup, the first consistent point) finished.
    finished_at: dt.datetime
    start_wal: str
    timeline: int
    bytes: int

    @classmethod
    def load(cls, path: Path) -> BaseBackup:
        return cls.from_info(path, json.loads(info_path(path).read_text()))

    @classmethod
    def from_info(cls, path: Path, info: dict) -> BaseBackup:
        return cls(
            path=path,
            started_at=dt.datetime.fromisoformat(info["started_at"]),
            finished_at=dt.datetime.fromisoformat(info["finished_at"]),
            start_wal=info["start_wal"],
            timeline=info["timeline"],
            bytes=info["bytes"],
        )


def base_backups(directory: Path | None = None) -> list[BaseBackup]:
    """Finished base backups, oldest first (a directory without its info file
    or with a temporary name is not one)."""
    directory = directory or base_backups_dir()
    found = []
    for path in directory.iterdir() if directory.is_dir() else []:
        if re.fullmatch(r"\d{8}T\d{6}Z", path.name) and info_path(path).is_file():
            try:
                found.append(BaseBackup.load(path))
            except (ValueError, KeyError) as exc:
                logger.warning("Ignoring base backup %s: %s", path, exc)
    return sorted(found, key=lambda b: b.finished_at)


@dataclass
class BaseBackupResult:
    backup: BaseBackup
    seconds: float
    verified: bool
    pruned: list[Path] = field(default_factory=list)
    wal_pruned: int = 0
    published: bool = False
    # When the off-site store was pruned too.
    offsite_pruned: OffsitePruneResult | None = None


def _run(args: list[str], *, env: dict | None = None, user: str | None = None):
    logger.info("Running %s", " ".join(args))
    return subprocess.run(  # noqa: S603
        args,
        env=env,
        user=user,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )


def _fsync_tree(path: Path) -> None:
    for item in [*path.iterdir(), path]:
        fd = os.open(item, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def base_backup_create(
    *,
    using: str | None = None,
    prune: bool = True,
    progress: Progress | None = None,
) -> BaseBackupResult:
    """``pg_basebackup`` the embedded cluster into ``BACKUP_DIR/base/<UTC time>``.

    Verified with ``pg_verifybackup`` before the rename; a backup that fails
    leaves nothing with a final name and prunes nothing.
    """
    embedded_pgdata(using)
    target = target_for(using)
    directory = base_backups_dir()
    started_at = timezone.now()
    stamp = started_at.astimezone(dt.UTC).strftime(TIMESTAMP_FORMAT)
    final = directory / stamp
    if final.exists():
        raise PitrError(f"{final} already exists; not overwriting it.")
    partial = directory / f".{stamp}.{secrets.token_hex(4)}.partial"
    started = time.perf_counter()
    try:
        with target.connect() as conn:
            segment_size = int(
                conn.execute(
                    "SELECT setting::bigint FROM pg_settings "
                    "WHERE name = 'wal_segment_size'"
                ).fetchone()[0]
            )
            archive_mode = conn.execute("SHOW archive_mode").fetchone()[0]
        if archive_mode == "off":
            raise PitrError(
                "WAL archiving is off on the embedded server (EMBEDDED_PG_ARCHIVE="
                "off?): a base backup alone cannot recover to a point in time."
            )
        progress_say(progress, f"pg_basebackup into {partial.name} …")
        result = _run(
            [
                _bin("pg_basebackup"),
                f"--pgdata={partial}",
                "--format=tar",
                "--compress=gzip:1",
                # stream, not fetch: fetch reads the WAL from pg_wal at the end,
                # and under heavy writes the server had already recycled it
                # ("requested WAL segment … has already been removed", seen
                # here); stream holds it with a temporary replication slot.
                "--wal-method=stream",
                "--checkpoint=fast",
                "--manifest-checksums=SHA256",
                f"--label=launchpad base {stamp}",
                "--no-password",
            ],
            env=target.env(),
        )
        if result.returncode != 0:
            raise PitrError(f"pg_basebackup failed: {_first_error(result.stderr)}")
        finished_at = timezone.now()
        progress_say(progress, "pg_verifybackup …")
        verified = _run([_bin("pg_verifybackup"), "--no-parse-wal", str(partial)])
        if verified.returncode != 0:
            raise PitrError(
                "pg_verifybackup refused the new base backup: "
                + _first_error(verified.stderr or verified.stdout)
            )
        manifest = json.loads((partial / "backup_manifest").read_text())
        wal_range = manifest["WAL-Ranges"][0]
        timeline = int(wal_range["Timeline"])
        start_wal = wal_file_name(timeline, _lsn(wal_range["Start-LSN"]), segment_size)
        if encryption_enabled():
            # At rest like the dumps (BACKUP_ENCRYPTION_KEY); checked above in
            # plaintext, and age authenticates what it decrypts.
            progress_say(progress, "encrypting …")
            for item in sorted(partial.iterdir()):
                encrypt_file(item)
        size = sum(p.stat().st_size for p in partial.iterdir())
        info_partial = directory / f"{partial.name}{INFO_SUFFIX}"
        info_partial.write_text(
            json.dumps(
                {
                    "started_at": started_at.isoformat(),
                    "finished_at": finished_at.isoformat(),
                    "start_lsn": wal_range["Start-LSN"],
                    "end_lsn": wal_range["End-LSN"],
                    "start_wal": start_wal,
                    "timeline": timeline,
                    "segment_size": segment_size,
                    "bytes": size,
                    "server_major": target.server_major,
                },
                indent=1,
            )
        )
        for item in partial.iterdir():
            item.chmod(0o600)
        partial.chmod(0o700)
        info_partial.chmod(0o600)
        _fsync_tree(partial)
        os.replace(partial, final)
        os.replace(info_partial, info_path(final))
        _fsync_tree(directory)
    except (PitrError, OSError, psycopg.Error, subprocess.SubprocessError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        (directory / f"{partial.name}{INFO_SUFFIX}").unlink(missing_ok=True)
        _audit(
            AuditLog.Action.BACKUP,
            ok=False,
            kind="base",
            file=f"base/{stamp}",
            error=str(exc)[:500],
        )
        if isinstance(exc, PitrError):
            raise
        raise PitrError(f"Base backup failed: {exc}") from exc

    backup = BaseBackup.load(final)
    outcome = BaseBackupResult(
        backup=backup, seconds=time.perf_counter() - started, verified=True
    )
    outcome.published = _publish(final, progress)
    if prune:
        outcome.pruned, outcome.wal_pruned = base_backups_prune(
            using=using, progress=progress
        )
        if outcome.published:
            from core import pitr_offsite

            outcome.offsite_pruned = pitr_offsite.offsite_prune(progress=progress)
    _audit(
        AuditLog.Action.BACKUP,
        ok=True,
        kind="base",
        file=f"base/{stamp}",
        bytes=backup.bytes,
        seconds=round(outcome.seconds, 2),
        verified=True,
        pruned=[p.name for p in outcome.pruned],
        wal_pruned=outcome.wal_pruned,
    )
    return outcome


def _publish(path: Path, progress: Progress | None) -> bool:
    """Upload the backup's files when off-site copies are set up (encrypted
    on the way when they are not already, with the info file)."""
    from core import backup_storage

    if not backup_storage.storage_enabled():
        return False
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        for item in [*sorted(path.iterdir()), info_path(path)]:
            if not is_encrypted(item):
                # artifact_publish encrypts a plaintext file in place and
                # deletes it: give it a copy (an encrypted one goes as it is).
                shutil.copy2(item, Path(scratch) / item.name)
            progress_say(progress, f"publishing base/{path.name}/{item.name} …")
            backup_storage.artifact_publish(
                item if is_encrypted(item) else Path(scratch) / item.name,
                remote_name=f"{BASE_DIR_NAME}/{item.relative_to(path.parent)}",
            )
    return True


def base_backups_prune(
    *, using: str | None = None, keep: int | None = None, progress=None
) -> tuple[list[Path], int]:
    """Keep the newest ``keep`` base backups; remove archived WAL older than
    the oldest one kept. Returns (deleted backups, number of WAL files removed)."""
    keep = keep or base_backups_keep()
    directory = base_backups_dir()
    found = base_backups(directory)
    deleted = []
    for backup in found[:-keep] if len(found) > keep else []:
        # The record first: a half-deleted backup is never listed as one.
        info_path(backup.path).unlink()
        shutil.rmtree(backup.path, ignore_errors=True)
        deleted.append(backup.path)
    cutoff = time.time() - STALE_PARTIAL_AGE.total_seconds()
    for partial in directory.glob(".*.partial*"):
        if partial.stat().st_mtime < cutoff:
            if partial.is_dir():
                shutil.rmtree(partial, ignore_errors=True)
            else:
                partial.unlink(missing_ok=True)
    kept = found[-keep:]
    wal_removed = 0
    archive = wal_archive_dir(using)
    if kept and archive.is_dir():
        before = len(list(archive.iterdir()))
        # -x .gz: without it pg_archivecleanup matches no gzipped file and
        # silently removes nothing (PLATFORM.md); once more for the files
        # encrypted at rest.
        for extension in (".gz", ".gz" + ENCRYPTED_SUFFIX):
            result = _run(
                [
                    _bin("pg_archivecleanup"),
                    "-d",
                    "-b",
                    "-x",
                    extension,
                    str(archive),
                    kept[0].start_wal,
                ]
            )
            if result.returncode != 0:
                raise PitrError(
                    f"pg_archivecleanup failed: {_first_error(result.stderr)}"
                )
        wal_removed = before - len(list(archive.iterdir()))
    if deleted or wal_removed:
        progress_say(
            progress,
            f"retention: removed {len(deleted)} base backup(s) and {wal_removed} "
            f"archived WAL file(s) older than {kept[0].start_wal}",
        )
    return deleted, wal_removed


# --- point-in-time restore ----------------------------------------------------------


def parse_time(text: str) -> dt.datetime:
    """``2026-11-27T14:03:00Z`` (or any ISO 8601; naive means UTC)."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise PitrError(
            f"Not a time: {text!r} (use ISO 8601, e.g. 2026-11-27T14:03:00Z)."
        ) from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _fmt(value: dt.datetime | None) -> str:
    if value is None:
        return "?"
    text = value.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def recoverable_window(
    backups: list[BaseBackup] | None = None,
) -> tuple[dt.datetime, dt.datetime] | None:
    """(end of the oldest kept base backup, now), or None without a backup."""
    backups = base_backups() if backups is None else backups
    if not backups:
        return None
    return backups[0].finished_at, timezone.now()


@dataclass
class PitrResult:
    target_time: dt.datetime
    recovered_to: dt.datetime | None
    base_backup: str
    database: str | None
    data_dir: Path | None
    seconds: float
    steps: list[str] = field(default_factory=list)
    # Recovered to the end of the WAL (--point-in-time latest), not to a time.
    latest: bool = False


def _archive_current_wal(
    target: Target, archive: Path, progress: Progress | None
) -> str:
    """Close the live server's current WAL segment and wait until it is archived,
    so the WAL up to now (and so up to T) is in the archive. The transaction id
    makes sure a commit exists after T: recovery to T stops at the first commit
    after it, and fails when there is none."""
    with target.connect(autocommit=True) as conn:
        if conn.execute("SHOW archive_mode").fetchone()[0] == "off":
            raise PitrError(
                "WAL archiving is off on the live server (EMBEDDED_PG_ARCHIVE=off?): "
                "the WAL after the base backup is not in the archive."
            )
        conn.execute("SELECT pg_current_xact_id()")
        segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
        progress_say(progress, f"waiting for the live server to archive {segment} …")
        deadline = time.monotonic() + ARCHIVE_WAIT_SECONDS
        # .age: the wal_ship job may already have encrypted it at rest.
        while not any(
            (archive / f"{segment}.gz{suffix}").exists()
            for suffix in ("", ENCRYPTED_SUFFIX)
        ):
            if time.monotonic() > deadline:
                failed = conn.execute(
                    "SELECT last_failed_wal, last_failed_time FROM pg_stat_archiver"
                ).fetchone()
                raise PitrError(
                    f"WAL segment {segment} was not archived into {archive} within "
                    f"{ARCHIVE_WAIT_SECONDS} s (last failure: {failed[0] or 'none'} "
                    f"at {failed[1] or '-'}): check archive_command in the server log."
                )
            time.sleep(0.1)
    return segment


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _give_to_server_user(path: Path, mode: int = 0o700) -> None:
    user = embedded_postgres.system_user()
    if user is not None:
        shutil.chown(path, user=user, group=user)
    path.chmod(mode)


def _server_user_kwargs() -> dict:
    # user= alone keeps group root, and a 0701 root-owned parent (pytest's
    # tmp dirs) then denies the group class: switch the groups too.
    user = embedded_postgres.system_user()
    return {"user": user, "group": user, "extra_groups": []} if user else {}


def _extract(archive_file: Path, into: Path) -> None:
    # Extracted by tar running as the server's user, fed by this process: as
    # root, tar would map owner names and a system "postgres" user would end
    # up owning the files (PLATFORM.md).
    with open(archive_file, "rb") as handle:
        result = subprocess.run(  # noqa: S603
            ["/bin/tar", "-xzf", "-", "-C", str(into)],
            stdin=handle,
            **_server_user_kwargs(),
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
            check=False,
        )
    if result.returncode != 0:
        raise PitrError(f"Extracting {archive_file.name} failed: {result.stderr[:300]}")


def _pg_ctl(data: Path, *args: str) -> int:
    # A file, not a pipe: the postmaster inherits pg_ctl's output.
    with tempfile.TemporaryFile() as out:
        result = subprocess.run(  # noqa: S603
            [_bin("pg_ctl"), "-D", str(data), *args],
            **_server_user_kwargs(),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
        )
        if result.returncode != 0 and args[-1] != "status":
            out.seek(0)
            logger.warning(
                "pg_ctl %s: %s", " ".join(args), out.read().decode(errors="replace")
            )
    return result.returncode


def _log_tail(log: Path, lines: int = 8) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    important = [line for line in text if "FATAL" in line or "PANIC" in line]
    return " | ".join((important or text)[-lines:])


def _wait_for_promotion(
    params: dict, data: Path, log: Path, progress: Progress | None
) -> dt.datetime | None:
    """Poll the private server until recovery has ended and it is promoted.

    ``pg_ctl -w start`` is not trusted: it can report success before recovery
    fails (PLATFORM.md). A postmaster that exits is noticed at once.
    """
    deadline = time.monotonic() + RECOVERY_TIMEOUT_SECONDS
    last_report = 0.0
    # pg_ctl start -W returns before the postmaster writes its pid file.
    not_running = 0
    while True:
        if time.monotonic() > deadline:
            raise PitrError("Recovery did not finish in time: " + _log_tail(log))
        not_running = not_running + 1 if _pg_ctl(data, "status") != 0 else 0
        if not_running >= 5:
            raise PitrError("The recovering server stopped: " + _log_tail(log))
        try:
            with psycopg.connect(**params, connect_timeout=2, autocommit=True) as conn:
                in_recovery, replayed_at, lsn = conn.execute(
                    "SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp(),"
                    " pg_last_wal_replay_lsn()"
                ).fetchone()
                if not in_recovery:
                    return replayed_at
                if time.monotonic() - last_report > 2:
                    last_report = time.monotonic()
                    progress_say(
                        progress,
                        f"  replaying WAL: at {lsn}, last commit {_fmt(replayed_at)}",
                    )
        except psycopg.OperationalError:
            pass  # not accepting connections yet (before consistency)
        time.sleep(0.2)


def _recovered_time_from_log(log: Path) -> dt.datetime | None:
    """The last transaction recovery applied ("last completed transaction was
    at log time …"); pg_last_xact_replay_timestamp() can name the first one it
    skipped instead (the record where it stopped)."""
    with contextlib.suppress(OSError, ValueError):
        found = re.findall(
            r"last completed transaction was at log time "
            r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?[+-]\d\d(?::?\d\d)?)",
            log.read_text(errors="replace"),
        )
        if found:
            return dt.datetime.fromisoformat(found[-1])
    return None


def _copy_database(private: Target, live: Target, source_db: str, dbname: str) -> None:
    """``pg_dump -Fc -Z0 | pg_restore`` from the private copy into ``dbname``."""
    dump = subprocess.Popen(  # noqa: S603
        [
            str(embedded_postgres.bin_path("pg_dump")),
            "--format=custom",
            "--compress=0",
            "--no-password",
            f"--dbname={source_db}",
        ],
        env=private.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        restore = subprocess.run(  # noqa: S603
            pg_restore_args(embedded_postgres.bin_path("pg_restore"), dbname),
            stdin=dump.stdout,
            env=live.env(),
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
            check=False,
        )
    finally:
        dump.stdout.close()
        dump_stderr = dump.stderr.read().decode(errors="replace")
        dump.wait(timeout=SUBPROCESS_TIMEOUT)
    if dump.returncode != 0:
        raise PitrError(f"pg_dump of the recovered copy failed: {dump_stderr[:300]}")
    if restore.returncode != 0:
        raise PitrError(f"pg_restore failed: {_first_error(restore.stderr)}")


def pitr_restore(
    *,
    target_time: dt.datetime | str | None,
    confirm: bool = False,
    database_name: str | None = None,
    data_dir: Path | None = None,
    from_storage: bool = False,
    using: str | None = None,
    progress: Progress | None = None,
) -> PitrResult:
    """Recover the cluster as it was at ``target_time``; see the module doc.

    Exactly one of ``database_name`` (a new database on the running server
    holding the app's database as of T) and ``data_dir`` (a whole recovered,
    promoted and stopped cluster, for replacing a lost primary).

    ``target_time`` ``None`` or ``"latest"``: replay all the WAL there is.
    ``from_storage``: the base backup and the WAL come from the off-site store
    (core.pitr_offsite), for when this machine's copies are lost; the live
    server's WAL is then not this cluster's and is not waited for.
    """
    latest = target_time is None or (
        isinstance(target_time, str) and target_time.strip().lower() == LATEST
    )
    if latest:
        target_time = timezone.now()
    elif isinstance(target_time, str):
        target_time = parse_time(target_time)
    target_time = target_time.astimezone(dt.UTC)
    if not confirm:
        raise PitrError("A point-in-time restore writes data: run again with --yes.")
    if (database_name is None) == (data_dir is None):
        raise PitrError("Give exactly one of --database-name NAME and --data-dir DIR.")
    embedded_pgdata(using)
    live = target_for(using)
    # Here, not at the top: both import this module.
    from core import backup_storage, pitr_offsite

    if from_storage:
        if not backup_storage.storage_enabled():
            raise PitrError("--from-storage needs BACKUP_STORAGE_URL.")
        # Not this machine's: the one given to the restore_command is fetched.
        archive = None
        backups = pitr_offsite.remote_base_backups()
    else:
        backups = base_backups()
    window = recoverable_window(backups)
    if window is None:
        raise PitrError(
            "No base backup in the off-site store (BACKUP_STORAGE_URL), so "
            "nothing to recover from."
            if from_storage
            else "No base backup yet, so nothing to recover from: run "
            "`manage.py backup_db --base` (nightly by the job queue)."
        )
    earliest, now = window
    window_text = f"recoverable window: {_fmt(earliest)} to {_fmt(now)} (UTC)"
    if target_time > now:
        raise PitrError(f"{_fmt(target_time)} is in the future; {window_text}.")
    if target_time < earliest:
        raise PitrError(
            f"{_fmt(target_time)} is before the first kept base backup ended; "
            f"{window_text}."
        )
    if database_name and _database_exists(live, database_name):
        raise PitrError(f"Database {database_name} already exists: give a new name.")
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser().resolve()
        if data_dir.exists() and any(data_dir.iterdir()):
            raise PitrError(f"{data_dir} is not empty.")
    base = [b for b in backups if b.finished_at <= target_time][-1]
    base_name = ("s3:" if from_storage else "") + f"base/{base.path.name}"
    started = time.perf_counter()
    steps: list[str] = []

    def step(message: str) -> None:
        steps.append(message)
        progress_say(progress, message)

    if not from_storage:
        archive = wal_archive_dir(using)
        # Waited for where the server writes (a test reads a copy: archive).
        segment = _archive_current_wal(
            live, embedded_postgres.wal_archive_dir(embedded_pgdata(using)), progress
        )
        step(f"archived the live server's WAL up to {segment}")

    workdir = Path(tempfile.mkdtemp(prefix="pitr-"))
    _give_to_server_user(workdir)
    data = data_dir or workdir / "data"
    created_data_dir = data_dir is not None and not data_dir.exists()
    data.mkdir(parents=True, exist_ok=True)
    if data_dir is not None and embedded_postgres.system_user():
        # The server's user must reach DIR, as the wheel does for its pgdata.
        for parent in data.parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)
    _give_to_server_user(data)
    sock = workdir / "sock"
    sock.mkdir()
    _give_to_server_user(sock)
    log = workdir / "postgres.log"
    port = _free_port()
    started_server = False
    recovered_to = None
    ok = False
    try:
        base_files = base.path
        # WAL for the restore_command: fetched from the store, or the
        # archive's files encrypted at rest, decrypted into the private copy.
        replay = workdir / "wal"
        if from_storage:
            step(f"fetching base backup {base_name} …")
            base_files = pitr_offsite.base_backup_fetch(base, workdir / "base")
            fetched = pitr_offsite.wal_fetch(base.start_wal, replay, progress=progress)
            archives = [replay]
            step(f"fetched {fetched} WAL file(s) from {base.start_wal} on")
        else:
            if any(p.name.endswith(ENCRYPTED_SUFFIX) for p in base.path.iterdir()):
                step(f"decrypting base backup {base.path.name} …")
                base_files = workdir / "base"
                base_files.mkdir()
                for item in base.path.iterdir():
                    decrypt_file(
                        item, base_files / item.name.removesuffix(ENCRYPTED_SUFFIX)
                    )
            decrypted = pitr_offsite.wal_decrypt_needed(archive, base.start_wal, replay)
            archives = [archive, replay]
            if decrypted:
                step(f"decrypted {decrypted} archived WAL file(s)")
        _give_to_server_user(replay)
        for item in replay.iterdir():
            _give_to_server_user(item, 0o600)
        step(f"extracting base backup {base.path.name} into {data}")
        _extract(base_files / "base.tar.gz", data)
        if (base_files / "pg_wal.tar.gz").exists():
            _extract(base_files / "pg_wal.tar.gz", data / "pg_wal")
        if base_files != base.path:
            shutil.rmtree(base_files)
        for name in _LIVE_ONLY:
            item = data / name
            if item.is_dir():
                shutil.rmtree(item)
            else:
                item.unlink(missing_ok=True)
        for lock in data.glob(".s.PGSQL.*"):
            lock.unlink()
        auto_conf = data / "postgresql.auto.conf"
        original_conf = auto_conf.read_text()
        # archive_mode off: the copy inherits the live archive_command, and a
        # promoted copy would push a new timeline into the live archive.
        recovery_conf = {
            "restore_command": embedded_postgres.restore_command(*archives),
            **(
                {}
                if latest
                else {"recovery_target_time": target_time.isoformat(sep=" ")}
            ),
            "recovery_target_action": "promote",
            "archive_mode": "off",
            "listen_addresses": "",
            "unix_socket_directories": str(sock),
            "port": str(port),
            "shared_buffers": "256MB",
        }
        with open(auto_conf, "a") as handle:
            handle.write("\n# point-in-time recovery (core.pitr)\n")
            for name, value in recovery_conf.items():
                escaped = value.replace("'", "''")
                handle.write(f"{name} = '{escaped}'\n")
        signal = data / "recovery.signal"
        signal.touch()
        _give_to_server_user(signal, 0o600)
        step(
            "recovering to the end of the WAL on a private socket …"
            if latest
            else f"recovering to {_fmt(target_time)} on a private socket …"
        )
        log.touch()
        _give_to_server_user(log, 0o600)
        started_server = True
        if _pg_ctl(data, "-l", str(log), "-W", "start") != 0:
            raise PitrError("The recovery server did not start: " + _log_tail(log))
        params = {
            "host": str(sock),
            "port": port,
            "user": embedded_postgres.SUPERUSER,
            "dbname": embedded_postgres.DEFAULT_DATABASE,
        }
        try:
            replayed = _wait_for_promotion(params, data, log, progress)
        except PitrError as exc:
            if "before configured recovery target" in str(exc):
                raise PitrError(
                    f"The archived WAL ends before {_fmt(target_time)}"
                    + (" (what was shipped off-site so far)" if from_storage else "")
                    + ": give an earlier time, or `latest` for all of it."
                ) from exc
            raise
        recovered_to = _recovered_time_from_log(log) or (
            replayed if replayed and (latest or replayed <= target_time) else None
        )
        step(f"recovered and promoted; last transaction at {_fmt(recovered_to)}")
        if database_name:
            private = Target({**params, "dbname": live.dbname}, live.server_major, True)
            _create_database(live, database_name)
            try:
                step(f"copying database {live.dbname} into {database_name} …")
                _copy_database(private, live, live.dbname, database_name)
            except Exception:
                _drop_database(live, database_name)
                raise
            step(f"database {database_name} holds {live.dbname} as of T")
        else:
            _pg_ctl(data, "-m", "fast", "-w", "stop")
            started_server = False
            # Back to the live server's settings: the new primary archives
            # again (a new timeline) and listens where it is told.
            auto_conf.write_text(original_conf)
            step(
                f"left the recovered cluster (stopped) in {data}: start it with "
                f"EMBEDDED_PGDATA={data}"
            )
        ok = True
    except (OSError, psycopg.Error, subprocess.SubprocessError) as exc:
        raise PitrError(f"Point-in-time restore failed: {exc}") from exc
    finally:
        if started_server:
            _pg_ctl(data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(workdir, ignore_errors=True)
        if data_dir is not None and not ok:
            if created_data_dir:
                shutil.rmtree(data_dir, ignore_errors=True)
            else:
                for item in data_dir.iterdir():
                    if item.is_dir():
                        shutil.rmtree(item, ignore_errors=True)
                    else:
                        item.unlink(missing_ok=True)
        seconds = time.perf_counter() - started
        _audit(
            AuditLog.Action.RESTORE,
            ok=ok,
            kind="point_in_time",
            target_time="latest" if latest else _fmt(target_time),
            recovered_to=_fmt(recovered_to) if recovered_to else None,
            base_backup=base_name,
            database=database_name,
            data_dir=str(data_dir) if data_dir else None,
            seconds=round(seconds, 2),
        )
    return PitrResult(
        target_time=target_time,
        recovered_to=recovered_to,
        base_backup=base.path.name,
        database=database_name,
        data_dir=data_dir,
        seconds=seconds,
        steps=steps,
        latest=latest,
    )


# --- restore drill ------------------------------------------------------------------


@dataclass
class PitrVerifyResult:
    ok: bool
    source: str  # "local" or "storage"
    recovered_to: dt.datetime | None = None
    tables: int = 0
    rows: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def pitr_verify(
    *,
    from_storage: bool = False,
    using: str | None = None,
    progress: Progress | None = None,
) -> PitrVerifyResult:
    """The restore drill (``verify_backup --point-in-time``, weekly by the job
    queue): recover the app's database to the end of the WAL into a scratch
    database, exactly as a restore would (from the off-site store with
    ``from_storage``), read every row of it, compare its tables and applied
    migrations with the live database, and drop it. The live database moves
    on meanwhile, so rows are not compared one by one; what is proven is that
    the chain of base backup and WAL restores, and how long that takes (the
    ``backup.pitr_verify_seconds`` metric: the restore time a disaster would
    see)."""
    started = time.perf_counter()
    source = "storage" if from_storage else "local"
    live = target_for(using)
    scratch = f"pitr_verify_{os.getpid()}_{secrets.token_hex(4)}"
    result = PitrVerifyResult(ok=False, source=source)
    try:
        restored = pitr_restore(
            target_time=LATEST,
            confirm=True,
            database_name=scratch,
            from_storage=from_storage,
            using=using,
            progress=progress,
        )
        result.recovered_to = restored.recovered_to
        progress_say(progress, f"reading every row of {scratch} …")
        with live.connect(scratch) as conn:
            actual = database_fingerprint(conn)
            migrations = conn.execute(
                "SELECT app, name FROM django_migrations ORDER BY app, name"
            ).fetchall()
        with live.connect() as conn:
            expected_tables = {
                f"{schema}.{name}"
                for schema, name in conn.execute(_USER_TABLES).fetchall()
            }
            expected_migrations = conn.execute(
                "SELECT app, name FROM django_migrations ORDER BY app, name"
            ).fetchall()
    except (BackupError, OSError, psycopg.Error) as exc:
        result.problems.append(str(exc))
    else:
        tables = set(actual["tables"])
        if missing := sorted(expected_tables - tables):
            result.problems.append(f"tables missing from the restore: {missing}")
        if extra := sorted(tables - expected_tables):
            result.problems.append(f"tables only in the restore: {extra}")
        if migrations != expected_migrations:
            result.problems.append(
                f"applied migrations differ: {len(migrations)} restored, "
                f"{len(expected_migrations)} live"
            )
        result.tables = len(tables)
        result.rows = sum(t["rows"] for t in actual["tables"].values())
    finally:
        _drop_database(live, scratch)
    result.ok = not result.problems
    result.seconds = time.perf_counter() - started
    _audit(
        AuditLog.Action.RESTORE,
        ok=result.ok,
        kind="pitr_verify",
        source=source,
        seconds=round(result.seconds, 2),
        problems=result.problems[:5],
    )
    if result.ok:
        with contextlib.suppress(Exception):
            metric_record(
                metric="backup.pitr_verify_seconds",
                value=round(result.seconds, 2),
                tags={"source": source},
            )
    return result
