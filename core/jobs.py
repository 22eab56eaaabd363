"""What the job queue is doing: reads of Procrastinate's tables for /healthz,
``manage.py db_health`` and the database dashboard. No writes, no app imports.

The jobs table keeps every job ever run (until a retention job prunes it), so
nothing here counts it whole. Each read goes through an index Procrastinate
ships, or is bounded:

- queue depth: the ``todo``/``doing`` rows, through the partial index
  ``procrastinate_jobs_id_lock_idx_v1``, at most :data:`DEPTH_CAP` rows;
- the oldest queued job of a queue: the first row of that index in id order;
- periodic tasks: ``procrastinate_periodic_defers`` keeps one row per task
  (each defer deletes the older ticks); the last success is found by walking
  the primary key back from the latest tick's job, :data:`LOOKBACK_JOBS` ids
  at most;
- totals by status: the planner's statistics (``pg_stats``), never a COUNT.

Health (:func:`queue_health`) is ``degraded`` when the oldest queued mail job
has waited more than :data:`MAIL_MAX_WAIT` since it was deferred (one waiting
for a retry counts: the mail has not left), or a periodic task has not
succeeded within :data:`OVERDUE_INTERVALS` of its intervals (the gap between
its cron's ticks around now).

A periodic task is judged from its first tick on: one never deferred (a fresh
install, a task added by a deploy whose first tick has not come, no worker
started yet) is not late, so a new install does not start degraded. Once
deferred, the clock runs from its last success or, when none is in reach, from
its first tick in reach; a stopped worker then shows within two intervals,
since nothing defers new ticks. Limits of the bounded reads: a latest tick
whose job row is gone (``--delete-jobs successful``, or ``core.jobs_prune``)
counts as a success at that tick; a site deferring more than
:data:`LOOKBACK_JOBS` jobs between two runs of a task cannot see that task's
older runs, so a task failing run after run is then judged from its latest
tick only (the failures still show in the admin's failed jobs).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache

from croniter import croniter
from django.db import connections, transaction
from django.utils import timezone
from procrastinate.contrib.django import app

from core.mail import MAIL_QUEUE

# The oldest queued mail job may wait this long before the queue is degraded:
# a sign-in link that has not left after 5 minutes is a sign-in that failed.
MAIL_MAX_WAIT = dt.timedelta(minutes=5)
# A periodic task is late when it has not succeeded within this many intervals.
OVERDUE_INTERVALS = 2
# How far back (in job ids) the last success of a periodic task is looked for.
LOOKBACK_JOBS = 10_000
# Queued and running jobs counted at most (a backlog beyond shows as "at least").
DEPTH_CAP = 100_000
# A worker beats every 10 s; one silent for 30 s is taken as dead (core.tasks).
WORKER_ALIVE_SECONDS = 30


@dataclass(frozen=True)
class QueuedJob:
    id: int
    task_name: str
    attempts: int
    deferred_at: dt.datetime | None
    scheduled_at: dt.datetime | None

    def age(self, now: dt.datetime) -> dt.timedelta | None:
        return None if self.deferred_at is None else now - self.deferred_at


@dataclass(frozen=True)
class PeriodicStatus:
    task_name: str
    periodic_id: str
    cron: str
    interval: dt.timedelta
    # The latest tick deferred, and its job (None: never deferred, or the job
    # row was removed since).
    last_tick: dt.datetime | None
    last_job_id: int | None
    last_job_status: str | None
    last_success: dt.datetime | None
    # True when last_success is the tick of a job whose row is gone (a worker
    # run with --delete-jobs successful, or retention): it succeeded, about then.
    success_approximate: bool
    overdue: bool
    note: str

    @property
    def late_after(self) -> dt.timedelta:
        return OVERDUE_INTERVALS * self.interval

    @property
    def interval_text(self) -> str:
        return duration_text(self.interval)

    @property
    def late_after_text(self) -> str:
        return duration_text(self.late_after)


@dataclass
class QueueHealth:
    status: str  # "ok" or "degraded"
    reasons: list[str]
    checked_at: dt.datetime
    oldest_mail: QueuedJob | None
    periodic: list[PeriodicStatus]

    @property
    def oldest_mail_age(self) -> dt.timedelta | None:
        return self.oldest_mail.age(self.checked_at) if self.oldest_mail else None

    def as_dict(self) -> dict:
        """The JSON /healthz shows (public: names and times, no arguments)."""
        age = self.oldest_mail_age
        return {
            "status": self.status,
            "reasons": self.reasons,
            "oldest_mail_job_age_s": None
            if age is None
            else round(age.total_seconds()),
            "periodic": [
                {
                    "task": p.task_name,
                    "periodic_id": p.periodic_id,
                    "cron": p.cron,
                    "last_success": p.last_success.isoformat()
                    if p.last_success
                    else None,
                    "overdue": p.overdue,
                }
                for p in self.periodic
            ],
        }


@dataclass
class QueueReport:
    """The dashboard's "Job queue" section."""

    health: QueueHealth
    depth: list[dict] = field(default_factory=list)
    depth_capped: bool = False
    estimated_totals: list[dict] = field(default_factory=list)
    workers_alive: int = 0
    workers_registered: int = 0

    @property
    def depth_total(self) -> int:
        return sum(row["ready"] + row["scheduled"] + row["doing"] for row in self.depth)


