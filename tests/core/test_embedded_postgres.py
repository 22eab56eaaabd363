import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from core.embedded_postgres import ensure_server, stop_server

PROJECT_ROOT = Path(__file__).resolve().parents[2]

START_SCRIPT = """
import json, sys
from core.embedded_postgres import ensure_server
server = ensure_server(sys.argv[1])
print(json.dumps({"socket_dir": str(server.socket_dir)}))
"""


def postmasters_for(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(attrs=["name", "cmdline", "ppid"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and str(pgdata) in cmdline:
            found.append(proc)
    return found


@pytest.fixture
def pgdata():
    # Not under pytest's tmp_path: concurrent pytest runs prune each other's
    # base temp dirs, which would pull a data directory from under a server.
    root = Path(tempfile.mkdtemp(prefix="embedded-pg-test-"))
    path = root / "pg"
    try:
        yield path
    finally:
        stop_server(path)
        shutil.rmtree(root, ignore_errors=True)


def start_concurrently(pgdata: Path, count: int) -> list[dict]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", START_SCRIPT, str(pgdata)],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.mark.slow
def test_concurrent_starters_share_one_server(pgdata):
    results = start_concurrently(pgdata, count=4)

    assert len({r["socket_dir"] for r in results}) == 1
    assert len(postmasters_for(pgdata)) == 1
    with psycopg.connect(
        host=results[0]["socket_dir"], user="postgres", dbname="postgres"
    ) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.slow
def test_stale_postmaster_pid_after_crash_is_recovered(pgdata):
    ensure_server(pgdata)
    [postmaster] = postmasters_for(pgdata)
    postmaster.send_signal(signal.SIGKILL)
    postmaster.wait(10)
    deadline = time.monotonic() + 10
    while postmasters_for(pgdata) and time.monotonic() < deadline:
        time.sleep(0.1)
    # The crash left postmaster.pid behind; make it name a live, unrelated process
    # (this test's own pid), the hardest case for a pid-based liveness check.
    pid_file = pgdata / "postmaster.pid"
    lines = pid_file.read_text().splitlines()
    lines[0] = str(os.getpid())
    pid_file.write_text("\n".join(lines) + "\n")

    server = ensure_server(pgdata)

    with psycopg.connect(
        host=str(server.socket_dir), user="postgres", dbname="postgres"
    ) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)
    assert len(postmasters_for(pgdata)) == 1


@pytest.mark.slow
def test_server_runs_with_project_settings_applied_once(pgdata, monkeypatch):
    monkeypatch.setenv("EMBEDDED_PG_SHARED_BUFFERS", "256MB")
    server = ensure_server(pgdata)
    [postmaster] = postmasters_for(pgdata)

    with psycopg.connect(
        host=str(server.socket_dir), user="postgres", dbname="postgres"
    ) as c:
        assert (
            "pg_stat_statements"
            in c.execute("SHOW shared_preload_libraries").fetchone()[0]
        )
        assert c.execute("SHOW shared_buffers").fetchone()[0] == "256MB"
        assert c.execute("SHOW max_wal_size").fetchone()[0] == "4GB"

    ensure_server(pgdata)
    # Nothing changed: the second caller attaches without a restart.
    assert [p.pid for p in postmasters_for(pgdata)] == [postmaster.pid]
