"""Read replica: routing proven against a real streaming replica.

The setup starts its own primary (initdb in /tmp), migrates it, makes a standby
with ``pg_basebackup -R -X stream`` and runs the site under gunicorn with
DATABASE_URL / DATABASE_READ_URL pointing at the two. Probe URLs
(tests/core/dbsite) report which server answered a routed ORM read: the
standby answers ``pg_is_in_recovery() = true`` on its own port.
"""

import socket
import threading
import time

import psycopg
import pytest
from django.http import HttpResponse

from core import replica
from core.db_middleware import PrimaryPinMiddleware
from core.routers import PrimaryReplicaRouter
from tests.pg_servers import (
    gunicorn_site,
    manage,
    primary_server,
    replica_of,
    site_env,
)

pytestmark = pytest.mark.slow

DBNAME = "app"


@pytest.fixture(scope="module")
def servers():
    with primary_server() as primary:
        primary.create_database(DBNAME)
        manage("migrate", "--noinput", env=site_env(DATABASE_URL=primary.url(DBNAME)))
        with replica_of(primary) as standby:
            yield primary, standby


@pytest.fixture(scope="module")
def site(servers):
    primary, standby = servers
    env = site_env(
        DATABASE_URL=primary.url(DBNAME),
        DATABASE_READ_URL=standby.url(DBNAME),
        REPLICA_RETRY_SECONDS="1",
    )
    # One sync worker: consecutive requests share a thread, so a pin leaking from
    # one request into the next would show.
    with gunicorn_site(env, workers=1) as site:
        yield site


def served_by(server_info, server):
    return server_info["port"] == server.port