# --- schedules ----------------------------------------------------------------------


def periodic_tasks() -> list:
    """The periodic tasks registered on the app (Procrastinate's registry),
    sorted by task name."""
    tasks = app.periodic_registry.periodic_tasks.values()
    return sorted(tasks, key=lambda p: (p.task.name, p.periodic_id))


def cron_interval(cron: str, *, at: dt.datetime) -> dt.timedelta:
    """The gap between the last tick of ``cron`` at or before ``at`` and the
    one after it (constant for ``*/5 * * * *``; for a weekday schedule the
    weekend gap on a Saturday)."""
    if len(cron.split()) != 5:  # a seconds field (Procrastinate allows one)
        return _interval(cron, at)
    # A five-field schedule ticks on whole minutes, so every moment inside a
    # minute has the same answer (its start, exactly on a tick, is its own
    # case): /healthz judges every periodic task on each probe, and expanding
    # the cron schedules was a third of its Python time.
    minute = at.replace(second=0, microsecond=0)
    return _minute_interval(cron, minute, at == minute)


@lru_cache(maxsize=512)
def _minute_interval(cron: str, minute: dt.datetime, on_minute: bool) -> dt.timedelta:
    return _interval(cron, minute if on_minute else minute + dt.timedelta(seconds=1))


def _interval(cron: str, at: dt.datetime) -> dt.timedelta:
    previous = croniter(cron, at).get_prev(dt.datetime)
    return croniter(cron, previous).get_next(dt.datetime) - previous


def duration_text(delta: dt.timedelta) -> str:
    """``45 s``, ``2 min 1 s``, ``6 min``, ``1 h``, ``2 h 5 min``, ``3 days``:
    for reasons and pages."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 10 and rest:
        return f"{minutes} min {rest} s"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


# --- reads --------------------------------------------------------------------------


def _rows(cursor) -> list[dict]:
    names = [col.name for col in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _from_timestamp(value: int | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromtimestamp(value, tz=dt.UTC)


# The first row of procrastinate_jobs_id_lock_idx_v1 (status todo/doing, in id
# order) for the queue; ids grow with time, so it is the longest waiting.
OLDEST_QUEUED_SQL = """
    SELECT j.id, j.task_name, j.attempts, j.scheduled_at,
        (SELECT min(e.at) FROM procrastinate_events e
          WHERE e.job_id = j.id AND e.type = 'deferred') AS deferred_at
    FROM procrastinate_jobs j
    WHERE j.status = 'todo' AND j.queue_name = %s
    ORDER BY j.id
    LIMIT 1
