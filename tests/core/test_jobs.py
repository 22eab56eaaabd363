"""core.jobs: queue depth, the oldest queued mail job, periodic tasks' last
success, and the health rules built on them. Jobs are written the way
Procrastinate writes them (its SQL functions), inside the test's transaction;
``now`` is passed in to look at them later."""

import datetime as dt
import json

import pytest
from croniter import croniter
from django.db import connection

from core import jobs
from core.jobs import (
    MAIL_MAX_WAIT,
    cron_interval,
    duration_text,
    periodic_tasks,
    queue_health,
    queue_report,
)
from core.tasks import mail_send

pytestmark = pytest.mark.django_db

STALLED = "core.jobs_stalled_retry"  # every minute
STALLED_ID = "jobs_stalled_retry"


def sql(statement: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def queue_empty() -> None:
    """Start from an empty queue. Inside a test's transaction the rows come
    back with the rollback; what it removes is jobs committed by tests
    elsewhere (``transaction=True``), which would make these see a queue
    minutes behind."""
    sql("DELETE FROM procrastinate_periodic_defers")
    sql("DELETE FROM procrastinate_jobs")
    sql("DELETE FROM procrastinate_workers")


@pytest.fixture(autouse=True)
def _queue_empty(db):
    queue_empty()


def utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


def minute_tick(minutes_ago: int) -> int:
    """A tick of an every-minute cron, ``minutes_ago`` before the last one."""
    now = int(dt.datetime.now(tz=dt.UTC).timestamp())
    return now - now % 60 - 60 * minutes_ago


def mail_job() -> int:
    return mail_send.defer(sealed="sealed")


def job_defer(*, task: str = "core.mail_send", queue: str = "mail") -> int:
    [(job_id,)] = sql(
        "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(%s, %s, 0, NULL, NULL,"
        " '{}'::jsonb, NULL)]::procrastinate_job_to_defer_v1[]))",
        [queue, task],
    )
    return job_id


def periodic_defer(tick: int, *, task: str = STALLED, periodic_id=STALLED_ID) -> int:
    """What a worker's periodic deferrer does for ``tick``."""
    [(job_id,)] = sql(
        "SELECT procrastinate_defer_periodic_job_v2('maintenance', NULL, NULL, %s, 0,"
        " %s, %s, %s::jsonb)",
        [task, periodic_id, tick, json.dumps({"timestamp": tick})],
    )
    return job_id


def job_finish(job_id: int, status: str, *, at: dt.datetime | None = None) -> None:
    """A worker fetching the job and ending it ``status`` (at ``at``)."""
    sql("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", [job_id])
    sql("SELECT procrastinate_finish_job_v1(%s, %s, false)", [job_id, status])
    if at is not None:
        sql(
            "UPDATE procrastinate_events SET at = %s WHERE job_id = %s AND type = %s",
            [at, job_id, status],
        )


def deferred_at(job_id: int, at: dt.datetime) -> None:
    sql(
        "UPDATE procrastinate_events SET at = %s WHERE job_id = %s"
        " AND type = 'deferred'",
        [at, job_id],
    )


def stalled_status(health):
    return next(p for p in health.periodic if p.task_name == STALLED)


# --- schedules ----------------------------------------------------------------------


def test_periodic_tasks_are_read_from_procrastinates_registry():
    found = {(p.task.name, p.periodic_id): p.cron for p in periodic_tasks()}

    assert found[(STALLED, STALLED_ID)] == "* * * * *"


@pytest.mark.parametrize(
    ("cron", "at", "expected"),
    [
        ("* * * * *", "2025-03-05 10:00:30", dt.timedelta(minutes=1)),
        ("* * * * *", "2025-03-05 10:00:00", dt.timedelta(minutes=1)),
        ("0 3 * * *", "2025-03-05 10:00:00", dt.timedelta(days=1)),
        ("* * * * * */2", "2025-03-05 10:00:01", dt.timedelta(seconds=2)),
        # Weekdays at 03:00, seen on a Saturday: the weekend gap.
        ("0 3 * * 1-5", "2025-03-08 12:00:00", dt.timedelta(days=3)),
    ],
)
def test_cron_interval(cron, at, expected):
    when = dt.datetime.fromisoformat(at).replace(tzinfo=dt.UTC)

    assert cron_interval(cron, at=when) == expected


@pytest.mark.parametrize(
    "cron", ["* * * * *", "*/5 * * * *", "0 3 * * 1-5", "15 2 * * *", "30 * * * *"]
)
def test_cron_interval_is_the_same_for_every_moment_of_a_minute(cron):
    # cron_interval remembers five-field schedules per minute; the answer must
    # be croniter's for any second of it, a tick's own instant included.
    from core.jobs import _interval

    start = dt.datetime(2025, 3, 8, 2, 10, tzinfo=dt.UTC)
    minutes = [start + dt.timedelta(minutes=m) for m in range(0, 7 * 24 * 60, 37)]
    # Each tick's own instant too, where the answer changes within the minute
    # (Friday 03:00:00 looks back to Thursday, 03:00:30 to Friday).
    tick = croniter(cron, start)
    minutes += [tick.get_next(dt.datetime) for _ in range(20)]
    for minute in minutes:
        for second in (0, 1, 30, 59.999):
            at = minute + dt.timedelta(seconds=second)
            assert cron_interval(cron, at=at) == _interval(cron, at), (cron, at)


def test_duration_text():
    assert duration_text(dt.timedelta(seconds=45)) == "45 s"
    assert duration_text(dt.timedelta(seconds=60)) == "1 min"
    assert duration_text(dt.timedelta(seconds=121)) == "2 min 1 s"
    assert duration_text(dt.timedelta(minutes=6)) == "6 min"
    assert duration_text(dt.timedelta(minutes=60)) == "1 h"
    assert duration_text(dt.timedelta(hours=2, minutes=5)) == "2 h 5 min"
    assert duration_text(dt.timedelta(days=3)) == "3 days"


# --- health ---------------------------------------------------------------------------


def test_a_fresh_install_is_ok_and_no_periodic_task_is_judged_before_its_first_tick():
    health = queue_health()

    assert health.status == "ok"
    assert health.reasons == []
    assert health.oldest_mail is None
    stalled = stalled_status(health)
    assert stalled.last_tick is None
    assert stalled.overdue is False
    assert "not deferred yet" in stalled.note


def test_a_mail_job_queued_more_than_five_minutes_degrades_the_queue():
    first = mail_job()
    mail_job()
    now = dt.datetime.now(tz=dt.UTC)

    assert queue_health(now=now + MAIL_MAX_WAIT - dt.timedelta(seconds=5)).status == (
        "ok"
    )
    later = queue_health(now=now + MAIL_MAX_WAIT + dt.timedelta(minutes=1))

    assert later.status == "degraded"
    assert later.oldest_mail.id == first
    assert later.reasons == [
        f"the oldest queued mail job (#{first}) has waited 6 min (more than 5 min)"
    ]
    assert later.as_dict()["oldest_mail_job_age_s"] >= 360


def test_a_mail_job_waiting_for_a_retry_still_counts_as_queued():
    job_id = mail_job()
    sql("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", [job_id])
    sql(
        "SELECT procrastinate_retry_job_v2(%s, now() + interval '1 hour', NULL, NULL,"
        " NULL)",
        [job_id],
    )
    now = dt.datetime.now(tz=dt.UTC)

    health = queue_health(now=now + dt.timedelta(minutes=10))

    assert health.status == "degraded"
    assert health.oldest_mail.id == job_id
    assert health.oldest_mail.attempts == 1


def test_finished_mail_jobs_and_other_queues_do_not_count():
    job_finish(mail_job(), "failed")
    job_finish(mail_job(), "succeeded")
    job_defer(task="core.other", queue="maintenance")

    health = queue_health(now=dt.datetime.now(tz=dt.UTC) + dt.timedelta(hours=1))

    assert health.oldest_mail is None
    assert health.status == "ok"


def test_a_periodic_job_is_late_two_intervals_after_its_last_success():
    tick = minute_tick(5)
    job_finish(periodic_defer(tick), "succeeded", at=utc(tick + 1))

    on_time = queue_health(now=utc(tick + 1 + 119))
    late = queue_health(now=utc(tick + 1 + 121))

    assert on_time.status == "ok"
    assert stalled_status(on_time).last_success == utc(tick + 1)
    assert late.status == "degraded"
    stalled = stalled_status(late)
    assert stalled.overdue is True
    assert stalled.interval == dt.timedelta(minutes=1)
    assert len(late.reasons) == 1
    assert late.reasons[0].startswith(
        f"periodic job {STALLED} ({STALLED_ID}) has not succeeded for 2 min 1 s"
    )
    [shown] = [p for p in late.as_dict()["periodic"] if p["task"] == STALLED]
    assert shown["overdue"] is True
    assert shown["last_success"] == utc(tick + 1).isoformat()


def test_while_a_tick_runs_the_previous_success_counts():
    first = minute_tick(2)
    job_finish(periodic_defer(first), "succeeded", at=utc(first + 2))
    running = periodic_defer(first + 60)
    sql("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", [running])

    health = queue_health(now=utc(first + 70))

    stalled = stalled_status(health)
    assert stalled.last_job_id == running
    assert stalled.last_job_status == "doing"
    assert stalled.last_success == utc(first + 2)
    assert health.status == "ok"
    assert queue_health(now=utc(first + 2 + 121)).status == "degraded"


def test_a_periodic_job_that_never_succeeded_is_late_two_intervals_after_first_tick():
    first = minute_tick(3)
    job_finish(periodic_defer(first), "failed")
    job_finish(periodic_defer(first + 60), "failed")

    # The first tick's job failed: not late yet (a fresh install gets its
    # two intervals).
    assert queue_health(now=utc(first + 30)).status == "ok"
    late = queue_health(now=utc(first + 125))

    stalled = stalled_status(late)
    assert stalled.last_success is None
    assert stalled.last_job_status == "failed"
    assert stalled.overdue is True
    assert f"no success since its tick of {utc(first):%Y-%m-%d %H:%M}" in stalled.note


def test_a_removed_job_row_counts_as_a_success_at_its_tick():
    tick = minute_tick(1)
    job_id = periodic_defer(tick)
    # A worker run with --delete-jobs successful (or retention) removes it.
    sql("DELETE FROM procrastinate_jobs WHERE id = %s", [job_id])

    stalled = stalled_status(queue_health(now=utc(tick + 30)))

    assert stalled.last_job_id is None
    assert stalled.last_success == utc(tick)
    assert stalled.success_approximate is True
    assert stalled.overdue is False


def test_a_stopped_worker_shows_as_overdue_periodic_jobs():
    tick = minute_tick(10)
    job_finish(periodic_defer(tick), "succeeded", at=utc(tick + 1))
    # Nothing deferred since: no worker runs the periodic deferrer.

    health = queue_health()

    assert health.status == "degraded"
    assert stalled_status(health).overdue is True


# --- dashboard report ---------------------------------------------------------------


def test_queue_report_counts_ready_waiting_and_running_jobs_by_queue():
    mail_job()
    mail_job()
    running = mail_job()
    sql("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", [running])
    waiting = mail_job()
    sql(
        "UPDATE procrastinate_jobs SET scheduled_at = now() + interval '1 hour'"
        " WHERE id = %s",
        [waiting],
    )
    job_defer(task="core.other", queue="maintenance")
    job_finish(job_defer(task="core.other", queue="maintenance"), "succeeded")

    report = queue_report()

    assert report.depth == [
        {"queue_name": "mail", "ready": 2, "scheduled": 1, "doing": 1},
        {"queue_name": "maintenance", "ready": 1, "scheduled": 0, "doing": 0},
    ]
    assert report.depth_total == 5
    assert report.depth_capped is False
    assert report.health.status == "ok"


def test_queue_report_says_when_the_backlog_passes_the_cap(monkeypatch):
    monkeypatch.setattr(jobs, "DEPTH_CAP", 3)
    for _ in range(4):
        mail_job()

    report = queue_report()

    assert report.depth_total == 3
    assert report.depth_capped is True


def test_queue_report_estimates_totals_by_status_from_the_planners_statistics():
    for _ in range(3):
        job_finish(mail_job(), "succeeded")
    job_finish(mail_job(), "failed")
    sql("ANALYZE procrastinate_jobs")

    totals = {
        row["status"]: row["estimated_rows"] for row in queue_report().estimated_totals
    }

    assert totals.get("succeeded", 0) >= 1
    assert set(totals) <= {"todo", "doing", "succeeded", "failed", "cancelled"}


def test_queue_report_counts_live_workers():
    sql("INSERT INTO procrastinate_workers DEFAULT VALUES")
    sql(
        "INSERT INTO procrastinate_workers (last_heartbeat)"
        " VALUES (now() - interval '5 minutes')"
    )

    report = queue_report()

    assert (report.workers_alive, report.workers_registered) == (1, 2)


# --- cost -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        (jobs.OLDEST_QUEUED_SQL, ["mail"]),
        (jobs.DEPTH_SQL, [jobs.DEPTH_CAP]),
        (jobs.PERIODIC_SQL, {"lookback": jobs.LOOKBACK_JOBS}),
    ],
    ids=["oldest-queued", "depth", "periodic"],
)
def test_queue_reads_can_be_served_by_indexes(statement, params):
    """With sequential scans priced out, the plan still reads the jobs and
    events tables through an index: one exists for every read (on a small
    table the planner may prefer a scan, on a big one it has the choice)."""
    periodic_defer(minute_tick(1))
    mail_job()
    sql("SET LOCAL enable_seqscan = off")

    plan = "\n".join(row[0] for row in sql("EXPLAIN " + statement, params))

    assert "Seq Scan on procrastinate_jobs" not in plan, plan
    assert "Seq Scan on procrastinate_events" not in plan, plan


@pytest.mark.django_db
def test_the_jobs_table_is_analysed_after_every_thousand_changes():
    """Stale statistics make Procrastinate's fetch scan the whole queue."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reloptions FROM pg_class WHERE relname = 'procrastinate_jobs'"
        )
        [options] = cursor.fetchone()

    assert "autovacuum_analyze_scale_factor=0.0" in options
    assert "autovacuum_analyze_threshold=1000" in options
