"""searches' jobs: thin wrappers around services, safe to run twice; periodic
ones carry their schedule (README "Background jobs"; times in UTC)."""

from __future__ import annotations

from procrastinate.contrib.django import app

from core.services import metric_daily_counts_record
from core.tasks import MAINTENANCE_QUEUE
from searches import services
from searches.models import SearchHistory


@app.periodic(cron="5 0 * * *", periodic_id="usage_reset_monthly")
@app.task(
    queue=MAINTENANCE_QUEUE,
    queueing_lock="searches.usage_reset_monthly",
    name="searches.usage_reset_monthly",
)
def usage_reset_monthly(timestamp: int) -> int:
    """``manage.py reset_monthly_usage``: zero the monthly keyword counter of
    users whose reset date has passed; returns how many."""
    return services.usage_reset_monthly()


@app.periodic(cron="20 1 * * *", periodic_id="api_usage_prune")
@app.task(
    queue=MAINTENANCE_QUEUE,
    queueing_lock="searches.api_usage_prune",
    name="searches.api_usage_prune",
)
def api_usage_prune(timestamp: int) -> int:
    """Delete API usage rows older than ``API_USAGE_RETENTION_DAYS``."""
    return services.api_usage_prune()


@app.periodic(cron="50 * * * *", periodic_id="searches_per_day_record")
@app.task(
    queue=MAINTENANCE_QUEUE,
    queueing_lock="searches.searches_per_day_record",
    name="searches.searches_per_day_record",
)
def searches_per_day_record(timestamp: int) -> int:
    """Record searches per UTC day (search history rows, by ``searched_at``,
    along ``searchhist_time_idx``) as the ``searches.per_day`` metric the
    database dashboard charts: today recounted each hour, finished days once.
    Returns the days written."""
    return metric_daily_counts_record(
        metric="searches.per_day",
        queryset=SearchHistory.objects.all(),
        field="searched_at",
    )
