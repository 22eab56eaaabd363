"""Replica lag and failover, against a real primary and a real streaming standby.

The setup (as in test_replica.py) starts its own primary, migrates it, makes a
standby with ``pg_basebackup -R -X stream`` and runs the site under gunicorn
with DATABASE_URL / DATABASE_READ_URL pointing at the two, a 1-second
REPLICA_MAX_LAG_SECONDS and a lag check every 0.2 s. Then:

- the lag is reported (/healthz's detailed report, ``db_health``); a standby
  whose replay is paused while the primary writes falls behind, reads go to the
  primary, and come back once replay resumes;
- failover, as docs/runbook.md tells operators: the primary dies (reads keep
  coming from the standby, writes fail), the standby is promoted
  (``pg_promote()``, what ``pg_ctl promote`` does), DATABASE_URL is repointed
  and the web process restarted, and the app writes again.

The failover test must run last: it leaves no primary behind.
"""

import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from tests.pg_servers import (
    PROJECT_ROOT,
    gunicorn_site,
    manage,
    primary_server,
    replica_of,
    site_env,
)

pytestmark = pytest.mark.slow

DBNAME = "app"
TOKEN = "failover-health-token"


@pytest.fixture(scope="module")
def servers():
    with primary_server("opsdb-fo-") as primary:
        primary.create_database(DBNAME)
        manage("migrate", "--noinput", env=site_env(DATABASE_URL=primary.url(DBNAME)))
        with replica_of(primary) as standby:
            yield primary, standby


def app_env(primary, standby=None):
    return site_env(
        DATABASE_URL=primary.url(DBNAME),
        DATABASE_READ_URL=standby.url(DBNAME) if standby else "",
        REPLICA_RETRY_SECONDS="1",
        REPLICA_MAX_LAG_SECONDS="1",
        REPLICA_LAG_CHECK_SECONDS="0.2",
        HEALTHZ_TOKEN=TOKEN,
    )


@pytest.fixture(scope="module")
def site(servers):
    primary, standby = servers
    with gunicorn_site(app_env(primary, standby), workers=1) as site:
        yield site


def served_by(site, server) -> bool:
    return site.get("/_probe/read").json()["server"]["port"] == server.port


