"""billing's jobs: thin wrappers around services, safe to run twice; periodic
ones carry their schedule (README "Background jobs"; times in UTC)."""

from __future__ import annotations

from procrastinate.contrib.django import app

from billing import services
from core.tasks import MAINTENANCE_QUEUE


@app.periodic(cron="30 1 * * *", periodic_id="webhook_payloads_prune")
@app.task(
    queue=MAINTENANCE_QUEUE,
    queueing_lock="billing.webhook_payloads_prune",
    name="billing.webhook_payloads_prune",
)
def webhook_payloads_prune(timestamp: int) -> int:
    """Clear the payload of PROCESSED / IGNORED webhook events older than
    ``WEBHOOK_PAYLOAD_RETENTION_DAYS``; the rows stay (idempotency keys)."""
    return services.webhook_payloads_prune()
