"""A database restart between two requests costs no error on the second.

The site runs under gunicorn with persistent connections (DB_CONN_MAX_AGE=60)
against its own primary; ``pg_ctl restart -m fast`` kills every open
connection. CONN_HEALTH_CHECKS makes each worker notice at its next request and
reconnect before the first query, instead of failing it.
"""

import time

import pytest
import requests
from django.urls import reverse

from tests.pg_servers import gunicorn_site, manage, primary_server, site_env

pytestmark = pytest.mark.slow

DBNAME = "app"
APP_NAME = "restart-test"
PATHS = ("/_probe/read", "/healthz", "/")


@pytest.fixture(scope="module")
def server():
    with primary_server() as server:
        server.create_database(DBNAME)
        manage("migrate", "--noinput", env=site_env(DATABASE_URL=server.url(DBNAME)))
        yield server


@pytest.fixture(scope="module")
def site(server):
    env = site_env(
        DATABASE_URL=server.url(DBNAME),
        DB_CONN_MAX_AGE="60",
        DB_APPLICATION_NAME=APP_NAME,
    )
    with gunicorn_site(env, workers=2) as site:
        yield site


def app_backends(server) -> set[int]:
    rows = server.query(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [APP_NAME]
    )
    return {pid for (pid,) in rows}


def visit(site, session: requests.Session) -> list[tuple[str, int]]:
    statuses = []
    for path in (*PATHS, reverse("account")):
        response = session.get(site.base + path, allow_redirects=False)
        statuses.append((path, response.status_code))
    return statuses


def test_a_database_restart_between_two_requests_costs_no_error(server, site):
    session = requests.Session()
    signed_in = session.post(
        site.base + "/_probe/sign-in", data={"email": "restart@example.com"}
    )
    assert signed_in.status_code == 200
    # Both workers get to hold a persistent connection.
    for _ in range(4):
        assert all(status == 200 for _, status in visit(site, session))
    before = app_backends(server)
    assert before, "no persistent connections to break"

    started = time.monotonic()
    server.restart()
    restart_seconds = time.monotonic() - started
    assert app_backends(server) == set()

    # Every request after the restart, on every worker, answers normally; the
    # session (stored in the database) survives too.
    after = [visit(site, session) for _ in range(4)]
    assert after == [[(path, 200) for path in (*PATHS, reverse("account"))]] * 4
    health = session.get(site.base + "/healthz").json()
    assert health["database"]["connected"] is True
    reconnected = app_backends(server)
    assert reconnected
    assert not reconnected & before
    assert "Traceback" not in site.log()
    print(f"\nrestart took {restart_seconds:.2f}s")


def test_without_persistent_connections_a_restart_is_also_harmless(server):
    env = site_env(DATABASE_URL=server.url(DBNAME), DB_CONN_MAX_AGE="0")
    with gunicorn_site(env, workers=1) as site:
        assert site.get("/_probe/read").status_code == 200
        server.restart()
        assert site.get("/_probe/read").status_code == 200
        assert site.get("/healthz").status_code == 200