def wait_until(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def health(site) -> dict:
    response = site.get("/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text[:500]
    return response.json()


def db_health(env, *, record: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "manage.py",
            "db_health",
            *([] if record else ["--no-record"]),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_lag_is_reported_and_reads_leave_a_stalled_replica(site, servers):
    primary, standby = servers
    # A replayed transaction: its commit time is what the lag is measured from.
    email = f"first-{time.monotonic_ns()}@example.com"
    assert site.post("/_probe/write", data={"email": email}).status_code == 200
    standby.wait_for_replay(primary)
    wait_until(lambda: served_by(site, standby), what="reads on the replica")

    caught_up = health(site)
    assert caught_up["replica"]["connected"] is True
    assert caught_up["replica"]["in_recovery"] is True
    assert caught_up["replica"]["lag_seconds"] < 1
    assert caught_up["replica"]["reads"] == "replica"
    # Public answers say nothing about the replica.
    assert "replica" not in site.get("/healthz").json()

    standby.query("SELECT pg_wal_replay_pause()")
    try:
        # The primary writes; the standby receives the WAL but replays nothing.
        email = f"lagging-{time.monotonic_ns()}@example.com"
        assert site.post("/_probe/write", data={"email": email}).status_code == 200
        time.sleep(1.2)  # past REPLICA_MAX_LAG_SECONDS

        wait_until(lambda: served_by(site, primary), what="reads on the primary")
        # An anonymous read without a pin cookie sees the new row: the primary.
        found = site.get("/_probe/find", params={"email": email}).json()
        assert found["found"] is True

        lagging = health(site)
        assert lagging["status"] == "degraded"
        assert lagging["replica"]["reads"] == "primary"
        assert lagging["replica"]["replay_paused"] is True
        assert lagging["replica"]["lag_seconds"] > 1
        assert lagging["replica"]["lag_bytes"] > 0
        assert any("lags" in warning for warning in lagging["warnings"])

        report = db_health(app_env(primary, standby))
        assert report.returncode != 0  # degraded
        assert "Replica: lag" in report.stdout
        assert "replay paused" in report.stdout
        assert "reads use the primary" in report.stdout
        # Recorded, the lag is the series the dashboard's replica chart draws.
        db_health(app_env(primary, standby), record=True)
        [(recorded,)] = primary.query(
            "SELECT value FROM ops_systemmetric"
            " WHERE metric = 'db.replica_lag_seconds'",
            dbname=DBNAME,
        )
        assert recorded > 1
    finally:
        standby.query("SELECT pg_wal_replay_resume()")
    standby.wait_for_replay(primary)

    wait_until(lambda: served_by(site, standby), what="reads back on the replica")
    back = health(site)
    assert back["replica"]["reads"] == "replica"
    assert back["replica"]["lag_bytes"] == 0 or back["replica"]["lag_seconds"] < 1
    assert "Traceback" not in site.log()


def test_failover_to_the_promoted_standby(site, servers):
    primary, standby = servers
    email = f"before-{time.monotonic_ns()}@example.com"
    assert site.post("/_probe/write", data={"email": email}).status_code == 200
    standby.wait_for_replay(primary)

    # Loss of the primary.
    lost = time.monotonic()
    primary.stop("immediate")

    # Meanwhile the router keeps anonymous reads on the standby...
    read = site.get("/_probe/find", params={"email": email})
    assert read.status_code == 200
    assert read.json()["found"] is True
    assert read.json()["server"]["port"] == standby.port
    # ...and writes fail: there is no primary.
    failed = site.post("/_probe/write", data={"email": "nowhere@example.com"})
    assert failed.status_code >= 500

    # Promotion (runbook: `pg_ctl promote -D <standby data>` or the provider's
    # failover); pg_promote() waits until the standby accepts writes.
    assert standby.query("SELECT pg_promote(true, 30)") == [(True,)]
    assert standby.query("SELECT pg_is_in_recovery()") == [(False,)]

    # Repoint DATABASE_URL at the promoted server (no replica until a new
    # standby exists) and restart the web process.
    with gunicorn_site(app_env(standby), workers=1) as repointed:
        email_after = f"after-{time.monotonic_ns()}@example.com"
        written = repointed.post("/_probe/write", data={"email": email_after})
        recovery_seconds = time.monotonic() - lost
        assert written.status_code == 200
        body = written.json()
        assert body["found"] is True
        assert body["server"]["port"] == standby.port
        assert body["server"]["in_recovery"] is False
        # Everything the old primary had replayed before it died is there.
        found = repointed.get("/_probe/find", params={"email": email}).json()
        assert found["found"] is True
    query = "SELECT count(*) FROM accounts_user WHERE email = %s"
    assert standby.query(query, [email_after], dbname=DBNAME) == [(1,)]
    print(f"failover: primary lost -> app writing in {recovery_seconds:.1f} s")

    report = db_health(app_env(standby))
    assert report.returncode == 0, report.stdout + report.stderr
    assert "Replica" not in report.stdout


# --- Runbook measurement (by hand: DR_MEASURE=1, see docs/runbook.md) -----------


@pytest.mark.skipif(
    not os.environ.get("DR_MEASURE"), reason="runbook measurement; set DR_MEASURE=1"
)
def test_measure_failover_rto_and_rpo_under_write_load():
    """Failover with a writer committing as fast as it can on the primary:
    RPO = commits acknowledged by the lost primary but missing on the promoted
    standby (rows and seconds), RTO = primary lost -> the repointed app wrote."""
    with primary_server("opsdb-fom-") as primary:
        primary.create_database(DBNAME)
        manage("migrate", "--noinput", env=site_env(DATABASE_URL=primary.url(DBNAME)))
        with primary.connect(DBNAME) as conn:
            conn.execute(
                "CREATE TABLE load (id bigserial PRIMARY KEY,"
                " at timestamptz NOT NULL DEFAULT clock_timestamp())"
            )
        with replica_of(primary) as standby:
            acked = {"id": 0, "at": None, "commits": 0}
            stop = threading.Event()

            def writer():
                try:
                    with primary.connect(DBNAME) as conn:
                        while not stop.is_set():
                            row = conn.execute(
                                "INSERT INTO load DEFAULT VALUES RETURNING id, at"
                            ).fetchone()
                            acked["id"], acked["at"] = row
                            acked["commits"] += 1
                except psycopg.Error:
                    pass  # the primary died

            thread = threading.Thread(target=writer, daemon=True)
            thread.start()
            time.sleep(3)
            lag = standby.query(
                "SELECT greatest(pg_wal_lsn_diff(pg_last_wal_receive_lsn(),"
                " pg_last_wal_replay_lsn()), 0)"
            )[0][0]
            lost = time.monotonic()
            primary.stop("immediate")
            stop.set()
            thread.join(10)
            assert standby.query("SELECT pg_promote(true, 30)") == [(True,)]
            promoted = time.monotonic() - lost
            with gunicorn_site(app_env(standby), workers=1) as repointed:
                written = repointed.post("/_probe/write", data={"email": "m@x.io"})
                rto = time.monotonic() - lost
            assert written.status_code == 200
            last_id, last_at = standby.query(
                "SELECT id, at FROM load ORDER BY id DESC LIMIT 1", dbname=DBNAME
            )[0]
            missing = acked["id"] - last_id
            rpo = (acked["at"] - last_at).total_seconds() if missing > 0 else 0.0
            print(
                f"\nMEASURED failover: {acked['commits']} commits in ~3 s; "
                f"replay backlog at loss {lag} bytes; promote {promoted:.2f} s; "
                f"RTO (loss -> app wrote on promoted) {rto:.2f} s; "
                f"RPO {missing} acknowledged commits, {rpo:.3f} s"
            )