"""


def oldest_queued(cursor, queue: str) -> QueuedJob | None:
    """The job of ``queue`` waiting longest to run (including one waiting for
    a retry: a mail that keeps failing is a mail that has not left)."""
    cursor.execute(OLDEST_QUEUED_SQL, [queue])
    rows = _rows(cursor)
    return QueuedJob(**rows[0]) if rows else None


# One row per periodic task ever deferred: its latest tick, that job's status,
# and the last succeeded job of the task at or before it (a backward walk of
# the primary key, LOOKBACK ids at most; it stops at the first match, which is
# the latest job itself when that succeeded). The first known tick is only
# looked up for a task with no success in reach (CASE runs the sub-select only
# then).
PERIODIC_SQL = """
    WITH latest AS (
        SELECT DISTINCT ON (task_name, periodic_id)
            task_name, periodic_id, defer_timestamp, job_id
        FROM procrastinate_periodic_defers
        ORDER BY task_name, periodic_id, defer_timestamp DESC
    )
    SELECT l.task_name, l.periodic_id, l.defer_timestamp, l.job_id,
        j.status::text AS job_status,
        (SELECT max(e.at) FROM procrastinate_events e
          WHERE e.job_id = ok.id AND e.type = 'succeeded') AS succeeded_at,
        CASE WHEN ok.id IS NULL AND l.job_id IS NOT NULL THEN (
            SELECT (f.args ->> 'timestamp')::bigint FROM procrastinate_jobs f
            WHERE f.task_name = l.task_name
              AND f.id > l.job_id - %(lookback)s AND f.id <= l.job_id
            ORDER BY f.id LIMIT 1
        ) END AS first_tick
    FROM latest l
    LEFT JOIN procrastinate_jobs j ON j.id = l.job_id
    LEFT JOIN LATERAL (
        SELECT s.id FROM procrastinate_jobs s
        WHERE s.task_name = l.task_name AND s.status = 'succeeded'
          AND s.id > l.job_id - %(lookback)s AND s.id <= l.job_id
        ORDER BY s.id DESC LIMIT 1
    ) ok ON true
