from contextlib import contextmanager

import pytest
from django.contrib.sessions.models import Session
from django.db import connection

from tests.core.test_jobs import queue_empty

TOKEN = "healthz-test-token-0123456789"
PUBLIC_KEYS = {"status", "database"}
PUBLIC_DATABASE_KEYS = {"connected", "response_time_ms"}


@pytest.fixture(autouse=True)
def _queue_empty(db):
    """No job committed by another test module makes this queue look late."""
    queue_empty()


@pytest.fixture
def token(settings):
    settings.HEALTHZ_TOKEN = TOKEN
    return TOKEN


def detailed(client, **extra):
    """GET /healthz presenting the token (the ``token`` fixture sets it)."""
    return client.get("/healthz", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **extra)


def is_public(body: dict) -> bool:
    return set(body) == PUBLIC_KEYS and set(body["database"]) == PUBLIC_DATABASE_KEYS


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
def test_healthz_tells_the_public_only_the_status_and_database_reachability(
    client, token
):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert is_public(body), body
    text = response.content.decode()
    for detail in ("server_version", "connections", "queue", "cache", "warnings"):
        assert detail not in text
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "presented",
    [
        {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"},
        {"HTTP_AUTHORIZATION": f"bearer   {TOKEN}"},
        {"QUERY_STRING": f"token={TOKEN}"},
    ],
    ids=["bearer", "bearer-lower-case", "query"],
)
def test_healthz_shows_details_to_a_caller_with_the_token(client, token, presented):
    body = client.get("/healthz", **presented).json()

    assert body["status"] == "ok"
    assert body["database"]["server_version"][0].isdigit()
    assert body["database"]["connections"]["used"] >= 1
    assert body["cache"]["ok"] is True
    assert body["queue"]["status"] == "ok"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "presented",
    [
        {"HTTP_AUTHORIZATION": "Bearer wrong-token"},
        {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"},
        {"QUERY_STRING": "token="},
        {"QUERY_STRING": f"token={TOKEN}x"},
    ],
    ids=["wrong", "basic", "empty", "longer"],
)
def test_healthz_keeps_details_from_a_wrong_token(client, token, presented):
    assert is_public(client.get("/healthz", **presented).json())


@pytest.mark.django_db
def test_without_a_configured_token_no_token_opens_the_details(client, settings):
    settings.HEALTHZ_TOKEN = ""

    for presented in ({"HTTP_AUTHORIZATION": "Bearer "}, {"QUERY_STRING": "token="}):
        assert is_public(client.get("/healthz", **presented).json())


@pytest.mark.django_db
def test_healthz_shows_details_to_signed_in_staff_without_writing_the_session(
    client, admin_user
):
    client.force_login(admin_user)
    sessions = Session.objects.count()

    response = client.get("/healthz")

    body = response.json()
    assert body["database"]["server_version"][0].isdigit()
    assert body["queue"]["status"] == "ok"
    assert "sessionid" not in response.cookies
    assert Session.objects.count() == sessions


@pytest.mark.django_db
def test_healthz_shows_a_signed_in_user_who_is_not_staff_the_public_answer(
    client, user
):
    client.force_login(user)

    assert is_public(client.get("/healthz").json())


@pytest.mark.django_db
def test_a_stale_or_forged_session_cookie_sees_the_public_answer(client, admin_user):
    client.force_login(admin_user)
    session = Session.objects.get()
    # Signed in before the password hash (the session auth hash) changed.
    admin_user.set_unusable_password()
    admin_user.save(update_fields=["password"])

    assert is_public(client.get("/healthz").json())
    assert Session.objects.filter(pk=session.pk).exists()  # read, not flushed

    client.cookies["sessionid"] = "forged-session-key"
    assert is_public(client.get("/healthz").json())
    assert Session.objects.count() == 1


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
    assert is_public(body)


@pytest.mark.django_db(transaction=True)
def test_healthz_details_say_why_the_database_is_unreachable(client, token):
    with database_unreachable():
        response = detailed(client)

    assert response.status_code == 503
    assert response.json()["database"]["error"] == "OperationalError"


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
def test_healthz_shows_the_job_queue(client, token):
    body = detailed(client).json()

    queue = body["queue"]
    assert queue["status"] == "ok"
    assert queue["reasons"] == []
    assert queue["oldest_mail_job_age_s"] is None
    assert any(p["task"] == "core.jobs_stalled_retry" for p in queue["periodic"])


@pytest.mark.django_db
def test_healthz_is_200_and_degraded_when_a_mail_job_waits_too_long(client, token):
    job_id = _mail_job_waiting(minutes=4)
    assert client.get("/healthz").json()["status"] == "ok"
    _mail_job_waiting(minutes=6, job_id=job_id)
    # The public answer says "degraded", not why.
    assert client.get("/healthz").json() == {
        "status": "degraded",
        "database": {"connected": True, "response_time_ms": pytest.approx(0, abs=1e4)},
    }

    response = detailed(client)

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
    client, token
):
    # Inside the test's transaction: renamed here, back after the rollback.
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE procrastinate_periodic_defers RENAME TO periodic_defers_gone"
        )

    response = detailed(client)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["queue"]["status"] == "error"
    assert body["queue"]["reasons"] == [
        "the job tables cannot be read (ProgrammingError)"
    ]
