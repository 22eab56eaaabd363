"""accounts' jobs: thin wrappers around services, with ids, safe to run twice;
periodic ones carry their schedule (README "Background jobs")."""

from __future__ import annotations

from procrastinate import RetryStrategy
from procrastinate.contrib.django import app

from accounts import services
from accounts.models import User
from core.mail import MAIL_QUEUE, MailRetry
from core.services import metric_daily_counts_record
from core.tasks import MAINTENANCE_QUEUE


@app.task(queue=MAIL_QUEUE, retry=MailRetry(), name="accounts.magic_link_mail_send")
def magic_link_mail_send(*, link_id: str | None, sealed: str | None) -> str:
    """Deliver a sign-in link deferred by ``services.magic_link_request``."""
    return services.magic_link_mail_deliver(link_id=link_id, sealed=sealed)


@app.periodic(cron="30 * * * *", periodic_id="cleanup_expired")
@app.task(
    queue=MAINTENANCE_QUEUE,
    queueing_lock="accounts.cleanup_expired",
    name="accounts.cleanup_expired",
)
def cleanup_expired(timestamp: int) -> dict[str, int]:
    """``manage.py cleanup_expired``: expired and used magic links, expired
    sessions and allauth user sessions whose session is gone; rows deleted by
    kind."""
    return services.cleanup_expired()


@app.task(
    queue=MAINTENANCE_QUEUE,
    # A database hiccup or a full disk: try again a little later.
    retry=RetryStrategy(max_attempts=3, wait=60),
    name="accounts.data_export_build",
)
def data_export_build(*, user_id: str, export_id: str, base_url: str) -> str:
    """Build the archive queued by ``services.data_export_request`` ("Download
    my data") and mail its link; the request only queues this job."""
    return services.data_export_build(
        user_id=user_id, export_id=export_id, base_url=base_url
    )


@app.periodic(cron="*/10 * * * *", periodic_id="impersonations_expired_end")
@app.task(
    queue=MAINTENANCE_QUEUE,
    queueing_lock="accounts.impersonations_expired_end",
    name="accounts.impersonations_expired_end",
)
def impersonations_expired_end(timestamp: int) -> int:
    """End rows for impersonations past IMPERSONATION_MAX_MINUTES that no
    request ended (the browser was closed)."""
    return services.impersonations_expired_end()


@app.periodic(cron="45 * * * *", periodic_id="data_exports_prune")
@app.task(
    queue=MAINTENANCE_QUEUE,
    queueing_lock="accounts.data_exports_prune",
    name="accounts.data_exports_prune",
)
def data_exports_prune(timestamp: int) -> dict[str, int]:
    """Delete data archives past their 7 days, and those of deleted accounts."""
    return services.data_exports_prune()


@app.periodic(cron="55 * * * *", periodic_id="signups_per_day_record")
@app.task(
    queue=MAINTENANCE_QUEUE,
    queueing_lock="accounts.signups_per_day_record",
    name="accounts.signups_per_day_record",
)
def signups_per_day_record(timestamp: int) -> int:
    """Record sign-ups per UTC day (users by ``created_at``, along
    ``user_created_at_idx``) as the ``accounts.signups_per_day`` metric the
    database dashboard charts. Returns the days written."""
    return metric_daily_counts_record(
        metric="accounts.signups_per_day",
        queryset=User.objects.all(),
        field="created_at",
    )
