"""Platform jobs (Procrastinate). Tasks are thin: they call a function of core
with plain arguments and are safe to run twice. Periodic tasks carry their
schedule next to them; a periodic task runs once per tick however many workers
run (Procrastinate records each tick's defer under a unique key)."""

from __future__ import annotations

import logging

from croniter import croniter
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from procrastinate.contrib.django import app

from core import (
    backup_storage,
    backups,
    health,
    maintenance,
    pitr,
    pitr_offsite,
    services,
)
from core.mail import MAIL_QUEUE, MailRetry, mail_deliver

MAINTENANCE_QUEUE = "maintenance"

logger = logging.getLogger(__name__)


@app.task(queue=MAIL_QUEUE, retry=MailRetry(), name="core.mail_send")
def mail_send(*, sealed: str) -> None:
    """Send one message queued by :func:`core.mail.mail_enqueue`."""
    mail_deliver(sealed=sealed)


@app.periodic(cron="* * * * *", periodic_id="jobs_stalled_retry")
@app.task(
    queue=MAINTENANCE_QUEUE,
    queueing_lock="core.jobs_stalled_retry",
    name="core.jobs_stalled_retry",
)
async def jobs_stalled_retry(timestamp: int) -> int:
    """Requeue jobs whose worker stopped sending heartbeats (killed, host
    lost): Procrastinate leaves them ``doing`` forever otherwise. A worker
    beats every 10 s; one silent for 30 s is taken as dead."""
    retried = 0
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=30):
        await app.job_manager.retry_job(job)
        retried += 1
    return retried


# --- The maintenance schedule (README "Background jobs"; times in UTC) -------------
# Each job has a queueing lock: while one tick's job still waits, the next tick
# adds none. Jobs that read the whole database (backup, VACUUM) also share a
# lock, so they never run at the same time on any worker.
HEAVY_LOCK = "core.maintenance-heavy"


class MaintenanceJobFailed(Exception):
    """A maintenance job whose work reported a failure: the job ends *failed*
    (logged as an error, kept in the admin) as the command would exit 1."""


def _cron_setting(name: str) -> str:
    """A schedule from settings, refused at import when it is not a cron
    expression: the worker would otherwise fail only when it computes a tick."""
    cron = getattr(settings, name)
    if not croniter.is_valid(cron):
        raise ImproperlyConfigured(f"{name} is not a cron expression: {cron!r}")
    return cron


# Procrastinate reads a schedule when the task is registered (this module's
# import, after settings are configured), so a new BACKUP_SCHEDULE_CRON takes
# effect when the worker restarts.
@app.periodic(cron=_cron_setting("BACKUP_SCHEDULE_CRON"), periodic_id="backup_db")
@app.task(
    queue=MAINTENANCE_QUEUE,
    queueing_lock="core.backup_db",
    lock=HEAVY_LOCK,
    name="core.backup_db",
)
def backup_db(timestamp: int) -> str:
    """``manage.py backup_db --verify``: dump, verify the new file, then apply
    retention (30 daily, 12 weekly, 12 monthly). A failed dump or verification
    fails the job and prunes nothing; a second run the same day only adds a
    file that retention later drops."""
    result = backups.backup_create(prune=True, verify=True)
    return str(result.path)


@app.periodic(
    cron=_cron_setting("BASE_BACKUP_SCHEDULE_CRON"), periodic_id="base_backup"
)
@app.task(
    queue=MAINTENANCE_QUEUE,
    queueing_lock="core.base_backup",
    lock=HEAVY_LOCK,
    name="core.base_backup",
)
def base_backup(timestamp: int) -> str:
    """``manage.py backup_db --base``: pg_basebackup + pg_verifybackup of the
    embedded cluster for point-in-time restore, then keep the last
    ``BASE_BACKUP_KEEP`` and the archived WAL they need. On an external server
    (DATABASE_URL) there is nothing this app can archive: the job logs that
    and succeeds (README "Backups, restore, verification")."""
    if not pitr.embedded_server():
        logger.warning("base_backup skipped: %s", pitr.README_POINTER)
        return "skipped: external server"
    return str(pitr.base_backup_create(prune=True).backup.path)


@app.periodic(
    cron=_cron_setting("PITR_VERIFY_SCHEDULE_CRON"), periodic_id="pitr_verify"
)
@app.task(
    queue=MAINTENANCE_QUEUE,
    queueing_lock="core.pitr_verify",
    lock=HEAVY_LOCK,
    name="core.pitr_verify",
)
def pitr_verify(timestamp: int) -> str:
    """``manage.py verify_backup --point-in-time`` (``--from-storage`` when
    BACKUP_STORAGE_URL is set: the path a lost machine takes): the weekly
    restore drill. A drill that fails fails the job (and /healthz's schedule
    check); its time is the ``backup.pitr_verify_seconds`` metric. Skipped on
    an external server and before the first base backup."""
    if not pitr.embedded_server():
        return "skipped: external server"
    from_storage = backup_storage.storage_enabled()
    if not from_storage and not pitr.base_backups():
        return "skipped: no base backup yet"
    result = pitr.pitr_verify(from_storage=from_storage)
    if not result.ok:
        raise MaintenanceJobFailed(
            "Point-in-time restore drill failed: " + "; ".join(result.problems)
        )
    return f"{result.source}: {result.seconds:.1f} s"


