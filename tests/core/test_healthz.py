from contextlib import contextmanager

import pytest
from django.db import connection

from tests.core.test_jobs import queue_empty


@pytest.fixture(autouse=True)
def _queue_empty(db):
    """No job committed by another test module makes this queue look late."""
    queue_empty()


@contextmanager
def database_unreachable():
    """Point the default connection at a database that does not exist."""
    name = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = "no_such_database_for_healthz"
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = name


@pytest.mark.django_db
def test_healthz_reports_database_up(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["connected"] is True
    assert body["database"]["response_time_ms"] >= 0


@pytest.mark.django_db
def test_healthz_sets_no_session_cookie_and_ignores_host_header(client):
    response = client.get("/healthz", HTTP_HOST="10.0.0.7")

    assert response.status_code == 200
    assert "sessionid" not in response.cookies


@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_when_database_is_unreachable(client):
    with database_unreachable():
        response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["database"]["connected"] is False


def _mail_job_waiting(minutes: int, job_id: int | None = None) -> int:
    """A queued mail job (``job_id``, or a new one) deferred ``minutes`` ago:
    no worker took it."""
    from core.tasks import mail_send

    job_id = job_id or mail_send.defer(sealed="sealed")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE procrastinate_events SET at = now() - make_interval(mins => %s)"
            " WHERE job_id = %s AND type = 'deferred'",
            [minutes, job_id],
        )
    return job_id


@pytest.mark.django_db
def test_healthz_shows_the_job_queue(client):
    body = client.get("/healthz").json()

    queue = body["queue"]
    assert queue["status"] == "ok"
    assert queue["reasons"] == []
    assert queue["oldest_mail_job_age_s"] is None
    assert any(p["task"] == "core.jobs_stalled_retry" for p in queue["periodic"])


@pytest.mark.django_db
def test_healthz_is_200_and_degraded_when_a_mail_job_waits_too_long(client):
    job_id = _mail_job_waiting(minutes=4)
    assert client.get("/healthz").json()["status"] == "ok"
    _mail_job_waiting(minutes=6, job_id=job_id)

    response = client.get("/healthz")

    # Still in the load balancer: the pages work, only the queue is behind.
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"]["connected"] is True
    assert body["queue"]["status"] == "degraded"
    assert body["queue"]["oldest_mail_job_age_s"] >= 360
    [reason] = body["queue"]["reasons"]
    assert f"oldest queued mail job (#{job_id}) has waited 6 min" in reason
    assert f"Job queue: {reason}" in body["warnings"]


@pytest.mark.django_db
def test_healthz_is_degraded_not_an_error_page_when_the_job_tables_cannot_be_read(
    client,
):
    # Inside the test's transaction: renamed here, back after the rollback.
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE procrastinate_periodic_defers RENAME TO periodic_defers_gone"
        )

    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["queue"]["status"] == "error"
    assert body["queue"]["reasons"] == [
        "the job tables cannot be read (ProgrammingError)"
    ]
