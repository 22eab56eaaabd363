"""WAL archiving that fails is reported: /healthz's full report and
``db_health`` turn degraded with a warning, since point-in-time restore stops
at the last archived segment and pg_wal grows meanwhile.

The failing server is a real one of its own (tests/pg_servers.py) whose
archive command is ``/bin/false``; the shared server is never touched.
"""

import subprocess
import sys
import time

import pytest

from core.health import health_report
from tests.pg_servers import PROJECT_ROOT, primary_server, site_env


@pytest.mark.django_db
def test_a_working_archiver_is_reported_ok():
    archiver = health_report()["database"].get("archiver")
    # The embedded test server archives (EMBEDDED_PG_ARCHIVE is on by default).
    assert archiver is not None and archiver["failing"] is False


@pytest.mark.slow
def test_a_failing_archiver_degrades_db_health():
    with primary_server("archiver-") as server:
        with server.connect() as conn:
            conn.execute("ALTER SYSTEM SET archive_mode = 'on'")
            conn.execute("ALTER SYSTEM SET archive_command = '/bin/false'")
        server.restart()
        with server.connect() as conn:
            conn.execute("CREATE TABLE filler AS SELECT generate_series(1, 1000) AS n")
            conn.execute("SELECT pg_switch_wal()")
        deadline = time.monotonic() + 30
        while server.query("SELECT failed_count FROM pg_stat_archiver") == [(0,)]:
            assert time.monotonic() < deadline, "the archiver never tried"
            time.sleep(0.2)

        result = subprocess.run(
            [sys.executable, "manage.py", "db_health", "--no-record"],
            cwd=PROJECT_ROOT,
            env=site_env(DATABASE_URL=server.url()),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert result.returncode != 0, result.stdout + result.stderr
    assert "WAL archiving: FAILING, nothing archived yet" in result.stdout
    assert "Warning: WAL archiving is failing (last failure: 0000000100" in (
        result.stdout
    )
