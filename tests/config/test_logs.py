"""Logs never hold a live secret: sign-in link paths (and /healthz's ?token=)
are redacted in gunicorn's access log and in Django's request logging."""

import io
import logging
import os
import re
import shutil
import subprocess
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from django.core.servers.basehttp import WSGIRequestHandler
from django.test import Client

from core.logging import RedactSecretsFilter, redact
from tests.accounts.helpers import last_link, request_link
from tests.config.test_serving import free_port, url_of_test_database, wait_for

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEAD_SECRET = "Dead-Link-Secret_0123456789abcdefghijklmnopqrstu"


def secret_of(path: str) -> str:
    return re.fullmatch(r"/accounts/magic/([^/]+)/", path)[1]


@contextmanager
def handler_output(handler: logging.Handler):
    """What ``handler`` (one of LOGGING's) writes while the block runs."""
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)


def configured_handler(logger: logging.Logger) -> logging.Handler:
    [handler] = [
        h
        for h in logger.handlers
        if any(isinstance(f, RedactSecretsFilter) for f in h.filters)
    ]
    return handler


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "GET /accounts/magic/AbC-_09/ HTTP/1.1",
            "GET /accounts/magic/[redacted]/ HTTP/1.1",
        ),
        ("/accounts/magic/AbC?next=/x", "/accounts/magic/[redacted]?next=/x"),
        ("/healthz?token=s3cret&x=1", "/healthz?token=[redacted]&x=1"),
        ("/search/?q=token", "/search/?q=token"),
        ("/accounts/login/", "/accounts/login/"),
    ],
)
def test_redact_replaces_secrets_and_nothing_else(line, expected):
    assert redact(line) == expected


@pytest.mark.django_db
def test_djangos_request_log_redacts_sign_in_links(client, caplog):
    request_link(client, "logged@example.com")
    live = last_link()
    handler = configured_handler(logging.getLogger())

    with handler_output(handler) as output:
        client.post(live)  # signs in: the link is used now
        used = client.get(live)  # "Gone: <path>"
        dead = client.get(f"/accounts/magic/{DEAD_SECRET}/")  # "Not Found: <path>"

    assert (used.status_code, dead.status_code) == (410, 404)
    written = output.getvalue()
    assert "Gone: /accounts/magic/[redacted]/" in written
    assert "Not Found: /accounts/magic/[redacted]/" in written
    for secret in (secret_of(live), DEAD_SECRET):
        assert secret not in written
        assert secret not in caplog.text


def test_the_development_servers_request_lines_are_redacted():
    # runserver logs every request line through "django.server" (its own handler).
    handler = configured_handler(logging.getLogger("django.server"))
    server = types.SimpleNamespace(request=None, log_date_time_string=lambda: "now")

    with handler_output(handler) as output:
        WSGIRequestHandler.log_message(
            server,
            '"%s" %s %s',
            f"GET /accounts/magic/{DEAD_SECRET}/ HTTP/1.1",
            "200",
            "42",
        )

    written = output.getvalue()
    assert '"GET /accounts/magic/[redacted]/ HTTP/1.1" 200 42' in written
    assert DEAD_SECRET not in written


def procfile_web_command() -> str:
    [line] = [
        line
        for line in (PROJECT_ROOT / "Procfile").read_text().splitlines()
        if line.startswith("web:")
    ]
    return line.removeprefix("web:").strip()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_gunicorn_run_as_the_procfile_says_keeps_secrets_out_of_both_logs(tmp_path):
    request_link(Client(), "gunicorn-log@example.com")
    live = last_link()
    port = free_port()
    env = {
        **os.environ,
        # The site's real URLs with plain static files (no collectstatic).
        "DJANGO_SETTINGS_MODULE": "tests.core.dbsite.settings",
        "DATABASE_URL": url_of_test_database(),
        "LOG_LEVEL": "INFO",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        # The Procfile names `gunicorn`: this virtualenv's.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    assert shutil.which("gunicorn", path=env["PATH"])
    access_log, error_log = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with open(access_log, "wb") as out, open(error_log, "wb") as err:
        # The Procfile's line as a process manager runs it: through a shell,
        # which expands ${PORT:-8000} and ${WEB_CONCURRENCY:-2}.
        proc = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {procfile_web_command()}"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=err,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/healthz")
        confirm = requests.get(base + live, timeout=30)
        dead = requests.get(
            f"{base}/accounts/magic/{DEAD_SECRET}/",
            headers={"Referer": base + live},
            timeout=30,
        )
        health = requests.get(base + "/healthz?token=healthz-secret-value", timeout=30)
    finally:
        proc.terminate()
        proc.wait(15)

    assert (confirm.status_code, dead.status_code, health.status_code) == (
        200,
        404,
        200,
    )
    access = access_log.read_text()
    errors = error_log.read_text()
    assert f"GET {live.replace(secret_of(live), '[redacted]')} HTTP/1.1" in access
    assert f'"{base}/accounts/magic/[redacted]/"' in access  # the Referer
    assert "GET /healthz?token=[redacted] HTTP/1.1" in access
    assert "Not Found: /accounts/magic/[redacted]/" in errors
    for secret in (secret_of(live), DEAD_SECRET, "healthz-secret-value"):
        assert secret not in access
        assert secret not in errors
