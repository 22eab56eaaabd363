"""core's periodic jobs: registered with their schedule, and each runs the same
function as its management command."""

import datetime as dt
import re
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from procrastinate.contrib.django import app

from core import tasks
from core.backups import backups_in
from core.maintenance import VacuumResult
from core.models import AuditLog, SystemMetric
from core.services import AUDIT_LOG_RETENTION_DAYS, metric_prune
from tests.core.factories import AuditLogFactory, SystemMetricFactory
from tests.jobs import periodic_of
from tests.plans import plan_of

ROOT = Path(__file__).resolve().parents[2]
UTC = dt.UTC


# --- registration -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "cron", "heavy"),
    [
        (tasks.backup_db, "15 2 * * *", True),
        (tasks.db_health, "*/5 * * * *", False),
        (tasks.vacuum_analyze, "0 3 * * 0", True),
        (tasks.audit_log_prune, "0 4 1 * *", False),
        (tasks.metric_prune, "10 1 * * *", False),
        (tasks.jobs_prune, "40 1 * * *", False),
    ],
    ids=lambda value: getattr(value, "name", None),
)
def test_periodic_job_is_registered_with_its_schedule(task, cron, heavy):
    periodic = periodic_of(task)

    assert periodic.cron == cron
    assert periodic.periodic_id == task.name.removeprefix("core.")
    assert app.tasks[task.name] is task
    assert task.queue == tasks.MAINTENANCE_QUEUE == "maintenance"
    # One waiting job per task at most: a tick while one waits adds none.
    assert task.queueing_lock == task.name
    assert task.lock == ("core.maintenance-heavy" if heavy else None)


def test_backup_schedule_comes_from_settings():
    assert periodic_of(tasks.backup_db).cron == django_settings.BACKUP_SCHEDULE_CRON


def test_a_backup_schedule_that_is_not_cron_is_refused(settings):
    settings.BACKUP_SCHEDULE_CRON = "nightly"

    with pytest.raises(ImproperlyConfigured, match="BACKUP_SCHEDULE_CRON"):
        tasks._cron_setting("BACKUP_SCHEDULE_CRON")


def test_every_worker_listens_to_the_maintenance_queue():
    for procfile in (ROOT / "Procfile", ROOT / "config" / "Procfile.dev"):
        [worker] = [
            line
            for line in procfile.read_text().splitlines()
            if line.startswith("worker:")
        ]
        queues = re.search(r"--queues\s+(\S+)", worker).group(1).split(",")
        assert {"mail", "maintenance"} <= set(queues), procfile


# --- each task runs the command's work ----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_backup_job_dumps_verifies_and_prunes(tmp_path, settings, user):
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_DIR.mkdir()
    prefix = connection.settings_dict["NAME"]
    same_day_older = (
        settings.BACKUP_DIR / f"{prefix}-{dt.datetime.now(UTC):%Y%m%d}T000000Z.dump"
    )
    same_day_older.write_bytes(b"x")

    path = Path(tasks.backup_db(timestamp=0))

    assert [p for _, p in backups_in(settings.BACKUP_DIR, prefix)] == [path]
    assert not same_day_older.exists()
    entry = AuditLog.objects.get(action=AuditLog.Action.BACKUP)
    assert entry.changes["ok"] is True
    assert entry.changes["verified"] is True
    assert entry.changes["pruned"] == [same_day_older.name]


@pytest.mark.django_db
def test_db_health_job_records_the_commands_metric():
    # "degraded" (a late job queue) is reported, not failed.
    assert tasks.db_health(timestamp=0) != "error"

    metric = SystemMetric.objects.get(metric="db.response_time_ms")
    assert metric.tags == {"source": "db_health"}
    # And the connections in use, which the dashboard charts too.
    connections = SystemMetric.objects.get(metric="db.connections")
    assert connections.value >= 1


@pytest.mark.django_db
def test_db_health_job_fails_when_the_cache_fails(monkeypatch):
    import core.health

    monkeypatch.setattr(
        core.health, "check_cache", lambda: {"ok": False, "error": "down"}
    )

    with pytest.raises(tasks.MaintenanceJobFailed, match="Cache failed: down"):
        tasks.db_health(timestamp=0)
    assert SystemMetric.objects.filter(metric="db.response_time_ms").count() == 1


@pytest.mark.django_db(transaction=True)
def test_vacuum_job_vacuums_every_table():
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        tables = cursor.fetchone()[0]

    assert tasks.vacuum_analyze(timestamp=0) == tables


