"""The parts every page shares (issue #16): a header that collapses into a menu
on phones, the colour theme and its switch, branded 400/403/429 pages, the
favicon and robots.txt, meta descriptions and compressed HTML."""

from __future__ import annotations

import gzip

import pytest
from django.test import Client
from django.urls import reverse

from tests.accounts.factories import UserFactory
from tests.e2e import screenshot, sign_in_browser

pytestmark = pytest.mark.django_db

# --- Theme -------------------------------------------------------------------


def test_theme_follows_the_os_until_a_choice_is_made(client):
    html = client.get("/").content.decode()
    assert "data-theme=" not in html.split("<head>")[0]
    assert '<meta name="color-scheme" content="light dark">' in html


@pytest.mark.parametrize("choice", ["light", "dark"])
def test_theme_choice_is_remembered_and_rendered(client, choice):
    response = client.post(reverse("theme_set"), {"theme": choice, "next": "/pricing/"})
    assert response.status_code == 302
    assert response["Location"] == "/pricing/"
    cookie = response.cookies["theme"]
    assert cookie.value == choice
    assert cookie["max-age"] >= 300 * 24 * 3600
    assert cookie["httponly"]
    html = client.get("/pricing/").content.decode()
    assert f'<html lang="en" data-theme="{choice}">' in html
    assert f'aria-pressed="true">{choice.title()}</button>' in html


def test_theme_auto_forgets_the_choice(client):
    client.post(reverse("theme_set"), {"theme": "dark"})
    response = client.post(reverse("theme_set"), {"theme": "auto"})
    assert response.cookies["theme"].value == ""
    assert "data-theme=" not in client.get("/").content.decode().split("<head>")[0]


@pytest.mark.parametrize(
    "data",
    [
        {"theme": "neon"},
        {"theme": ""},
        {},
        {"theme": ["dark", "neon"]},
        {"theme": "dark\x00"},
    ],
)
def test_theme_odd_values_change_nothing(client, data):
    response = client.post(reverse("theme_set"), data)
    assert response.status_code in (302, 400)
    assert "theme" not in response.cookies


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/", "//evil.example/", "javascript:alert(1)"]
)
def test_theme_never_redirects_off_site(client, next_url):
    response = client.post(reverse("theme_set"), {"theme": "dark", "next": next_url})
    assert response["Location"] == "/"


def test_theme_by_fetch_answers_204(client):
    response = client.post(
        reverse("theme_set"), {"theme": "dark"}, headers={"X-Requested-With": "fetch"}
    )
    assert response.status_code == 204
    assert response.cookies["theme"].value == "dark"


def test_theme_get_is_refused(client):
    assert client.get(reverse("theme_set")).status_code == 405


