"""Real-browser tests: Debian's Chromium driven by Playwright (never a
downloaded browser). Fixtures, registered in tests/conftest.py:

- ``browser``: one headless Chromium for the whole run (session scope);
- ``page``: a fresh browser context + page per test, closed afterwards;
- ``live_url``: pytest-django's ``live_server`` URL;
- ``sign_in_browser(page, live_url, user)``: a signed-in session cookie.

While the browser lives, ``DJANGO_ALLOW_ASYNC_UNSAFE=true`` is set so ORM calls
in the test thread (next to Playwright's event loop) are allowed.

Mark such tests ``@pytest.mark.browser``. When /usr/bin/chromium is missing the
fixture installs it with apt-get as root (about 30 s), otherwise skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def ensure_chromium() -> Path:
    """Path of Debian's Chromium, installing it when possible; skip otherwise."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("/usr/bin/chromium is missing and apt-get needs root to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        result = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        if result.returncode != 0:
            pytest.skip(f"installing chromium failed: {result.stderr[-500:]}")
    if not CHROMIUM.exists():
        pytest.skip("apt-get installed chromium but /usr/bin/chromium is missing")
    return CHROMIUM


def pytest_collection_modifyitems(config, items):
    """Browser tests run last. While the session's browser lives, Playwright's
    event loop sits in the main thread and Django's ORM only works with
    DJANGO_ALLOW_ASYNC_UNSAFE set; running them last keeps that variable away
    from every other test (and from subprocesses they start, e.g. `check
    --deploy`, which rejects it)."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="session")
def browser():
    executable = ensure_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    # Playwright's sync API runs an event loop in this thread for as long as the
    # browser lives; Django refuses ORM calls while one runs unless told not to.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield from _launch(sync_playwright, executable)
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _launch(sync_playwright, executable):
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(executable), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def live_url(live_server, browser):
    return live_server.url


def sign_in_browser(page, live_url: str, user) -> None:
    """Give ``page``'s browser a signed-in session for ``user`` (a shortcut for
    tests about something other than sign-in; tests/accounts covers the real
    magic-link flow in the browser)."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies(
        [{"name": cookie.key, "value": cookie.value, "url": live_url}]
    )


def screenshot(page, name: str) -> None:
    """Save a full-page screenshot for a human look when E2E_SCREENSHOTS names a
    folder (``E2E_SCREENSHOTS=/tmp/shots make test``); otherwise do nothing."""
    folder = os.environ.get("E2E_SCREENSHOTS")
    if folder:
        page.screenshot(path=f"{folder}/{name}.png", full_page=True)
