"""The job queue with real workers: ``manage.py procrastinate worker``
subprocesses on the pytest database (``JOBS_TEST_WORKER_DB``, read by
config/settings/test.py), against SMTP servers that hang, refuse, then work.

Jobs must be committed for a worker to see them, hence
``django_db(transaction=True)``; Procrastinate's tables are not Django-managed
(the flush after each test leaves them), so a fixture empties them. Every
wait is bounded, every worker is stopped in a ``finally``.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from procrastinate.contrib.django import app

from core.jobs import MAIL_MAX_WAIT, queue_health
from core.mail import MAIL_QUEUE
from core.tasks import jobs_stalled_retry, mail_send
from tests.accounts.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
# tests/core/worker_tasks.py's queue (not imported here: only the workers
# register those tasks).
TEST_QUEUE = "tests"
MAGIC_LINK_TASK = "accounts.magic_link_mail_send"
PROCRASTINATE_TABLES = (
    "procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs,"
    " procrastinate_workers"
)


def wait_until(condition, *, timeout: float, what: str, details=None):
    """Poll ``condition`` until it returns something truthy; fail after
    ``timeout`` seconds, with ``details()`` (the workers' logs) if given."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            more = f"\n{details()}" if details else ""
            pytest.fail(f"timed out after {timeout} s waiting for {what}{more}")
        time.sleep(0.1)


def query(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def job_rows(task_name: str) -> list[tuple]:
    """``(id, status, attempts)`` of every job of ``task_name``, oldest first."""
    return query(
        "SELECT id, status::text, attempts FROM procrastinate_jobs"
        " WHERE task_name = %s ORDER BY id",
        [task_name],
    )


def event_types(job_id: int) -> list[str]:
    return [
        row[0]
        for row in query(
            "SELECT type::text FROM procrastinate_events WHERE job_id = %s"
            " AND type <> 'scheduled' ORDER BY id",
            [job_id],
        )
    ]


# --- workers ----------------------------------------------------------------------


@dataclass
class Worker:
    process: subprocess.Popen
    logfile: Path
    # Set when the test ends it (SIGTERM, SIGKILL): an exit is then expected.
    ended: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")[-4000:]


class Workers:
    """Starts ``manage.py procrastinate worker`` processes on the test
    database; :meth:`stop_all` ends them (SIGTERM, then SIGKILL)."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.started: list[Worker] = []

    def start(self, *, queues: str, env: dict[str, str] | None = None) -> Worker:
        logfile = self.tmp_path / f"worker-{len(self.started)}.log"
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "JOBS_TEST_WORKER_DB": connection.settings_dict["NAME"],
            "PROCRASTINATE_DATABASE_ALIAS": "default",
            **(env or {}),
        }
        with open(logfile, "wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "manage.py",
                    "procrastinate",
                    "worker",
                    "--queues",
                    queues,
                    "--concurrency",
                    "4",
                    # Retries and requeued jobs are only seen when polling
                    # (NOTIFY is sent for new jobs only): poll often.
                    "--fetch-job-polling-interval",
                    "0.3",
                    "--shutdown-graceful-timeout",
                    "2",
                ],
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(process=process, logfile=logfile)
        self.started.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(
            f"--- worker {n} (pid {w.pid}):\n{w.log()}"
            for n, w in enumerate(self.started)
        )

    def wait(self, condition, *, timeout: float, what: str):
        """:func:`wait_until`, failing at once (with its log) if a worker the
        test did not end has exited: a crash is not a slow worker."""

        def checked():
            for worker in self.started:
                if not worker.ended and worker.process.poll() is not None:
                    pytest.fail(
                        f"a worker exited while waiting for {what}:\n" + self.logs()
                    )
            return condition()

        return wait_until(checked, timeout=timeout, what=what, details=self.logs)

    def wait_registered(self, count: int) -> None:
        """Until ``count`` workers have registered (they then fetch jobs)."""
        self.wait(
            lambda: query("SELECT count(*) FROM procrastinate_workers")[0][0] >= count,
            timeout=30,
            what=f"{count} registered workers",
        )

    def kill(self, worker: Worker) -> None:
        worker.ended = True
        os.kill(worker.pid, signal.SIGKILL)
        worker.process.wait(5)

    def stop(self, worker: Worker) -> None:
        worker.ended = True
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
            try:
                worker.process.wait(10)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(5)

    def stop_all(self) -> None:
        for worker in self.started:
            with suppress(Exception):
                self.stop(worker)


@pytest.fixture
def empty_queue(transactional_db):
    """Procrastinate's tables empty before and after (workers stopped first:
    this fixture is set up before ``workers`` and torn down after it)."""
    query(f"TRUNCATE {PROCRASTINATE_TABLES}")
    yield
    query(f"TRUNCATE {PROCRASTINATE_TABLES}")


@pytest.fixture
def workers(empty_queue, tmp_path):
    started = Workers(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


# --- SMTP servers -----------------------------------------------------------------


class SilentSMTP:
    """Accepts connections and never says a word (a hung mail server)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping.is_set():
            with suppress(TimeoutError, OSError):
                conn, _ = self.sock.accept()
                self.accepted.append(conn)

    def close(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def closed_port() -> int:
    """A port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    @property
    def recipients(self) -> list[str]:
        return sorted(rcpt for env in self.envelopes for rcpt in env.rcpt_tos)


# --- tests ------------------------------------------------------------------------


def _sign_in_addresses(tag: str) -> dict[str, str]:
    known = UserFactory(email=f"known-{tag}@example.com")
    gone = UserFactory(email=f"gone-{tag}@example.com", is_active=False)
    return {
        "known": known.email,
        "unknown": f"new-{tag}@example.com",
        "deactivated": gone.email,
    }


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("outage", ["hangs", "refuses"])
def test_sign_in_answers_at_once_during_an_smtp_outage_and_mails_go_once_it_ends(
    client, settings, workers, outage
):
    silent = SilentSMTP() if outage == "hangs" else None
    port = silent.port if silent else closed_port()
    # The web process points at the broken server too: a send inside the
    # request would hang for EMAIL_TIMEOUT (5 s) or fail.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_TIMEOUT = 5
    addresses = _sign_in_addresses(f"{outage}-{uuid.uuid4().hex[:8]}")
    inbox, smtp = Inbox(), None
    try:
        for n, (kind, email) in enumerate(addresses.items()):
            started = time.perf_counter()
            response = client.post(
                "/accounts/login/", {"email": email}, REMOTE_ADDR=f"192.0.2.{n + 10}"
            )
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, kind
            assert elapsed < 1, f"{kind}: {elapsed:.2f} s"
        jobs = job_rows(MAGIC_LINK_TASK)
        assert [status for _, status, _ in jobs] == ["todo"] * 3

        workers.start(
            queues=MAIL_QUEUE,
            env={
                "EMAIL_URL": f"smtp://127.0.0.1:{port}",
                "EMAIL_TIMEOUT": "2",
                "MAIL_RETRY_SECONDS": "1",
                "MAIL_MAX_ATTEMPTS": "20",
            },
        )
        # The worker meets the outage: the known and unknown addresses' mails
        # fail and wait for a retry; the deactivated one's job sends nothing.
        known_job, unknown_job, deactivated_job = (job_id for job_id, *_ in jobs)
        workers.wait(
            lambda: all(
                "deferred_for_retry" in event_types(job_id)
                for job_id in (known_job, unknown_job)
            ),
            timeout=20,
            what="a failed attempt of each mail",
        )

        if silent:
            silent.close()
        smtp = Controller(inbox, hostname="127.0.0.1", port=port)
        smtp.start()

        workers.wait(
            lambda: all(
                status == "succeeded" for _, status, _ in job_rows(MAGIC_LINK_TASK)
            ),
            timeout=30,
            what="the mail jobs to succeed",
        )
        time.sleep(1)  # a second delivery would show within a few polls
        assert inbox.recipients == sorted([addresses["known"], addresses["unknown"]])
        assert all(b"/accounts/magic/" in env.content for env in inbox.envelopes)
        assert event_types(deactivated_job) == ["deferred", "started", "succeeded"]
    finally:
        if smtp:
            smtp.stop()
        if silent:
            silent.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_workers_run_each_periodic_tick_once(workers, tmp_path):
    ticks = tmp_path / "ticks"
    env = {"JOBS_TEST_TICK_FILE": str(ticks)}
    both = [workers.start(queues=TEST_QUEUE, env=env) for _ in range(2)]
    workers.wait_registered(2)

    def lines():
        if not ticks.exists():
            return []
        return [
            tuple(map(int, line.split())) for line in ticks.read_text().splitlines()
        ]

    workers.wait(lambda: len(lines()) >= 3, timeout=20, what="three ticks")
    for worker in both:
        assert worker.process.poll() is None, worker.log()
        workers.stop(worker)

    timestamps = [timestamp for timestamp, _pid in lines()]
    assert len(timestamps) == len(set(timestamps)), timestamps
    per_tick = query(
        "SELECT args ->> 'timestamp', count(*) FROM procrastinate_jobs"
        " WHERE task_name = 'tests.tick' GROUP BY 1"
    )
    assert per_tick and all(count == 1 for _, count in per_tick), per_tick
    assert {str(t) for t in timestamps} <= {t for t, _ in per_tick}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_job_of_a_killed_worker_is_rerun_once_by_another(workers, tmp_path):
    record = tmp_path / "record"
    # Not the maintenance queue: a worker defers the periodic maintenance jobs
    # (backups…) of the last minutes when it starts, and they are not for here.
    started = [workers.start(queues=TEST_QUEUE) for _ in range(2)]
    workers.wait_registered(2)
    job_id = app.configure_task("tests.slow_record", queue=TEST_QUEUE).defer(
        path=str(record), seconds=2
    )

    def lines() -> list[list[str]]:
        if not record.exists():
            return []
        return [line.split() for line in record.read_text().splitlines()]

    [[_, _, pid]] = workers.wait(lines, timeout=20, what="the job to start")
    victim = next(w for w in started if w.pid == int(pid))
    survivor = next(w for w in started if w is not victim)
    [(worker_id,)] = query(
        "SELECT worker_id FROM procrastinate_jobs WHERE id = %s AND status = 'doing'",
        [job_id],
    )

    workers.kill(victim)
    # Its heartbeat stops; instead of waiting the 30 s after which
    # jobs_stalled_retry takes a worker for dead, move that heartbeat back.
    query(
        "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 minute'"
        " WHERE id = %s",
        [worker_id],
    )
    # The recovery the every-minute periodic job runs (the real task), deferred
    # now on the workers' queue rather than at the next minute's tick (whose
    # job, queued on "maintenance" at start-up, holds the task's queueing lock).
    jobs_stalled_retry.configure(
        queue=TEST_QUEUE, queueing_lock="tests.jobs_stalled_retry"
    ).defer(timestamp=int(time.time()))

    workers.wait(
        lambda: query(
            "SELECT 1 FROM procrastinate_jobs WHERE id = %s AND status = 'succeeded'",
            [job_id],
        ),
        timeout=20,
        what="the job to be rerun",
    )
    assert lines() == [
        ["start", str(job_id), str(victim.pid)],
        ["start", str(job_id), str(survivor.pid)],
        ["done", str(job_id), str(survivor.pid)],
    ]
    assert survivor.process.poll() is None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_job_with_bad_arguments_fails_at_once_and_is_not_retried(workers):
    unopenable = mail_send.defer(sealed="not-a-sealed-message")
    missing = mail_send.defer()
    worker = workers.start(queues=MAIL_QUEUE, env={"MAIL_RETRY_SECONDS": "1"})

    def finished():
        rows = job_rows("core.mail_send")
        done = all(status not in ("todo", "doing") for _, status, _ in rows)
        return rows if done else None

    workers.wait(finished, timeout=30, what="both jobs to finish")
    time.sleep(1.5)  # a retry (1 s wait, 0.3 s polls) would have started by now

    assert job_rows("core.mail_send") == [
        (unopenable, "failed", 1),
        (missing, "failed", 1),
    ]
    for job_id in (unopenable, missing):
        assert event_types(job_id) == ["deferred", "started", "failed"]
    # The worker's log says why, for each.
    log = worker.log()
    assert "MailSealError: The queued message cannot be opened." in log
    assert "missing 1 required keyword-only argument: 'sealed'" in log


@pytest.mark.django_db(transaction=True)
def test_without_a_worker_the_site_answers_and_keeps_queueing_mail(
    client, empty_queue, settings
):
    # /healthz shows the queue's details to callers presenting its token.
    settings.HEALTHZ_TOKEN = "jobs-test-token"
    client.defaults["HTTP_AUTHORIZATION"] = "Bearer jobs-test-token"
    emails = [f"queued-{n}-{uuid.uuid4().hex[:8]}@example.com" for n in range(5)]
    for n, email in enumerate(emails):
        response = client.post(
            "/accounts/login/", {"email": email}, REMOTE_ADDR=f"192.0.2.{n + 50}"
        )
        assert response.status_code == 200

    jobs = job_rows(MAGIC_LINK_TASK)
    assert [status for _, status, _ in jobs] == ["todo"] * 5
    assert client.get("/healthz").json()["queue"]["status"] == "ok"

    # Five minutes on, nobody has sent them: the queue is degraded, the site
    # still up (200).
    later = queue_health(now=dt.datetime.now(tz=dt.UTC) + MAIL_MAX_WAIT * 1.2)
    assert later.status == "degraded"
    query("UPDATE procrastinate_events SET at = at - interval '6 minutes'")
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert "oldest queued mail job" in body["queue"]["reasons"][0]
