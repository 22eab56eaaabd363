"""The dashboard's Queries tab against real PostgreSQL sessions: running
queries cancelled and terminated, blocking locks, slowest statements without
DDL or the dashboard's own reads, and the statistics reset."""

from __future__ import annotations

import html as html_module
import threading
import time
import uuid

import psycopg
import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.db import connection
from django.urls import reverse

from accounts.models import User
from core import selectors
from core.models import AuditLog
from core.monitoring import DASHBOARD_TAG, slowest_statements
from tests.accounts.factories import UserFactory

DASHBOARD = reverse("admin:ops_databasedashboard_changelist")
QUERIES = f"{DASHBOARD}?tab=queries"
RESET = reverse("admin:ops_databasedashboard_statements_reset")


def cancel_url(pid) -> str:
    return reverse("admin:ops_databasedashboard_query_cancel", args=[pid])


def terminate_url(pid) -> str:
    return reverse("admin:ops_databasedashboard_query_terminate", args=[pid])


def connect(**options) -> psycopg.Connection:
    """A connection of its own to the test database, outside the test's
    transaction (as another process of the app would be)."""
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        autocommit=True,
        **options,
    )


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


class Session:
    """A statement running on its own connection in a thread, like a slow
    request elsewhere; ``error`` is what its client saw."""

    def __init__(self, sql: str, *, application: str, conn=None):
        self.application = application
        self.conn = conn or connect(application_name=application)
        self.pid = self.conn.info.backend_pid
        self.sql = sql
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.conn.execute(self.sql)
        except Exception as exc:
            self.error = exc

    def finished(self, timeout: float = 10.0) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def close(self):
        if self.thread.is_alive():
            self.conn.cancel_safe()
            self.thread.join(10)
        self.conn.close()


@pytest.fixture
def observer():
    conn = connect(application_name="dashboard-test-observer")
    yield conn
    conn.close()


def activity(observer, pid) -> tuple | None:
    return observer.execute(
        "SELECT state, wait_event_type, query FROM pg_stat_activity WHERE pid = %s",
        [pid],
    ).fetchone()


@pytest.fixture
def sleepers(observer):
    started: list[Session] = []

    def start(application: str | None = None) -> Session:
        name = application or f"dash-sleeper-{uuid.uuid4().hex[:8]}"
        session = Session("SELECT pg_sleep(60)", application=name)
        started.append(session)
        wait_for(
            lambda: (
                (row := activity(observer, session.pid))
                and row[0] == "active"
                and "pg_sleep" in row[2]
            )
        )
        return session

    yield start
    for session in started:
        session.close()


def test_core_knows_the_admin_role_by_its_value():
    assert selectors.ADMIN_ROLE == User.Role.ADMIN


@pytest.mark.django_db
def test_admin_cancels_a_real_running_query_and_it_is_audit_logged(
    admin_client, admin_user, sleepers, observer
):
    sleeper = sleepers("dash-test-cancel")

    html = admin_client.get(QUERIES).content.decode()
    row = html.split(f'id="backend-{sleeper.pid}"', 1)[1].split("</tr>", 1)[0]
    assert "dash-test-cancel" in row
    assert "SELECT pg_sleep(60)" in row
    assert cancel_url(sleeper.pid) in row
    assert terminate_url(sleeper.pid) in row

    # The confirmation page, then the POST.
    confirm = admin_client.get(cancel_url(sleeper.pid))
    assert confirm.status_code == 200
    assert "Yes, cancel the query" in confirm.content.decode()
    assert sleeper.thread.is_alive()  # a GET changes nothing

    response = admin_client.post(cancel_url(sleeper.pid), follow=True)

    assert response.redirect_chain[-1][0] == QUERIES
    assert f"Cancel request sent to pid {sleeper.pid}" in response.content.decode()
    assert sleeper.finished()
    assert isinstance(sleeper.error, psycopg.errors.QueryCanceled)
    assert "canceling statement due to user request" in str(sleeper.error)
    # The connection itself stays.
    assert sleeper.conn.execute("SELECT 1").fetchone() == (1,)
    entry = AuditLog.objects.get(action=AuditLog.Action.QUERY_CANCELLED)
    assert entry.actor == admin_user
    assert entry.changes["pid"] == sleeper.pid
    assert entry.changes["query"] == "SELECT pg_sleep(60)"
    assert entry.changes["application"] == "dash-test-cancel"
    assert entry.changes["duration_seconds"] >= 0


