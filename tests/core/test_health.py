from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from core.health import health_report
from core.models import SystemMetric
from tests.core.test_healthz import _mail_job_waiting, database_unreachable
from tests.core.test_jobs import queue_empty


@pytest.fixture(autouse=True)
def _queue_empty(db):
    """No job committed by another test module makes this queue look late."""
    queue_empty()


@pytest.mark.django_db
def test_health_report_has_version_connections_and_cache():
    report = health_report()

    assert report["status"] == "ok"
    db = report["database"]
    assert db["server_version"][0].isdigit()
    assert 1 <= db["connections"]["used"] <= db["connections"]["max"]
    assert report["cache"]["ok"] is True


@pytest.mark.django_db
def test_healthz_and_db_health_share_the_check(client, settings):
    settings.HEALTHZ_TOKEN = "health-test-token"
    body = client.get("/healthz", HTTP_AUTHORIZATION="Bearer health-test-token").json()

    assert set(body) >= {"status", "database", "cache", "queue"}
    assert set(body["database"]) == set(health_report()["database"])


@pytest.mark.django_db
def test_db_health_prints_summary_and_records_response_time():
    out = StringIO()

    call_command("db_health", stdout=out)

    text = out.getvalue()
    assert "Database: connected in" in text
    assert "Healthy." in text
    metric = SystemMetric.objects.get(metric="db.response_time_ms")
    assert metric.value >= 0
    assert metric.tags == {"source": "db_health"}


@pytest.mark.django_db(transaction=True)
def test_db_health_exits_non_zero_when_database_is_unreachable():
    out = StringIO()

    with database_unreachable(), pytest.raises(CommandError, match="Unhealthy"):
        call_command("db_health", stdout=out)

    assert "UNREACHABLE" in out.getvalue()


@pytest.mark.django_db
def test_failing_cache_makes_status_error(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            # Nothing listens on port 1: the probe fails fast.
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    report = health_report()

    assert report["status"] == "error"
    assert report["cache"]["ok"] is False


@pytest.mark.django_db
def test_health_report_judges_the_job_queue():
    report = health_report()

    assert report["queue"]["status"] == "ok"
    assert report["queue"]["response_time_ms"] >= 0

    _mail_job_waiting(minutes=10)
    report = health_report()

    assert report["status"] == "degraded"
    assert report["queue"]["status"] == "degraded"


@pytest.mark.django_db
def test_db_health_prints_the_queues_reasons_and_fails_when_it_is_degraded():
    job_id = _mail_job_waiting(minutes=10)
    out = StringIO()

    with pytest.raises(CommandError, match="Degraded"):
        call_command("db_health", "--no-record", stdout=out)

    text = out.getvalue()
    assert "Database: connected in" in text
    assert (
        f"Warning: Job queue: the oldest queued mail job (#{job_id}) has waited 10 min"
        in text
    )