@pytest.fixture
def replay_paused(servers):
    """Stop the standby replaying WAL: it visibly lags the primary meanwhile."""
    primary, standby = servers
    standby.query("SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        standby.query("SELECT pg_wal_replay_resume()")
        standby.wait_for_replay(primary)


def test_the_replica_is_a_real_read_only_streaming_standby(servers):
    primary, standby = servers

    assert standby.query("SELECT pg_is_in_recovery()") == [(True,)]
    assert primary.query("SELECT count(*) FROM pg_stat_replication") == [(1,)]
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        standby.query("CREATE TABLE nope (id int)", dbname=DBNAME)


def test_reads_run_on_the_replica(site, servers):
    _, standby = servers

    response = site.get("/_probe/read")

    assert response.status_code == 200
    server = response.json()["server"]
    assert server["in_recovery"] is True
    assert served_by(server, standby)
    assert "db_primary" not in response.cookies


def test_writes_go_to_the_primary_and_that_requests_reads_follow_them(
    site, servers, replay_paused
):
    primary, standby = servers
    email = f"writer-{time.monotonic_ns()}@example.com"

    response = site.post("/_probe/write", data={"email": email})

    assert response.status_code == 200
    body = response.json()
    assert served_by(body["before"], standby)
    # Read after write in the same request: the primary, which has the row.
    assert body["found"] is True
    assert served_by(body["server"], primary)
    assert body["server"]["in_recovery"] is False
    # The write really went to the primary, and the paused standby lacks it.
    query = "SELECT count(*) FROM accounts_user WHERE email = %s"
    assert primary.query(query, [email], dbname=DBNAME) == [(1,)]
    assert standby.query(query, [email], dbname=DBNAME) == [(0,)]

    # The pin is per request: a new request without the cookie reads the replica
    # again, which has not replayed the write yet.
    fresh = site.get("/_probe/find", params={"email": email}).json()
    assert fresh["found"] is False
    assert served_by(fresh["server"], standby)

    # The writer's own next request (the redirect after a POST) carries the
    # cookie and reads its write from the primary.
    assert response.cookies["db_primary"] == "1"
    sticky = site.get(
        "/_probe/find", params={"email": email}, cookies=response.cookies
    ).json()
    assert sticky["found"] is True
    assert served_by(sticky["server"], primary)


def test_a_raw_sql_write_pins_the_request_too(site, servers):
    primary, standby = servers
    email = f"raw-{time.monotonic_ns()}@example.com"
    assert site.post("/_probe/write", data={"email": email}).status_code == 200
    standby.wait_for_replay(primary)
    standby.query("SELECT pg_wal_replay_pause()")
    try:
        body = site.post("/_probe/raw-write", data={"email": email}).json()
    finally:
        standby.query("SELECT pg_wal_replay_resume()")
        standby.wait_for_replay(primary)

    assert served_by(body["before"], standby)
    # The UPDATE went through a bare cursor, not the router, and still pinned.
    assert body["found"] is True
    assert served_by(body["server"], primary)


def test_replayed_writes_are_read_from_the_replica(site, servers):
    primary, standby = servers
    email = f"replayed-{time.monotonic_ns()}@example.com"
    assert site.post("/_probe/write", data={"email": email}).status_code == 200
    standby.wait_for_replay(primary)

    body = site.get("/_probe/find", params={"email": email}).json()

    assert body["found"] is True
    assert served_by(body["server"], standby)


def test_reads_inside_a_transaction_go_to_the_primary_and_pin_the_request(
    site, servers
):
    primary, standby = servers

    body = site.post("/_probe/atomic").json()

    assert served_by(body["outside"], standby)
    assert served_by(body["inside"], primary)
    assert served_by(body["after"], primary)


def test_with_the_replica_stopped_pages_answer_200_from_the_primary(site, servers):
    primary, standby = servers
    assert served_by(site.get("/_probe/read").json()["server"], standby)

    standby.stop("fast")
    try:
        for path in ("/_probe/read", "/", "/healthz", "/_probe/read"):
            response = site.get(path)
            assert response.status_code == 200, (path, response.text[:500])
        assert served_by(site.get("/_probe/read").json()["server"], primary)
        email = f"while-down-{time.monotonic_ns()}@example.com"
        written = site.post("/_probe/write", data={"email": email})
        assert written.status_code == 200
        assert written.json()["found"] is True
    finally:
        standby.start()
        standby.wait_for_replay(primary)

    # Once the retry interval (1 s here) has passed, reads return to the replica.
    deadline = time.monotonic() + 15
    while True:
        server = site.get("/_probe/read").json()["server"]
        if served_by(server, standby):
            break
        assert time.monotonic() < deadline, "reads never went back to the replica"
        time.sleep(0.2)
    assert "Traceback" not in site.log()


class SilentServer:
    """Accepts TCP connections and never answers: a replica host that hangs
    rather than refuses. Counts the connection attempts it gets."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def test_an_unresponsive_replica_costs_one_connect_timeout_per_retry_interval(
    servers,
):
    primary, _ = servers
    silent = SilentServer()
    try:
        env = site_env(
            DATABASE_URL=primary.url(DBNAME),
            DATABASE_READ_URL=f"postgres://postgres@127.0.0.1:{silent.port}/{DBNAME}",
            DB_REPLICA_CONNECT_TIMEOUT="2",
            REPLICA_RETRY_SECONDS="60",
        )
        with gunicorn_site(env, workers=1) as site:
            started = time.monotonic()
            first = site.get("/_probe/read")
            first_seconds = time.monotonic() - started

            later = []
            for _ in range(10):
                started = time.monotonic()
                later.append((site.get("/_probe/read"), time.monotonic() - started))
            attempts = len(silent.accepted)
    finally:
        silent.close()

    assert first.status_code == 200
    assert served_by(first.json()["server"], primary)
    assert first_seconds >= 1.5  # it did wait for the replica, once
    assert [r.status_code for r, _ in later] == [200] * 10
    assert all(served_by(r.json()["server"], primary) for r, _ in later)
    # Eleven requests, one connection attempt: the others never waited for it.
    assert attempts == 1
    assert max(seconds for _, seconds in later) < 1.5


# --- Router rules that need no server ------------------------------------------


class _Obj:
    def __init__(self, db):
        self._state = type("State", (), {"db": db})()


def test_router_allows_relations_between_primary_and_replica_rows_only():
    router = PrimaryReplicaRouter()

    assert router.allow_relation(_Obj("default"), _Obj("replica")) is True
    assert router.allow_relation(_Obj("replica"), _Obj("direct")) is True
    assert router.allow_relation(_Obj("default"), _Obj("elsewhere")) is None


def test_router_migrates_only_the_primary():
    router = PrimaryReplicaRouter()

    assert router.allow_migrate("default", "accounts") is True
    assert router.allow_migrate("direct", "accounts") is True
    assert router.allow_migrate("replica", "accounts") is False
    assert router.allow_migrate("scratch", "accounts") is None


def test_writes_pin_only_the_current_context():
    token = replica.request_started()
    try:
        assert PrimaryReplicaRouter().db_for_write(None) == "default"
        assert replica.is_pinned() and replica.wrote()
    finally:
        replica.request_finished(token)
    token = replica.request_started()
    try:
        assert not replica.is_pinned()
        with replica.use_primary():
            assert replica.is_pinned()
        assert not replica.is_pinned()
    finally:
        replica.request_finished(token)


def test_without_a_replica_no_pin_cookie_is_set(user_client):
    # A signed-in request writes (allauth records the session's activity).
    response = user_client.get("/")

    assert response.status_code == 200
    assert "db_primary" not in response.cookies


# --- The pinning middleware on its own ------------------------------------------


@pytest.fixture
def replica_on(monkeypatch):
    monkeypatch.setattr(replica, "replica_configured", lambda: True)


def run_middleware(request, view):
    return PrimaryPinMiddleware(view)(request)


def test_a_request_that_wrote_gets_a_short_lived_pin_cookie(rf, replica_on, settings):
    settings.REPLICA_STICKY_SECONDS = 5

    def view(request):
        PrimaryReplicaRouter().db_for_write(None)
        return HttpResponse("ok")

    response = run_middleware(rf.post("/", secure=True), view)

    cookie = response.cookies["db_primary"]
    assert cookie["max-age"] == 5
    assert cookie["secure"] and cookie["httponly"]
    assert cookie["samesite"] == "Lax"


def test_a_read_only_request_gets_no_cookie_and_reads_from_the_replica(rf, replica_on):
    seen = {}

    def view(request):
        seen["pinned"] = replica.is_pinned()
        return HttpResponse("ok")

    response = run_middleware(rf.get("/"), view)

    assert seen == {"pinned": False}
    assert "db_primary" not in response.cookies


def test_the_pin_cookie_sends_the_next_request_to_the_primary(rf, replica_on):
    seen = {}

    def view(request):
        seen["pinned"] = replica.is_pinned()
        return HttpResponse("ok")

    request = rf.get("/")
    request.COOKIES["db_primary"] = "1"
    response = run_middleware(request, view)

    assert seen == {"pinned": True}
    # Reading is not writing: the cookie is not renewed.
    assert "db_primary" not in response.cookies
    # ...and the pin ends with the request.
    assert not replica.is_pinned()


def test_sticky_seconds_zero_turns_the_cookie_off(rf, replica_on, settings):
    settings.REPLICA_STICKY_SECONDS = 0

    def view(request):
        replica.mark_write()
        return HttpResponse("ok")

    assert "db_primary" not in run_middleware(rf.post("/"), view).cookies
