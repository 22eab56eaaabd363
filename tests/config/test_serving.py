"""The production stack end to end: collectstatic, gunicorn, whitenoise, /healthz."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import requests
from django.db import connection

PROJECT_ROOT = Path(__file__).resolve().parents[2]
APP_NAME = f"serving-test-{os.getpid()}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=10)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def url_of_test_database() -> str:
    """A DATABASE_URL for the migrated test database this run created."""
    connection.ensure_connection()
    params = connection.settings_dict
    host = (
        quote(params["HOST"], safe="")
        if params["HOST"].startswith("/")
        else params["HOST"]
    )
    port = f":{params['PORT']}" if params["PORT"] else ""
    auth = params["USER"] + (
        f":{quote(params['PASSWORD'], safe='')}" if params["PASSWORD"] else ""
    )
    return f"postgres://{auth}@{host}{port}/{params['NAME']}"


@pytest.fixture
def gunicorn_server(tmp_path, django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        database_url = url_of_test_database()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "serving-test-" + "s" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "STATIC_ROOT": str(tmp_path / "static"),
        "DB_APPLICATION_NAME": APP_NAME,
        "DATABASE_URL": database_url,
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/healthz")
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
def test_gunicorn_serves_landing_static_files_and_health(gunicorn_server):
    home = requests.get(gunicorn_server + "/", timeout=30)
    assert home.status_code == 200
    assert "Launchpad" in home.text

    stylesheet = home.text.split('href="/static/css/app.')[1].split('"')[0]
    css = requests.get(f"{gunicorn_server}/static/css/app.{stylesheet}", timeout=30)
    assert css.status_code == 200
    assert "max-age" in css.headers["Cache-Control"]

    health = requests.get(gunicorn_server + "/healthz", timeout=30)
    assert health.status_code == 200
    assert health.json()["database"]["connected"] is True

    # Both workers share the one embedded server (or DATABASE_URL's).
    statuses = {
        requests.get(gunicorn_server + "/healthz", timeout=30).status_code
        for _ in range(6)
    }
    assert statuses == {200}


@pytest.mark.slow
@pytest.mark.django_db
def test_connections_dropped_by_the_server_are_replaced_without_errors(gunicorn_server):
    for _ in range(4):
        assert requests.get(gunicorn_server + "/healthz", timeout=30).status_code == 200

    params = connection.get_connection_params()
    for key in ("cursor_factory", "context", "application_name"):
        params.pop(key, None)
    params["dbname"] = (
        "postgres" if not os.environ.get("DATABASE_URL") else params["dbname"]
    )
    with psycopg.connect(**params, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            [APP_NAME],
        ).fetchone()[0]
    assert killed >= 1

    statuses = [
        requests.get(gunicorn_server + "/healthz", timeout=30).status_code
        for _ in range(6)
    ]
    assert statuses == [200] * 6