def test_theme_without_csrf_token_gets_the_branded_403(db):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("theme_set"), {"theme": "dark"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "This form has expired" in html
    assert "Forbidden (403)" not in html
    assert 'class="site-header"' in html


def test_csrf_page_shows_who_is_signed_in(db):
    user = UserFactory(name="Ada Builder")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    html = client.post(reverse("theme_set"), {"theme": "dark"}).content.decode()
    assert "Ada Builder" in html
    assert "Sign in</a>" not in html


# --- Error pages, icons, robots, compression ----------------------------------


def test_nul_byte_gets_the_branded_400(client):
    response = client.get("/explore/?q=a%00b")
    assert response.status_code == 400
    html = response.content.decode()
    assert "That request could not be read" in html
    assert "NUL character" in html
    assert "Nothing was changed" in html


@pytest.mark.parametrize("template", ["400.html", "403.html", "429.html"])
def test_error_templates_render_without_a_request(template):
    from django.template.loader import render_to_string

    html = render_to_string(template)
    assert "Launchpad" in html
    assert "<h1>" in html


def test_favicon_and_robots_are_served_at_the_root(client):
    favicon = client.get("/favicon.ico")
    assert favicon.status_code == 200
    body = b"".join(favicon.streaming_content)
    assert body[:4] == b"\x00\x00\x01\x00"  # ICO header
    robots = client.get("/robots.txt")
    assert robots.status_code == 200
    assert b"Disallow: /admin/" in b"".join(robots.streaming_content)


def test_icons_are_linked_from_every_page(client):
    html = client.get("/").content.decode()
    assert 'rel="icon"' in html
    assert 'rel="apple-touch-icon"' in html
    assert 'rel="manifest"' in html


def test_html_is_compressed_for_clients_that_accept_gzip(client):
    response = client.get("/", headers={"Accept-Encoding": "gzip, br"})
    assert response["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response["Vary"]
    assert b"<!doctype html>" in gzip.decompress(response.content)


def test_html_is_plain_for_clients_that_do_not(client):
    response = client.get("/")
    assert "Content-Encoding" not in response


def _description(html: str) -> str:
    start = html.index('<meta name="description" content="') + len(
        '<meta name="description" content="'
    )
    return html[start : html.index('"', start)]


def test_public_pages_have_their_own_meta_description(client):
    from apps_catalog import services
    from apps_catalog.models import App

    owner = UserFactory()
    app = services.app_create(
        owner=owner,
        name="Habit Tracker",
        description="Track habits & streaks " + "x" * 300,
        status=App.Status.ACTIVE,
    )
    paths = ["/", "/explore/", "/pricing/", "/accounts/login/", f"/apps/{app.pk}/"]
    descriptions = [_description(client.get(p).content.decode()) for p in paths]
    assert all(descriptions)
    assert len(set(descriptions)) == len(paths)
    # An app's page describes the app, escaped and cut to a snippet's length.
    assert descriptions[-1].startswith("Track habits &amp; streaks")
    assert len(descriptions[-1]) < 170


# --- Header in a browser ------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_phone_header_collapses_into_a_keyboard_menu(live_url, page):
    user = UserFactory(name="Ada Builder")
    sign_in_browser(page, live_url, user)
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{live_url}/explore/")
    assert not page.is_visible(".nav-wide")
    assert not page.is_visible(".nav-menu >> text=My apps")
    # Keyboard only: Tab to the menu button, Enter opens it.
    page.focus(".nav-menu > summary")
    page.keyboard.press("Enter")
    for link in ("Explore", "Keyword research", "Pricing", "My apps", "Billing"):
        assert page.is_visible(f".nav-menu >> text={link}")
    assert page.is_visible(".nav-menu >> button:has-text('Sign out')")
    screenshot(page, "header-menu-open-360")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.click(".nav-menu >> text=My apps")
    page.wait_for_url(f"{live_url}/apps/")

    page.set_viewport_size({"width": 1366, "height": 900})
    assert page.is_visible(".nav-wide >> text=My apps")
    assert not page.is_visible(".nav-menu")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_signed_out_phone_header_keeps_sign_in_in_view(live_url, page):
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{live_url}/")
    sign_in = page.locator(".nav-narrow >> text=Sign in")
    assert sign_in.is_visible()
    box = sign_in.bounding_box()
    assert box["x"] + box["width"] <= 360


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_theme_switch_applies_at_once_and_is_remembered(live_url, page):
    page.emulate_media(color_scheme="light")
    page.goto(f"{live_url}/pricing/")
    background = "getComputedStyle(document.documentElement).backgroundColor"
    light = page.evaluate(background)
    page.evaluate("window.__stayed = true")  # gone if the click loaded a page
    with page.expect_response("**/theme/") as saved:
        page.click(".theme-switch >> text=Dark")
    # Applied without a page load (app.js); the background POST saved it.
    assert saved.value.status == 204
    assert page.evaluate("window.__stayed") is True
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    dark = page.evaluate(background)
    assert dark != light
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert (
        page.get_attribute(".theme-switch button[value=dark]", "aria-pressed") == "true"
    )

    # "System" follows the operating system again.
    with page.expect_response("**/theme/"):
        page.click(".theme-switch >> text=System")
    page.emulate_media(color_scheme="dark")
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") is None
    assert page.evaluate(background) == dark


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_theme_switch_works_without_javascript(live_url, browser):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{live_url}/explore/")
        page.click(".theme-switch >> text=Dark")
        page.wait_for_url(f"{live_url}/explore/")
        assert page.get_attribute("html", "data-theme") == "dark"
    finally:
        context.close()


@pytest.mark.browser
def test_the_page_checks_catch_what_they_promise(page):
    """tests/a11y.py itself: a page with each defect is reported."""
    from tests.a11y import horizontal_overflow, page_defects

    page.set_viewport_size({"width": 360, "height": 640})
    page.set_content(
        '<html><body><input aria-describedby="nope"><label for="gone">x</label>'
        '<button onclick="go()">Go</button><div class="wide">w</div></body></html>'
    )
    page.add_style_tag(content=".wide { width: 900px; }")
    defects = page_defects(page)
    assert "aria-describedby names missing #nope" in defects
    assert "label for missing #gone" in defects
    assert "inline handler onclick on <button>" in defects
    assert "no meta description" in defects
    assert horizontal_overflow(page) > 500
