"""The site through a real PgBouncer in transaction mode (pool of 2).

The setup starts its own primary, PgBouncer in front of it (Debian package,
installed when missing and root; otherwise the tests skip with the reason) and
the site under gunicorn with ``DATABASE_URL=<pgbouncer>?pgbouncer=true`` and
``DIRECT_URL=<server>``. Migrations run through DIRECT_URL, everything else
through the pooler.
"""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import psycopg
import pytest
import requests
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connections
from django.urls import reverse

from config.database import database_from_url
from tests.pg_servers import (
    PROJECT_ROOT,
    gunicorn_site,
    manage,
    pgbouncer_for,
    primary_server,
    site_env,
)

pytestmark = pytest.mark.slow

DBNAME = "app"
CLIENTS = 20
POOL_SIZE = 2


@pytest.fixture(scope="module")
def pooled():
    with primary_server() as server:
        server.create_database(DBNAME)
        with pgbouncer_for(server, pool_size=POOL_SIZE) as bouncer:
            yield server, bouncer


@pytest.fixture(scope="module")
def migrate_output(pooled):
    server, bouncer = pooled
    env = site_env(DATABASE_URL=bouncer.url(DBNAME), DIRECT_URL=server.url(DBNAME))
    return manage("migrate", "--noinput", env=env)


@pytest.fixture(scope="module")
def site(pooled, migrate_output):
    server, bouncer = pooled
    env = site_env(
        DATABASE_URL=bouncer.url(DBNAME),
        DIRECT_URL=server.url(DBNAME),
        DB_APPLICATION_NAME="pgbouncer-test",
    )
    # 2 workers x 10 threads: 20 requests at once share 2 server connections.
    with gunicorn_site(env, workers=2, threads=10) as site:
        yield site


def test_migrations_run_through_direct_url_not_the_pooler(pooled, migrate_output):
    server, _ = pooled

    assert "Using DIRECT_URL for migrations." in migrate_output
    tables = server.query(
        "SELECT count(*) FROM pg_tables WHERE tablename IN "
        "('accounts_user', 'django_session', 'django_cache')",
        dbname=DBNAME,
    )
    assert tables == [(3,)]


def client_flow(site, index: int) -> list[str]:
    """One user's visit; returns what went wrong (nothing, hopefully)."""
    problems = []
    session = requests.Session()

    def check(response, expected=200):
        if response.status_code != expected:
            problems.append(
                f"client {index}: {response.request.method} {response.url} "
                f"-> {response.status_code}: {response.text[:200]}"
            )
        return response

    email = f"client-{index}@example.com"
    role = "ADMIN" if index == 0 else "USER"
    check(
        session.post(site.base + "/_probe/sign-in", data={"email": email, "role": role})
    )
    check(session.get(site.base + "/"))
    health = check(session.get(site.base + "/healthz")).json()
    if health["database"]["connected"] is not True:
        problems.append(f"client {index}: healthz {health}")
    # A signed-in page: the session is read, allauth records its activity.
    check(session.get(site.base + reverse("account"), allow_redirects=False))
    if index == 0:
        check(session.get(site.base + "/admin/", allow_redirects=False))
    iterated = check(session.get(site.base + "/_probe/iterate")).json()
    if not iterated["server_side_cursors_disabled"] or iterated["content_types"] < 10:
        problems.append(f"client {index}: iterate {iterated}")
    for _ in range(3):
        check(session.post(site.base + "/_probe/lock", data={"email": email}))
    check(session.post(site.base + "/_probe/bulk", data={"prefix": f"bulk{index}"}))
    written = check(
        session.post(
            site.base + "/_probe/write", data={"email": f"w{index}@example.com"}
        )
    ).json()
    if written["found"] is not True:
        problems.append(f"client {index}: did not read its own write {written}")
    return problems


