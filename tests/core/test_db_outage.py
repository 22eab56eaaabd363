"""While the database is down, pages answer a branded 503 with Retry-After
(core.middleware.DatabaseUnavailableMiddleware), never a bare 500.

In-process tests point the default connection at a port nothing listens on;
the slow test stops a real server under gunicorn and starts it again.
"""

import logging
from contextlib import contextmanager

import pytest
import requests
from django.db import connection
from django.test import Client

from tests.accounts.factories import UserFactory
from tests.pg_servers import free_port, gunicorn_site, manage, primary_server, site_env

PAGE_TEXT = "Back in a moment"


@contextmanager
def database_down():
    """The default connection goes to 127.0.0.1:<a closed port>: every connect
    is refused, as while the server restarts."""
    # PGDATA: the embedded server's backend fills HOST in from it.
    saved = {
        key: connection.settings_dict.get(key) for key in ("HOST", "PORT", "PGDATA")
    }
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(free_port()), PGDATA="")
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def assert_outage_page(response):
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response["Content-Type"].startswith("text/html")
    text = response.content.decode()
    assert PAGE_TEXT in text
    assert "Launchpad" in text
    assert "Server Error" not in text


def outage_logs(caplog, path):
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and path in r.getMessage()
    ]


@pytest.mark.django_db(transaction=True)
def test_a_page_answers_the_503_page_when_the_database_is_down(client, caplog):
    with database_down():
        response = client.get("/explore/")

    assert_outage_page(response)
    assert "sessionid" not in response.cookies
    # Logged once, as an outage (not as an Internal Server Error).
    [record] = outage_logs(caplog, "/explore/")
    assert "Database unavailable, answered 503 to GET /explore/" in record.getMessage()
    assert "OperationalError" in record.getMessage()


@pytest.mark.django_db(transaction=True)
def test_a_signed_in_page_whose_session_cannot_be_read_answers_503(caplog):
    # The session is read by a middleware (authentication), before any view:
    # Django turns that error into its 500, which the outage page replaces.
    browser = Client(raise_request_exception=False)
    browser.force_login(UserFactory())

    with database_down():
        page = browser.get("/account/")
        form = browser.post("/apps/new/", {"name": "During the outage"})

    assert_outage_page(page)
    assert_outage_page(form)
    assert len(outage_logs(caplog, "/account/")) == 1


@pytest.mark.django_db(transaction=True)
def test_the_json_api_answers_a_json_503(client):
    with database_down():
        response = client.post(
            "/api/keywords/", {"keywords": ["seo"]}, content_type="application/json"
        )
        by_accept = client.get("/explore/", HTTP_ACCEPT="application/json")

    for answer in (response, by_accept):
        assert answer.status_code == 503
        assert answer["Retry-After"] == "30"
        assert answer.json()["error"] == "service_unavailable"


@pytest.mark.django_db(transaction=True)
def test_once_the_database_is_back_pages_answer_normally(client):
    with database_down():
        assert client.get("/explore/").status_code == 503

    assert client.get("/explore/").status_code == 200


def test_other_database_errors_are_left_to_the_500_handler(rf):
    # A bug (a missing table, bad SQL) is not an outage: no 503 hides it.
    from django.db import IntegrityError, ProgrammingError

    from core.middleware import DatabaseUnavailableMiddleware

    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    request = rf.get("/explore/")
    for error in (ProgrammingError("no such table"), IntegrityError("duplicate")):
        assert middleware.process_exception(request, error) is None


# --- a real server stopped and started under gunicorn ------------------------------

DBNAME = "app"


@pytest.mark.slow
def test_a_stopped_database_server_answers_503_pages_until_it_is_back():
    with primary_server("opsdb-outage-") as server:
        server.create_database(DBNAME)
        env = site_env(DATABASE_URL=server.url(DBNAME), DB_CONN_MAX_AGE="60")
        manage("migrate", "--noinput", env=env)
        with gunicorn_site(env, workers=1) as site:
            session = requests.Session()
            signed_in = session.post(
                site.base + "/_probe/sign-in", data={"email": "outage@example.com"}
            )
            assert signed_in.status_code == 200
            assert session.get(site.base + "/account/").status_code == 200
            anonymous = requests.Session()

            server.stop()
            try:
                pages = {
                    "anonymous": anonymous.get(site.base + "/explore/", timeout=30),
                    "signed in": session.get(site.base + "/account/", timeout=30),
                }
                api = session.post(
                    site.base + "/api/keywords/", json={"keywords": ["seo"]}, timeout=30
                )
                health = anonymous.get(site.base + "/healthz", timeout=30)
            finally:
                server.start()

            for who, page in pages.items():
                assert page.status_code == 503, who
                assert page.headers["Retry-After"] == "30", who
                assert PAGE_TEXT in page.text, who
            assert api.status_code == 503
            assert api.json()["error"] == "service_unavailable"
            assert health.status_code == 503
            assert health.json()["database"]["connected"] is False

            # Back: the same browsers carry on, signed in.
            assert anonymous.get(site.base + "/explore/").status_code == 200
            assert session.get(site.base + "/account/").status_code == 200
            assert "Database unavailable, answered 503" in site.log()