"""


def periodic_statuses(cursor, *, now: dt.datetime) -> list[PeriodicStatus]:
    """Each registered periodic task with its schedule, latest tick and last
    success, judged against ``now`` (see the module's docstring)."""
    registered = periodic_tasks()
    if not registered:
        return []
    cursor.execute(PERIODIC_SQL, {"lookback": LOOKBACK_JOBS})
    found = {(row["task_name"], row["periodic_id"]): row for row in _rows(cursor)}
    return [
        _periodic_status(
            periodic, found.get((periodic.task.name, periodic.periodic_id)), now
        )
        for periodic in registered
    ]


def _periodic_status(periodic, row: dict | None, now: dt.datetime) -> PeriodicStatus:
    interval = cron_interval(periodic.cron, at=now)
    status = {
        "task_name": periodic.task.name,
        "periodic_id": periodic.periodic_id,
        "cron": periodic.cron,
        "interval": interval,
        "last_tick": None,
        "last_job_id": None,
        "last_job_status": None,
        "last_success": None,
        "success_approximate": False,
        "overdue": False,
    }
    if row is None:
        return PeriodicStatus(
            **status, note="not deferred yet: judged from its first tick"
        )
    last_tick = _from_timestamp(row["defer_timestamp"])
    status.update(
        last_tick=last_tick,
        last_job_id=row["job_id"],
        last_job_status=row["job_status"],
        last_success=row["succeeded_at"],
    )
    note = ""
    if row["job_id"] is None:
        # Unlinked by Procrastinate when the job row was deleted, which only
        # happens to finished jobs here (--delete-jobs successful, retention).
        status.update(last_success=last_tick, success_approximate=True)
        note = "the latest job's row was removed; taken as succeeded at its tick"
    since = status["last_success"] or _from_timestamp(row["first_tick"]) or last_tick
    late_after = OVERDUE_INTERVALS * interval
    if since is not None and now - since > late_after:
        status["overdue"] = True
        when = f"{since:%Y-%m-%d %H:%M} UTC"
        if status["last_success"]:
            what = f"last succeeded {when}"
        else:
            what = f"no success since its tick of {when}"
        note = (
            f"has not succeeded for {duration_text(now - since)} ({what}); runs "
            f"every {duration_text(interval)}, late after {duration_text(late_after)}"
        )
    return PeriodicStatus(**status, note=note)


def _judge(
    *, now: dt.datetime, oldest_mail: QueuedJob | None, periodic: list
) -> QueueHealth:
    reasons = []
    age = oldest_mail.age(now) if oldest_mail else None
    if age is not None and age > MAIL_MAX_WAIT:
        reasons.append(
            f"the oldest queued mail job (#{oldest_mail.id}) has waited "
            f"{duration_text(age)} (more than {duration_text(MAIL_MAX_WAIT)})"
        )
    for status in periodic:
        if status.overdue:
            label = status.task_name
            if status.periodic_id:
                label += f" ({status.periodic_id})"
            reasons.append(f"periodic job {label} {status.note}")
    return QueueHealth(
        status="degraded" if reasons else "ok",
        reasons=reasons,
        checked_at=now,
        oldest_mail=oldest_mail,
        periodic=periodic,
    )


def queue_health(*, now: dt.datetime | None = None, using: str = "default"):
    """The queue's health for /healthz and ``db_health``: two indexed reads
    (the oldest queued mail job, the periodic tasks' latest ticks).

    Raises ``DatabaseError`` when the tables cannot be read; the reads run in a
    savepoint, so a surrounding transaction survives that.
    """
    now = now or timezone.now()
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        oldest_mail = oldest_queued(cursor, MAIL_QUEUE)
        periodic = periodic_statuses(cursor, now=now)
    return _judge(now=now, oldest_mail=oldest_mail, periodic=periodic)


# Per queue: ready to run, waiting for a retry (scheduled later), running;
# through procrastinate_jobs_id_lock_idx_v1 (status todo/doing), capped.
DEPTH_SQL = """
    SELECT queue_name,
        count(*) FILTER (WHERE status = 'todo'
            AND (scheduled_at IS NULL OR scheduled_at <= now())) AS ready,
        count(*) FILTER (WHERE status = 'todo' AND scheduled_at > now()) AS scheduled,
        count(*) FILTER (WHERE status = 'doing') AS doing
    FROM (
        SELECT queue_name, status, scheduled_at FROM procrastinate_jobs
        WHERE status IN ('todo', 'doing')
        LIMIT %s
    ) capped
    GROUP BY queue_name
    ORDER BY queue_name
"""

# Workers (a handful of rows) and the planner's row estimates by status.
STATS_SQL = """
    SELECT
        (SELECT count(*) FROM procrastinate_workers
          WHERE last_heartbeat > now() - make_interval(secs => %s)) AS alive,
        (SELECT count(*) FROM procrastinate_workers) AS registered,
        c.reltuples AS reltuples,
        s.most_common_vals::text::text[] AS statuses,
        s.most_common_freqs AS freqs
    FROM pg_class c
    LEFT JOIN pg_stats s ON s.schemaname = current_schema()
        AND s.tablename = 'procrastinate_jobs' AND s.attname = 'status'
    WHERE c.oid = 'procrastinate_jobs'::regclass
"""


def queue_report(*, now: dt.datetime | None = None, using: str = "default"):
    """Everything the dashboard shows about the queue, in four reads."""
    now = now or timezone.now()
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(DEPTH_SQL, [DEPTH_CAP])
        depth = _rows(cursor)
        cursor.execute(STATS_SQL, [WORKER_ALIVE_SECONDS])
        stats = _rows(cursor)[0]
        oldest_mail = oldest_queued(cursor, MAIL_QUEUE)
        periodic = periodic_statuses(cursor, now=now)
    counted = sum(row["ready"] + row["scheduled"] + row["doing"] for row in depth)
    totals = []
    if stats["statuses"] and stats["reltuples"] > 0:
        totals = [
            {"status": status, "estimated_rows": round(freq * stats["reltuples"])}
            for status, freq in zip(stats["statuses"], stats["freqs"], strict=True)
        ]
    return QueueReport(
        health=_judge(now=now, oldest_mail=oldest_mail, periodic=periodic),
        depth=depth,
        depth_capped=counted >= DEPTH_CAP,
        estimated_totals=totals,
        workers_alive=stats["alive"],
        workers_registered=stats["registered"],
    )