def test_key_flows_pass_with_20_concurrent_clients_on_a_pool_of_2(pooled, site):
    server, bouncer = pooled

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        results = list(pool.map(lambda i: client_flow(site, i), range(CLIENTS)))
    elapsed = time.monotonic() - started

    assert [p for problems in results for p in problems] == []
    log = site.log()
    assert "Traceback" not in log
    assert "DuplicatePreparedStatement" not in log
    assert "prepared statement" not in log

    # Every row landed exactly once; the locked counter saw every increment.
    counts = server.query(
        "SELECT count(*) FILTER (WHERE email LIKE 'client-%%'), "
        "count(*) FILTER (WHERE email LIKE 'bulk%%'), "
        "count(*) FILTER (WHERE email LIKE 'w%%'), "
        "min(keyword_searches_total) FILTER (WHERE email LIKE 'client-%%'), "
        "max(keyword_searches_total) FILTER (WHERE email LIKE 'client-%%') "
        "FROM accounts_user",
        dbname=DBNAME,
    )
    assert counts == [(CLIENTS, CLIENTS * 10, CLIENTS, 3, 3)]

    # PgBouncer really multiplexed: never more than the pool's 2 server
    # connections to the database, for 20 clients.
    pools = [p for p in bouncer.show("POOLS") if p["database"] == DBNAME]
    assert pools
    servers = sum(
        p[key]
        for p in pools
        for key in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
    )
    assert servers <= POOL_SIZE
    backends = server.query(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
        "AND backend_type = 'client backend'",
        [DBNAME],
    )[0][0]
    assert backends <= POOL_SIZE
    # Each gunicorn thread keeps its client connection (DB_CONN_MAX_AGE).
    clients = sum(p["cl_active"] + p["cl_waiting"] for p in pools)
    assert clients > POOL_SIZE
    stats = next(s for s in bouncer.show("STATS") if s["database"] == DBNAME)
    print(
        f"\n{CLIENTS} clients, pool {POOL_SIZE}: {elapsed:.2f}s, "
        f"{stats['total_xact_count']} transactions, "
        f"{stats['total_query_count']} queries through PgBouncer, "
        f"client connections {clients}, server connections {servers}"
    )


# The suite's own tests of the flows every user goes through: sign-in (magic
# links, OAuth against a local provider), sessions, account pages, admin, pages.
SUITE_KEY_FLOWS = (
    "tests/accounts",
    "tests/config/test_pages.py",
    "tests/core/test_healthz.py",
)


def test_the_suites_key_flow_tests_pass_through_pgbouncer(pooled):
    _server, bouncer = pooled
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": bouncer.url("postgres"),
        "DIRECT_URL": "",
        "DATABASE_READ_URL": "",
        "DB_POOLER": "",
        "DJANGO_TEST_DB_NAME": "test_through_pgbouncer",
    }
    paths = [path for path in SUITE_KEY_FLOWS if (PROJECT_ROOT / path).exists()]

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-m",
            "not slow and not browser",
            *paths,
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
    assert "DuplicatePreparedStatement" not in result.stdout + result.stderr


@contextmanager
def temporary_alias(alias: str, settings_dict: dict):
    """A Django connection alias for this test only, removed afterwards."""
    configured = connections.configure_settings(
        {"default": connections.settings["default"], alias: settings_dict}
    )
    connections.settings[alias] = configured[alias]
    try:
        yield connections[alias]
    finally:
        connections[alias].close()
        del connections[alias]
        del connections.settings[alias]


def iterate_while_another_client_holds_the_server(bouncer, alias) -> int:
    """Read in chunks while another client's open transaction takes the server
    connection the chunks were started on; PgBouncer then hands the next chunk to
    the pool's other server connection."""
    rows = ContentType.objects.using(alias).order_by("pk").iterator(chunk_size=1)
    count = 1 if next(rows) else 0
    with psycopg.connect(
        host="127.0.0.1", port=bouncer.port, user="postgres", dbname=DBNAME
    ) as other:
        other.execute("SELECT 1")  # opens a transaction: holds a server connection
        count += sum(1 for _ in rows)
    return count


def test_chunked_reads_need_server_side_cursors_off_behind_transaction_pooling(
    pooled, migrate_output, django_db_blocker
):
    server, bouncer = pooled
    expected = server.query("SELECT count(*) FROM django_content_type", dbname=DBNAME)
    expected = expected[0][0]

    with django_db_blocker.unblock():
        # Without ?pgbouncer=true: .iterator() declares a WITH HOLD cursor in one
        # server session and fetches from another, where it does not exist.
        unsafe = database_from_url(bouncer.url(DBNAME, query=""))
        assert not unsafe.get("DISABLE_SERVER_SIDE_CURSORS")
        with (
            temporary_alias("pooled_unsafe", unsafe),
            # Django's ProgrammingError, or psycopg's own from closing the cursor.
            pytest.raises((DatabaseError, psycopg.Error), match="does not exist"),
        ):
            iterate_while_another_client_holds_the_server(bouncer, "pooled_unsafe")

        # With it (what the app uses): client-side cursors, every row arrives.
        safe = database_from_url(bouncer.url(DBNAME))
        assert safe["DISABLE_SERVER_SIDE_CURSORS"] is True
        with temporary_alias("pooled_safe", safe):
            count = iterate_while_another_client_holds_the_server(
                bouncer, "pooled_safe"
            )
    assert count == expected