def test_vacuum_job_fails_when_a_table_failed(monkeypatch):
    import core.maintenance

    monkeypatch.setattr(
        core.maintenance,
        "vacuum_analyze",
        lambda **kw: [
            VacuumResult("public.a", 0.1),
            VacuumResult("public.b", 0.1, "lock timeout"),
        ],
    )

    with pytest.raises(tasks.MaintenanceJobFailed, match=r"public\.b: lock timeout"):
        tasks.vacuum_analyze(timestamp=0)


@pytest.mark.django_db
def test_audit_log_prune_job_deletes_rows_past_seven_years():
    now = timezone.now()
    old = AuditLogFactory(
        created_at=now - dt.timedelta(days=AUDIT_LOG_RETENTION_DAYS + 1)
    )
    kept = AuditLogFactory(created_at=now - dt.timedelta(days=365))

    assert tasks.audit_log_prune(timestamp=0) == 1

    assert list(AuditLog.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not AuditLog.objects.filter(pk=old.pk).exists()


# --- metric retention ---------------------------------------------------------------


def _metric(days_ago, now):
    return SystemMetricFactory(timestamp=now - dt.timedelta(days=days_ago))


@pytest.mark.django_db
def test_metric_prune_job_deletes_metrics_past_the_setting(settings):
    settings.METRIC_RETENTION_DAYS = 90
    now = timezone.now()
    old = [_metric(91, now), _metric(400, now)]
    kept = [_metric(89, now), _metric(0, now)]

    assert tasks.metric_prune(timestamp=0) == 2

    assert set(SystemMetric.objects.values_list("pk", flat=True)) == {
        m.pk for m in kept
    }
    assert not SystemMetric.objects.filter(pk__in=[m.pk for m in old]).exists()


@pytest.mark.django_db
def test_metric_prune_deletes_in_batches_until_done(django_assert_num_queries):
    now = timezone.now()
    for days in range(91, 96):
        _metric(days, now)
    kept = _metric(1, now)

    with django_assert_num_queries(3) as captured:
        assert metric_prune(days=90, now=now, batch_size=2) == 5

    # One DELETE per batch of at most 2 (2, 2, 1), each a statement of its own.
    for query in captured.captured_queries:
        assert query["sql"].startswith("DELETE FROM")
        assert "LIMIT 2" in query["sql"]
    assert list(SystemMetric.objects.values_list("pk", flat=True)) == [kept.pk]


@pytest.mark.django_db
def test_metric_prune_finds_old_rows_through_the_time_index():
    # A day of samples of a dozen metrics, and a backlog as old again: the
    # statistics production has, so no skip scan of the per-metric index ties
    # with the time index (see plan_of).
    now = timezone.now()
    SystemMetric.objects.bulk_create(
        SystemMetric(
            metric=f"metric.{n % 12}",
            value=n,
            timestamp=now - dt.timedelta(days=100 if n % 2 else 0, minutes=n),
        )
        for n in range(2_000)
    )
    with CaptureQueriesContext(connection) as captured:
        assert metric_prune(days=90, now=now) == 1_000

    plan = plan_of(captured.captured_queries[0]["sql"], analyze=SystemMetric)
    assert "systemmetric_time_idx" in plan, plan


# --- finished jobs ------------------------------------------------------------------


def _finished_job(status, days_ago, event=None):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, status) "
            "VALUES ('mail', 'core.mail_send', %s) RETURNING id",
            [status],
        )
        job_id = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO procrastinate_events (job_id, type, at) "
            "VALUES (%s, %s, now() - make_interval(days => %s))",
            [job_id, event or status, days_ago],
        )
    return job_id


def _jobs_left(ids):
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM procrastinate_jobs WHERE id = ANY(%s)", [ids])
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db
def test_jobs_prune_keeps_failed_jobs_longer_than_succeeded_ones(settings):
    settings.JOBS_RETENTION_DAYS = 30
    settings.JOBS_FAILED_RETENTION_DAYS = 90
    gone = {
        _finished_job("succeeded", 31),
        _finished_job("failed", 91),
        _finished_job("cancelled", 91),
        _finished_job("aborted", 91),
    }
    kept = {
        _finished_job("succeeded", 29),
        _finished_job("failed", 31),
        _finished_job("cancelled", 31),
        # Waiting for months (a far schedule_at) is not finished.
        _finished_job("todo", 400, event="deferred"),
    }

    async_to_sync(tasks.jobs_prune.func)(timestamp=0)

    assert _jobs_left(list(gone | kept)) == kept