@pytest.mark.django_db
def test_admin_terminates_a_real_connection_and_it_is_audit_logged(
    admin_client, admin_user, sleepers, observer
):
    sleeper = sleepers("dash-test-terminate")
    assert f'id="backend-{sleeper.pid}"' in admin_client.get(QUERIES).content.decode()

    response = admin_client.post(terminate_url(sleeper.pid), follow=True)

    assert f"Terminated the connection of pid {sleeper.pid}" in (
        response.content.decode()
    )
    assert sleeper.finished()
    assert isinstance(sleeper.error, psycopg.OperationalError)
    assert "terminating connection due to administrator command" in str(sleeper.error)
    wait_for(lambda: activity(observer, sleeper.pid) is None)
    assert sleeper.conn.closed or sleeper.conn.broken
    entry = AuditLog.objects.get(action=AuditLog.Action.QUERY_TERMINATED)
    assert entry.actor == admin_user
    assert entry.actor_email == admin_user.email
    assert entry.changes["pid"] == sleeper.pid
    assert "pg_sleep" in entry.changes["query"]
    assert entry.changes["duration_seconds"] >= 0


@pytest.fixture
def support_client(client, monkeypatch):
    """Staff without the ADMIN role (no such role exists yet: is_staff is
    widened for this test to any active user, as a support role would)."""
    monkeypatch.setattr(User, "is_staff", property(lambda self: self.is_active))
    support = UserFactory(role="SUPPORT", name="Support")
    TOTP.activate(support, generate_totp_secret())
    client.force_login(support)
    return client


@pytest.mark.django_db
def test_staff_without_the_admin_role_see_queries_but_cannot_signal_them(
    support_client, sleepers, observer
):
    sleeper = sleepers("dash-test-support")

    page = support_client.get(QUERIES)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'id="backend-{sleeper.pid}"' in html
    assert cancel_url(sleeper.pid) not in html
    assert terminate_url(sleeper.pid) not in html
    assert RESET not in html
    assert "Only ADMINs can cancel or terminate." in html

    for url in (cancel_url(sleeper.pid), terminate_url(sleeper.pid), RESET):
        assert support_client.get(url).status_code == 403
        assert support_client.post(url).status_code == 403

    time.sleep(0.2)
    assert sleeper.thread.is_alive()
    assert activity(observer, sleeper.pid)[0] == "active"
    assert not AuditLog.objects.filter(
        action__in=[
            AuditLog.Action.QUERY_CANCELLED,
            AuditLog.Action.QUERY_TERMINATED,
            AuditLog.Action.STATEMENT_STATS_RESET,
        ]
    ).exists()


@pytest.mark.django_db
def test_non_staff_cannot_reach_the_actions(user_client, sleepers):
    sleeper = sleepers()

    for url in (cancel_url(sleeper.pid), terminate_url(sleeper.pid), RESET):
        response = user_client.post(url)
        assert response.status_code == 302
        assert "/login/" in response["Location"]
    assert sleeper.thread.is_alive()


