import datetime as dt

import pytest
from django.utils import timezone

from core.models import SystemMetric
from core.services import metric_record


@pytest.mark.django_db
def test_metric_record_stores_value_tags_and_time():
    before = timezone.now()

    metric = metric_record(metric="queue.depth", value=7, tags={"queue": "emails"})

    metric.refresh_from_db()
    assert metric.metric == "queue.depth"
    assert metric.value == 7.0
    assert metric.tags == {"queue": "emails"}
    assert before <= metric.timestamp <= timezone.now()


@pytest.mark.django_db
def test_metric_record_accepts_an_explicit_timestamp():
    when = timezone.now() - dt.timedelta(hours=3)

    metric_record(metric="db.size_bytes", value=1024, timestamp=when)

    assert SystemMetric.objects.get(metric="db.size_bytes").timestamp == when
