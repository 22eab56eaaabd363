"""searches' periodic jobs: registered with their schedule; the monthly reset
runs the command's service; API usage is pruned in batches."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from procrastinate.contrib.django import app

from searches import tasks
from searches.models import APIUsage
from searches.services import api_usage_prune
from tests.accounts.factories import UserFactory
from tests.jobs import periodic_of
from tests.plans import plan_of
from tests.searches.factories import APIUsageFactory


@pytest.mark.parametrize(
    ("task", "cron"),
    [
        (tasks.usage_reset_monthly, "5 0 * * *"),
        (tasks.api_usage_prune, "20 1 * * *"),
    ],
    ids=lambda value: getattr(value, "name", None),
)
def test_periodic_job_is_registered_with_its_schedule(task, cron):
    periodic = periodic_of(task)

    assert periodic.cron == cron
    assert periodic.periodic_id == task.name.removeprefix("searches.")
    assert app.tasks[task.name] is task
    assert task.queue == "maintenance"
    assert task.queueing_lock == task.name
    assert task.lock is None


@pytest.mark.django_db
def test_usage_reset_job_resets_users_whose_date_passed():
    now = timezone.now()
    due = UserFactory(
        keyword_searches_this_month=10, monthly_reset_at=now - dt.timedelta(days=1)
    )
    later = UserFactory(
        keyword_searches_this_month=10, monthly_reset_at=now + dt.timedelta(days=1)
    )

    assert tasks.usage_reset_monthly(timestamp=0) == 1

    due.refresh_from_db()
    later.refresh_from_db()
    assert due.keyword_searches_this_month == 0
    assert due.monthly_reset_at > now
    assert later.keyword_searches_this_month == 10
    # Safe to run twice: nothing is due any more.
    assert tasks.usage_reset_monthly(timestamp=0) == 0


def _usage(days_ago, now, user):
    return APIUsageFactory(user=user, timestamp=now - dt.timedelta(days=days_ago))


@pytest.mark.django_db
def test_api_usage_prune_job_deletes_rows_older_than_13_months(settings):
    assert settings.API_USAGE_RETENTION_DAYS == 395
    now = timezone.now()
    user = UserFactory()
    old = [_usage(396, now, user), _usage(800, now, user)]
    kept = [_usage(394, now, user), _usage(0, now, user)]

    assert tasks.api_usage_prune(timestamp=0) == 2

    assert set(APIUsage.objects.values_list("pk", flat=True)) == {u.pk for u in kept}
    assert not APIUsage.objects.filter(pk__in=[u.pk for u in old]).exists()
    assert tasks.api_usage_prune(timestamp=0) == 0


@pytest.mark.django_db
def test_api_usage_prune_deletes_in_batches_until_done(django_assert_num_queries):
    now = timezone.now()
    user = UserFactory()
    for days in range(31, 35):
        _usage(days, now, user)
    kept = _usage(1, now, user)

    # 4 rows in batches of 2: two full batches, then an empty one ends the loop.
    with django_assert_num_queries(3) as captured:
        assert api_usage_prune(days=30, now=now, batch_size=2) == 4

    for query in captured.captured_queries:
        assert query["sql"].startswith("DELETE FROM")
        assert "LIMIT 2" in query["sql"]
    assert list(APIUsage.objects.values_list("pk", flat=True)) == [kept.pk]


@pytest.mark.django_db
def test_api_usage_prune_finds_old_rows_through_the_time_index():
    # Many endpoints and addresses, as in production, make a skip scan of
    # their indexes far dearer than the index led by the time (see plan_of).
    now = timezone.now()
    APIUsage.objects.bulk_create(
        APIUsage(
            endpoint=f"/api/v1/e{n}",
            method="GET",
            status_code=200,
            ip_address=f"10.0.{n // 250}.{n % 250}",
            timestamp=now - dt.timedelta(days=100 if n % 10 == 0 else 1, seconds=n),
        )
        for n in range(2_000)
    )
    with CaptureQueriesContext(connection) as captured:
        assert api_usage_prune(days=90, now=now) == 200

    plan = plan_of(captured.captured_queries[0]["sql"], analyze=APIUsage)
    assert "apiusage_time_idx" in plan, plan