def _message_after(admin_client, url, method="post") -> str:
    response = getattr(admin_client, method)(url, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == QUERIES
    messages = response.content.decode().split('class="messagelist"', 1)[1]
    return html_module.unescape(messages.split("</ul>", 1)[0])


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_bogus_gone_own_and_server_pids_get_a_clear_message(
    admin_client, observer, method
):
    gone = connect(application_name="dash-test-gone")
    gone_pid = gone.info.backend_pid
    gone.close()
    wait_for(lambda: activity(observer, gone_pid) is None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own_pid = cursor.fetchone()[0]
    server_pid = observer.execute(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'"
    ).fetchone()[0]

    cases = {
        "abc": "is not a process id",
        "99999999999": "is not a process id",
        "-4": "is not a process id",
        str(gone_pid): f"No process with pid {gone_pid}",
        str(own_pid): "the dashboard's own connection",
        str(server_pid): "PostgreSQL's own checkpointer",
    }
    for pid, message in cases.items():
        for url in (cancel_url(pid), terminate_url(pid)):
            assert message in _message_after(admin_client, url, method), (pid, url)

    assert not AuditLog.objects.filter(
        action__in=[AuditLog.Action.QUERY_CANCELLED, AuditLog.Action.QUERY_TERMINATED]
    ).exists()
    # The checkpointer still runs.
    assert activity(observer, server_pid) is not None


@pytest.mark.django_db
def test_blocking_locks_show_who_blocks_whom(admin_client, observer):
    table = f"dash_lock_probe_{uuid.uuid4().hex[:8]}"
    observer.execute(f"CREATE TABLE {table} (id int)")
    holder = connect(application_name="dash-test-holder")
    waiter = None
    try:
        holder.execute("BEGIN")
        holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        waiter = Session(
            f"SELECT count(*) FROM {table}", application="dash-test-waiter"
        )
        wait_for(lambda: (activity(observer, waiter.pid) or (None, None))[1] == "Lock")

        html = admin_client.get(QUERIES).content.decode()

        section = html.split('id="blocking-locks"', 1)[1].split("</section>", 1)[0]
        row = section.split('class="lock-row"', 1)[1].split("</tr>", 1)[0]
        assert f'href="#backend-{waiter.pid}">{waiter.pid}</a>' in row
        assert f'href="#backend-{holder.info.backend_pid}">' in row
        assert f"AccessShareLock on {table}" in row
        assert "idle in transaction" in row
        # The waiting session is flagged in the running list too.
        running = html.split(f'id="backend-{waiter.pid}"', 1)[1].split("</tr>", 1)[0]
        assert "blocked" in running
        assert "Lock: relation" in running
    finally:
        holder.execute("ROLLBACK")
        if waiter is not None:
            assert waiter.finished()
            waiter.close()
        holder.close()
        observer.execute(f"DROP TABLE IF EXISTS {table}")


def _statements_available() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SHOW shared_preload_libraries")
        return "pg_stat_statements" in cursor.fetchone()[0]


@pytest.mark.django_db
def test_slowest_statements_leave_out_ddl_settings_and_the_dashboards_own(
    admin_client,
):
    if not _statements_available():
        pytest.skip("pg_stat_statements is not preloaded on this server")
    marker = f"dash_probe_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        # pg_stat_statements keeps pg_stat_statements.max entries and evicts the
        # least-called first: after a whole test run, this test's one-call
        # statements could be gone before the dashboard reads them. Start this
        # database's statistics afresh (other databases keep theirs).
        cursor.execute(
            "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database"
            " WHERE datname = current_database()), 0)"
        )
        cursor.execute(f"CREATE TABLE {marker} (id int)")
        cursor.execute(f"ALTER TABLE {marker} ADD COLUMN note text")
        cursor.execute(f"CREATE INDEX {marker}_idx ON {marker} (id)")
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute(f"SELECT count(*) AS app_{marker} FROM ops_featureflag")
        cursor.execute(
            f"SELECT id AS own_{marker} FROM ops_featureflag {DASHBOARD_TAG}"
        )
        cursor.execute(
            "SELECT query FROM pg_stat_statements WHERE query LIKE %s",
            [f"%{marker}%"],
        )
        recorded = [row[0] for row in cursor.fetchall()]
    # They were all recorded: the filter below is what leaves them out.
    assert any(q.startswith("CREATE TABLE") for q in recorded)
    assert any(q.startswith("ALTER TABLE") for q in recorded)
    assert any(DASHBOARD_TAG in q for q in recorded)
    admin_client.get(QUERIES)  # the dashboard's own reads are recorded too

    available, _, rows = slowest_statements(connection, limit=100_000)

    assert available
    texts = [row["query"] for row in rows]
    assert any(f"app_{marker}" in q for q in texts)
    assert not any(marker in q and f"app_{marker}" not in q for q in texts)
    for query in texts:
        first = query.lstrip().split(None, 1)[0].upper()
        assert first not in {
            "CREATE", "ALTER", "DROP", "SET", "BEGIN", "COMMIT", "ROLLBACK",
            "SAVEPOINT", "RELEASE",
        }, query  # fmt: skip
        assert DASHBOARD_TAG not in query
        # The Queries tab's own read of running queries.
        assert "pg_blocking_pids(a.pid)) > 0 AS blocked" not in query


@pytest.mark.django_db
def test_admin_resets_statement_statistics_with_confirmation_and_audit(
    admin_client, admin_user
):
    if not _statements_available():
        pytest.skip("pg_stat_statements is not preloaded on this server")
    html = admin_client.get(QUERIES).content.decode()
    assert f'href="{RESET}"' in html
    confirm = admin_client.get(RESET)
    assert "Yes, reset the statistics" in confirm.content.decode()

    response = admin_client.post(RESET, follow=True)

    assert "Statement statistics reset:" in response.content.decode()
    entry = AuditLog.objects.get(action=AuditLog.Action.STATEMENT_STATS_RESET)
    assert entry.actor == admin_user
    assert entry.changes["statements_discarded"] >= 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_statements WHERE dbid ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        # Only what ran since the reset (the page after the redirect).
        assert cursor.fetchone()[0] < entry.changes["statements_discarded"] + 50


@pytest.mark.django_db
def test_reset_without_the_extension_says_so_and_records_nothing(admin_client):
    with connection.cursor() as cursor:
        cursor.execute("DROP EXTENSION IF EXISTS pg_stat_statements")

    message = _message_after(admin_client, RESET)

    assert "The pg_stat_statements extension is not available" in message
    assert not AuditLog.objects.filter(
        action=AuditLog.Action.STATEMENT_STATS_RESET
    ).exists()
