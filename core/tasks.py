"""Platform jobs (Procrastinate). Tasks are thin: they call a function of core
with plain arguments and are safe to run twice. Periodic tasks carry their
schedule next to them; a periodic task runs once per tick however many workers
run (Procrastinate records each tick's defer under a unique key)."""

from __future__ import annotations

from procrastinate.contrib.django import app

from core.mail import MAIL_QUEUE, MailRetry, mail_deliver

MAINTENANCE_QUEUE = "maintenance"


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