@app.periodic(cron="* * * * *", periodic_id="wal_ship")
@app.task(
    queue=MAINTENANCE_QUEUE,
    queueing_lock="core.wal_ship",
    # One upload at a time, and never behind an hour-long backup (HEAVY_LOCK).
    lock="core.wal_ship",
    name="core.wal_ship",
)
def wal_ship(timestamp: int) -> int:
    """``manage.py backup_db --ship-wal``: encrypt what the server archived
    (BACKUP_ENCRYPTION_KEY) and upload the archived WAL not yet in
    BACKUP_STORAGE_URL (core.pitr_offsite), so a lost machine can be recovered
    to within about two minutes. Nothing to do without either setting or on an
    external server; an upload that fails fails the job, and the next minute's
    run carries on from the first file not shipped."""
    if not pitr.embedded_server():
        return 0
    return len(pitr_offsite.wal_ship().shipped)


@app.periodic(cron="*/5 * * * *", periodic_id="db_health")
@app.task(
    queue=MAINTENANCE_QUEUE, queueing_lock="core.db_health", name="core.db_health"
)
def db_health(timestamp: int) -> str:
    """``manage.py db_health``: check the database and the cache and record the
    response time and connections in use as the ``db.response_time_ms`` and
    ``db.connections`` metrics (the rows the command writes; the dashboard
    charts them). An unreachable database or a failed cache fails the job;
    warnings (connections nearly used up…) are logged and the status returned."""
    report = health.health_report()
    database = report["database"]
    if database["connected"]:
        services.health_metrics_record(
            database=database, source="db_health", replica=report.get("replica")
        )
    if not database["connected"]:
        raise MaintenanceJobFailed(
            f"Database unreachable: {database.get('error', 'error')}"
        )
    if not report["cache"]["ok"]:
        raise MaintenanceJobFailed(
            f"Cache failed: {report['cache'].get('error', 'no echo')}"
        )
    for warning in report["warnings"]:
        logger.warning("db_health: %s", warning)
    return report["status"]


@app.periodic(cron="0 3 * * 0", periodic_id="vacuum_analyze")
@app.task(
    queue=MAINTENANCE_QUEUE,
    queueing_lock="core.vacuum_analyze",
    lock=HEAVY_LOCK,
    name="core.vacuum_analyze",
)
def vacuum_analyze(timestamp: int) -> int:
    """``manage.py vacuum_analyze``: ``VACUUM (ANALYZE)`` every table, Sunday
    night after the week's retention deletes. Returns the number of tables; any
    table that failed fails the job (the others are still vacuumed)."""
    results = maintenance.vacuum_analyze()
    failed = [f"{r.table}: {r.error}" for r in results if r.error]
    if failed:
        raise MaintenanceJobFailed(
            f"VACUUM failed on {len(failed)} table(s): " + "; ".join(failed)
        )
    return len(results)


@app.periodic(cron="0 4 1 * *", periodic_id="audit_log_prune")
@app.task(
    queue=MAINTENANCE_QUEUE,
    queueing_lock="core.audit_log_prune",
    name="core.audit_log_prune",
)
def audit_log_prune(timestamp: int) -> int:
    """``manage.py prune_audit_log``: delete audit rows older than seven years."""
    return services.audit_log_prune()


@app.periodic(cron="10 1 * * *", periodic_id="metric_prune")
@app.task(
    queue=MAINTENANCE_QUEUE, queueing_lock="core.metric_prune", name="core.metric_prune"
)
def metric_prune(timestamp: int) -> int:
    """Delete SystemMetric rows older than ``METRIC_RETENTION_DAYS``."""
    return services.metric_prune()


@app.periodic(cron="40 1 * * *", periodic_id="jobs_prune")
@app.task(
    queue=MAINTENANCE_QUEUE, queueing_lock="core.jobs_prune", name="core.jobs_prune"
)
async def jobs_prune(timestamp: int) -> None:
    """Delete finished jobs (and their events): succeeded ones after
    ``JOBS_RETENTION_DAYS``, failed, cancelled and aborted ones after
    ``JOBS_FAILED_RETENTION_DAYS``.

    Failed jobs stay longer because they are the only trace of a mail that never
    went out and what staff retry in the admin; not forever, because a job that
    fails every tick would grow the table without bound, and a failed mail job
    holds a sealed message (personal data) whose link expired long ago.
    Procrastinate's own query (the builtin ``remove_old_jobs``, which runs on a
    queue of its own and takes no ``timestamp``) does one DELETE: the table
    only ever holds a few weeks of jobs, so no batching.
    """
    await app.job_manager.delete_old_jobs(nb_hours=settings.JOBS_RETENTION_DAYS * 24)
    await app.job_manager.delete_old_jobs(
        nb_hours=settings.JOBS_FAILED_RETENTION_DAYS * 24,
        include_failed=True,
        include_cancelled=True,
        include_aborted=True,
    )
