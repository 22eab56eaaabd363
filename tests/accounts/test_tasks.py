"""accounts' periodic job: registered hourly, runs the command's service."""

import datetime as dt

import pytest
from django.utils import timezone
from procrastinate.contrib.django import app

from accounts import tasks
from accounts.models import MagicLink
from tests.jobs import periodic_of


def test_cleanup_expired_is_registered_hourly_on_the_maintenance_queue():
    periodic = periodic_of(tasks.cleanup_expired)

    assert periodic.cron == "30 * * * *"
    assert periodic.periodic_id == "cleanup_expired"
    assert app.tasks["accounts.cleanup_expired"] is tasks.cleanup_expired
    assert tasks.cleanup_expired.queue == "maintenance"
    assert tasks.cleanup_expired.queueing_lock == "accounts.cleanup_expired"
    assert tasks.cleanup_expired.lock is None


@pytest.mark.django_db
def test_cleanup_expired_job_deletes_expired_links():
    now = timezone.now()
    fresh = MagicLink.objects.create(
        email="a@example.com",
        token_hash="1" * 64,
        expires_at=now + dt.timedelta(minutes=5),
    )
    MagicLink.objects.create(
        email="b@example.com",
        token_hash="2" * 64,
        created_at=now - dt.timedelta(hours=1),
        expires_at=now - dt.timedelta(minutes=50),
    )

    counts = tasks.cleanup_expired(timestamp=0)

    assert counts["expired magic links"] == 1
    assert list(MagicLink.objects.values_list("pk", flat=True)) == [fresh.pk]
    # Safe to run twice.
    assert sum(tasks.cleanup_expired(timestamp=0).values()) == 0
