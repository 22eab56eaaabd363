"""Security headers and cookies (issue "Security and privacy", part 3): a strict
Content-Security-Policy with no inline script or style anywhere, a
Permissions-Policy, and ``__Host-`` session and CSRF cookies in production.

The policy lives in config/settings/base.py ("Security headers"); its admin
relaxation and the Permissions-Policy middleware in core/security.py. The
browser tests check that pages still work under it in Chromium, which enforces
it, and report every console error (a CSP violation is one).
"""

import http.cookies
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from django.contrib import admin
from django.core import mail
from django.db import connection
from django.test import Client, TestCase
from django.urls import reverse
from procrastinate.contrib.django import app as jobs_app

from apps_catalog.models import App, Post
from tests.accounts.factories import UserFactory
from tests.accounts.helpers import LINK_RE, last_link, request_link
from tests.apps_catalog.factories import (
    AppFactory,
    MonetizationModelFactory,
    PostFactory,
    RequirementFactory,
)
from tests.billing.factories import WebhookEventFactory
from tests.config.test_serving import free_port, url_of_test_database, wait_for
from tests.e2e import sign_in_browser
from tests.jobs import jobs_queued
from tests.searches.factories import SavedSearchFactory, SearchHistoryFactory

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = PROJECT_ROOT / "templates"
STRIPE_HOSTS = ("https://checkout.stripe.com", "https://billing.stripe.com")
OAUTH_HOSTS = ("https://accounts.google.com", "https://github.com")


def policy_of(response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as ``{directive: [sources]}``."""
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


class InlineCode(HTMLParser):
    """Everything in a page that a strict policy refuses: inline scripts (data
    blocks such as json_script's ``type="application/json"`` are not run and
    are fine), ``<style>`` elements, ``style=""`` and ``on*=""`` attributes and
    ``javascript:`` URLs."""

    DATA_TYPES = frozenset({"application/json", "application/ld+json"})

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        data_block = (attributes.get("type") or "").lower() in self.DATA_TYPES
        if tag == "script" and not attributes.get("src") and not data_block:
            self.found.append(self.get_starttag_text())
        if tag == "style":
            self.found.append("<style>")
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.found.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src", "action", "formaction") and (
                (value or "").strip().lower().startswith("javascript:")
            ):
                self.found.append(f"<{tag} {name}={value!r}>")

    @classmethod
    def in_html(cls, html: str) -> list[str]:
        parser = cls()
        parser.feed(html)
        parser.close()
        return parser.found


def script_problems(html: str) -> list[str]:
    """What the admin's policy refuses: no style="" check (it allows those)."""
    return [item for item in InlineCode.in_html(html) if " style=" not in item]


# --- pages -------------------------------------------------------------------------


@pytest.fixture
def content(user):
    """One of everything the signed-in pages show, owned by ``user``."""
    app = AppFactory(owner=user, name="Header Check", status=App.Status.ACTIVE)
    return SimpleNamespace(
        app=app,
        requirement=RequirementFactory(app=app),
        model=MonetizationModelFactory(app=app, subscription=True),
        post=PostFactory(app=app),
        saved=SavedSearchFactory(user=user),
        history=SearchHistoryFactory(user=user),
    )


def public_paths(content) -> list[str]:
    return [
        "/",
        "/explore/",
        "/pricing/",
        f"/apps/{content.app.pk}/",
        f"/apps/{content.app.pk}/requirements/",
        f"/apps/{content.app.pk}/posts/",
        "/search/",
        "/accounts/login/",
    ]


def signed_in_paths(content) -> list[str]:
    app = content.app.pk
    return [
        *public_paths(content)[:-1],
        "/apps/",
        "/apps/new/",
        f"/apps/{app}/edit/",
        f"/apps/{app}/requirements/{content.requirement.pk}/edit/",
        f"/apps/{app}/monetization/",
        f"/apps/{app}/monetization/{content.model.pk}/edit/",
        f"/apps/{app}/posts/{content.post.pk}/edit/",
        "/search/saved/",
        f"/search/saved/{content.saved.pk}/",
        "/search/history/",
        f"/search/history/{content.history.pk}/",
        "/billing/",
        "/billing/success/",
        "/billing/cancel/",
        "/account/",
        "/account/name/",
        "/account/delete/",
        "/accounts/3rdparty/",
        "/accounts/sessions/",
        "/accounts/2fa/",
    ]


def fresh_sign_in(user) -> Client:
    """A client signed in just now by magic link: allauth lets it manage factors
    (AccountAdapter.is_reauthentication_required) without asking again."""
    browser = Client()
    request_link(browser, user.email)
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = browser.post(last_link(to=user.email))
    assert response.status_code == 302
    return browser


def assert_strict(response):
    policy = policy_of(response)
    path = response.request["PATH_INFO"]
    assert policy["default-src"] == ["'self'"], path
    assert policy["script-src"] == ["'self'"], path
    assert policy["style-src"] == ["'self'"], path
    assert policy["img-src"] == ["'self'", "data:"], path
    assert policy["object-src"] == ["'none'"], path
    assert policy["base-uri"] == ["'none'"], path
    assert policy["frame-ancestors"] == ["'none'"], path
    assert policy["form-action"] == ["'self'", *STRIPE_HOSTS, *OAUTH_HOSTS], path
    # Nothing in any directive lets inline code or eval back in.
    for sources in policy.values():
        assert "'unsafe-inline'" not in sources, path
        assert "'unsafe-eval'" not in sources, path
    assert "style-src-attr" not in policy, path


def assert_no_inline_code(response):
    html = response.content.decode()
    found = InlineCode.in_html(html)
    assert found == [], f"{response.request['PATH_INFO']}: {found}"


@pytest.mark.django_db
def test_public_pages_send_the_strict_policy_and_no_inline_code(client, content):
    for path in public_paths(content):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_strict(response)
        assert_no_inline_code(response)

    for path in ("/no-such-page/", "/accounts/magic/no-such-link/"):
        missing = client.get(path)
        assert missing.status_code == 404, path
        assert_strict(missing)
        assert_no_inline_code(missing)


@pytest.mark.django_db
def test_signed_in_pages_send_the_strict_policy_and_no_inline_code(
    user_client, content
):
    for path in signed_in_paths(content):
        response = user_client.get(path)
        assert response.status_code == 200, path
        assert_strict(response)
        assert_no_inline_code(response)


@pytest.mark.django_db
def test_search_results_draw_their_bars_without_style_attributes(user_client):
    user_client.post(
        "/search/",
        {
            "keywords": "seo tools, backlinks",
            "location": "US",
            "language": "en",
            "match_type": "broad",
        },
    )
    response = user_client.get("/search/")
    html = response.content.decode()
    assert html.count('class="bar fill-') == 2
    assert_strict(response)
    assert_no_inline_code(response)


@pytest.mark.django_db
def test_two_factor_pages_need_no_inline_code(user):
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

    browser = fresh_sign_in(user)
    for path in ("/accounts/2fa/totp/activate/", "/accounts/2fa/webauthn/add/"):
        response = browser.get(path)
        assert response.status_code == 200, path
        assert_strict(response)
        assert_no_inline_code(response)

    RecoveryCodes.activate(user)
    response = browser.get("/accounts/2fa/recovery-codes/")
    assert response.status_code == 200
    assert_no_inline_code(response)


def test_templates_hold_no_inline_script_or_style():
    """The rendered pages above are a sample; no template may bring inline code
    back on a page they miss."""
    pattern = re.compile(
        r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>|<style\b|"
        r"\sstyle=|\son[a-z]+=|javascript:",
        re.IGNORECASE,
    )
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}: {match.group(0)}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for match in pattern.finditer(path.read_text())
    ]
    assert offenders == []


# --- the admin -----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_may_use_style_attributes_and_nothing_else_inline(admin_client):
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    policy = policy_of(response)
    assert policy["style-src-attr"] == ["'unsafe-inline'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert script_problems(response.content.decode()) == []


@pytest.mark.django_db
def test_admin_pages_run_no_inline_script(admin_client, admin_user):
    event = WebhookEventFactory()
    paths = [
        reverse("admin:index"),
        reverse("admin:accounts_user_change", args=[admin_user.pk]),
        reverse("admin:billing_webhookevent_change", args=[event.pk]),
    ]
    for model in admin.site._registry:
        opts = model._meta
        paths.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    for path in paths:
        response = admin_client.get(path)
        assert response.status_code == 200, path
        assert "style-src-attr" in policy_of(response), path
        assert script_problems(response.content.decode()) == [], path


# --- Permissions-Policy ------------------------------------------------------------


@pytest.mark.django_db
def test_every_page_denies_unused_browser_features(admin_client):
    anonymous = Client()
    for response in (
        anonymous.get("/"),
        anonymous.get("/accounts/login/"),
        anonymous.get("/no-such-page/"),
        admin_client.get("/admin/"),
    ):
        header = response.headers.get("Permissions-Policy", "")
        features = dict(item.split("=", 1) for item in header.split(", "))
        for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
            assert features.get(feature) == "()", (feature, header)
        # Passkeys (allauth.mfa WebAuthn) on this site only.
        assert features["publickey-credentials-create"] == "(self)"
        assert features["publickey-credentials-get"] == "(self)"


# --- production cookies ------------------------------------------------------------

PRODUCTION_KEY = "headers-test-" + "h" * 50


@pytest.fixture
def production_server(tmp_path, django_db_setup, django_db_blocker):
    """gunicorn with production settings over plain HTTP on loopback (no TLS in
    tests: SECURE_SSL_REDIRECT off), on the test database."""
    with django_db_blocker.unblock():
        database_url = url_of_test_database()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": PRODUCTION_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "STATIC_ROOT": str(tmp_path / "static"),
        "DATABASE_URL": database_url,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
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
            *(sys.executable, "-m", "gunicorn", "config.wsgi"),
            *("--bind", f"127.0.0.1:{port}", "--workers", "1"),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/healthz")
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def sign_in_link_sent(settings=None) -> str:
    """Send the sign-in mails a server queued, as a worker would, and return the
    newest link. Mail queued by a production server is sealed with its
    SECRET_KEY: pass ``settings`` to open it with that key."""
    if settings is not None:
        settings.SECRET_KEY = PRODUCTION_KEY
    for job in jobs_queued(task_name="accounts.magic_link_mail_send"):
        jobs_app.tasks[job.task_name].func(**job.args)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM procrastinate_jobs WHERE id = %s", [job.id])
    return LINK_RE.search(mail.outbox[-1].body).group(0)


def cookies_set(response) -> dict[str, http.cookies.Morsel]:
    jar = http.cookies.SimpleCookie()
    for header in response.raw.headers.getlist("Set-Cookie"):
        jar.load(header)
    return dict(jar)


def assert_host_only_secure(morsel):
    assert morsel["secure"], morsel.OutputString()
    assert morsel["path"] == "/", morsel.OutputString()
    assert not morsel["domain"], morsel.OutputString()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_production_cookies_are_host_prefixed(production_server, settings):
    """Signs in by magic link against gunicorn under production settings.
    Cookies travel by hand: Python's cookie jar keeps Secure cookies for https
    URLs only."""
    user = UserFactory(email="host-cookies@example.com")
    base = production_server

    page = requests.get(f"{base}/accounts/login/", timeout=30)
    set_now = cookies_set(page)
    assert set(set_now) == {"__Host-csrftoken"}
    assert_host_only_secure(set_now["__Host-csrftoken"])
    csrf_cookie = set_now["__Host-csrftoken"].value
    jar = {"__Host-csrftoken": csrf_cookie}

    def post(url, data):
        token = re.search(
            r'name="csrfmiddlewaretoken" value="([^"]+)"',
            requests.get(url, cookies=jar, timeout=30).text,
        )[1]
        return requests.post(
            url,
            data={**data, "csrfmiddlewaretoken": token},
            cookies=jar,
            allow_redirects=False,
            timeout=30,
        )

    sent = post(f"{base}/accounts/login/", {"email": user.email})
    assert "Check your email" in sent.text
    link = sign_in_link_sent(settings)
    signed_in = post(link, {})
    assert signed_in.status_code == 302
    set_now = cookies_set(signed_in)
    assert "sessionid" not in set_now
    session = set_now["__Host-sessionid"]
    assert_host_only_secure(session)
    assert session["httponly"]

    jar["__Host-sessionid"] = session.value
    account = requests.get(f"{base}/account/", cookies=jar, timeout=30)
    assert account.status_code == 200
    assert user.email in account.text


# --- in a real browser ---------------------------------------------------------------


class ConsoleProblems:
    """Console errors and warnings of a page (Chromium reports each CSP
    violation there), uncaught exceptions, and securitypolicyviolation events."""

    def __init__(self, page):
        self.found: list[str] = []
        page.context.add_init_script(
            "document.addEventListener('securitypolicyviolation', (e) =>"
            " console.error('securitypolicyviolation', e.effectiveDirective,"
            " e.blockedURI));"
        )
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.found.append(f"pageerror: {error}"))

    def _console(self, message):
        # The site has no favicon; Chromium asks for one and logs the 404.
        if message.location.get("url", "").endswith("/favicon.ico"):
            return
        if message.type in ("error", "warning"):
            self.found.append(f"{message.type}: {message.text} ({message.location})")

    def take(self) -> list[str]:
        found, self.found = self.found, []
        return found


def stub(route):
    """Stand-in for an external page the browser is sent to (no network)."""
    route.fulfill(status=200, content_type="text/html", body="<h1>Stub</h1>")


def magic_link_sign_in(page, base, email, settings=None):
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=email]", email)
    page.click("text=Email me a sign-in link")
    page.wait_for_selector("text=Check your email")
    page.goto(sign_in_link_sent(settings))
    page.click("#confirm-sign-in")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_chromium_enforces_the_policy(live_url, page):
    problems = ConsoleProblems(page)
    page.goto(f"{live_url}/")
    ran = page.evaluate(
        """() => {
            const script = document.createElement('script');
            script.textContent = 'window.inlineRan = true';
            document.head.appendChild(script);
            const probe = document.createElement('div');
            probe.innerHTML = '<p style="color: rgb(1, 2, 3)">x</p>';
            document.body.appendChild(probe);
            return {
                inline: window.inlineRan === true,
                style: getComputedStyle(probe.firstChild).color,
            };
        }"""
    )
    assert ran["inline"] is False
    assert ran["style"] != "rgb(1, 2, 3)"
    page.wait_for_timeout(300)  # violation events are dispatched asynchronously
    reported = problems.take()
    assert any("securitypolicyviolation script-src-elem" in line for line in reported)
    assert any("securitypolicyviolation style-src-attr" in line for line in reported)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_key_pages_work_without_a_policy_violation(live_url, page, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_headers"
    settings.STRIPE_PRICE_PRO = "price_pro"
    settings.STRIPE_PRICE_ENTERPRISE = "price_enterprise"
    settings.SOCIALACCOUNT_PROVIDERS = {
        "github": {"APPS": [{"client_id": "gh-id", "secret": "gh", "key": ""}]},
    }
    user = UserFactory(name="Hedda Header")
    app = AppFactory(owner=user, name="Policy Pal", status=App.Status.ACTIVE)
    RequirementFactory(app=app, description="Works under CSP")
    post = PostFactory(app=app, title="Goodbye post")
    problems = ConsoleProblems(page)

    # Signed out: the public pages, and the OAuth button's POST that answers a
    # redirect to the provider (form-action must allow github.com).
    page.route("https://github.com/**", stub)
    for path in ("/", "/explore/", f"/apps/{app.pk}/", "/pricing/"):
        page.goto(f"{live_url}{path}")
        assert problems.take() == [], path
    page.goto(f"{live_url}/accounts/login/")
    # The card's width comes from a class in app.css now, not style="".
    assert page.locator("article.narrow").evaluate(
        "card => getComputedStyle(card).maxWidth === 32 * parseFloat("
        "getComputedStyle(document.documentElement).fontSize) + 'px'"
    )
    page.click("text=Continue with GitHub")
    page.wait_for_url("https://github.com/login/oauth/authorize**")
    assert problems.take() == []

    sign_in_browser(page, live_url, user)
    page.goto(f"{live_url}/search/")
    page.fill("textarea[name=keywords]", "seo tools\nbacklinks")
    page.click("text=Research keywords")
    page.wait_for_selector("table#results")
    # The results arrive as a new page: measure once its stylesheet has
    # applied, not as soon as the table is parsed (an unstyled empty span is 0 px).
    page.wait_for_load_state("load")
    widths = page.locator("table#results .bar").evaluate_all(
        "bars => bars.map(bar => bar.getBoundingClientRect().width)"
    )
    assert len(widths) == 2 and max(widths) > 50  # a class, not style="", sizes them
    assert problems.take() == []

    # The board's move (htmx, static/js/board.js) runs under the policy; a
    # delete asks first (static/js/app.js).
    page.goto(f"{live_url}/apps/{app.pk}/requirements/")
    page.get_by_role("button", name="Move “Works under CSP” to Completed").click()
    page.wait_for_selector("text=Moved “Works under CSP” to Completed.")
    page.goto(f"{live_url}/apps/{app.pk}/posts/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("button:has-text('Delete')")
    page.wait_for_timeout(300)
    assert Post.objects.filter(pk=post.pk).exists()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Delete')")
    page.wait_for_selector("text=Goodbye post", state="detached")
    assert problems.take() == []

    for path in ("/apps/", "/account/", "/accounts/sessions/", "/billing/"):
        page.goto(f"{live_url}{path}")
        assert problems.take() == [], path

    # Upgrading answers 303 to Stripe Checkout (form-action must allow it).
    import billing.services

    page.route("https://checkout.stripe.com/**", stub)
    checkout = "https://checkout.stripe.com/c/pay/cs_test_headers"
    original = billing.services.checkout_session_start
    billing.services.checkout_session_start = lambda **kwargs: checkout
    try:
        page.click("button:has-text('Upgrade to Pro')")
        page.wait_for_url(checkout)
    finally:
        billing.services.checkout_session_start = original
    assert problems.take() == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_two_factor_setup_works_under_the_policy(live_url, page):
    """The TOTP QR code is a data: image; the passkey page runs allauth's
    scripts (tests/accounts/test_mfa.py adds a passkey under the policy)."""
    user = UserFactory(name="Tova Factor")
    problems = ConsoleProblems(page)
    magic_link_sign_in(page, live_url, user.email)
    page.wait_for_selector("nav >> text=Tova Factor")

    page.goto(f"{live_url}/accounts/2fa/totp/activate/")
    qr = page.locator("img[src^='data:']")
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
    page.goto(f"{live_url}/accounts/2fa/webauthn/add/")
    page.wait_for_selector("#mfa_webauthn_add")
    assert problems.take() == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_admin_works_under_its_policy(live_url, page, admin_user):
    """Django's own admin pages pass the strict policy; the job list and job
    page (Procrastinate) and the webhook event page (its payload) need the
    style="" relaxation, and nothing else."""
    from core.tasks import mail_send

    event = WebhookEventFactory()
    job_id = mail_send.defer(sealed="sealed")
    problems = ConsoleProblems(page)
    sign_in_browser(page, live_url, admin_user)
    try:
        for path in (
            reverse("admin:index"),
            reverse("admin:accounts_user_changelist") + "?q=admin",
            reverse("admin:accounts_user_change", args=[admin_user.pk]),
            reverse("admin:billing_webhookevent_change", args=[event.pk]),
            reverse("admin:procrastinate_procrastinatejob_changelist"),
            reverse("admin:procrastinate_procrastinatejob_change", args=[job_id]),
            reverse("admin:ops_databasedashboard_changelist"),
            reverse("admin:ops_auditlog_changelist"),
        ):
            page.goto(f"{live_url}{path}")
            assert page.locator("#content").count() == 1, path
            assert problems.take() == [], path
        # The admin's own scripts run: the action bar counts a ticked row.
        page.goto(f"{live_url}{reverse('admin:accounts_user_changelist')}")
        page.check("#result_list tbody input.action-select >> nth=0")
        page.wait_for_selector(".action-counter:has-text('1 of')")
        # The dashboard's bars take their length from classes.
        dashboard = reverse("admin:ops_databasedashboard_changelist")
        page.goto(f"{live_url}{dashboard}?tab=tables")
        widest = page.locator(".dashboard .bar").evaluate_all(
            "bars => Math.max(...bars.map(bar => bar.getBoundingClientRect().width))"
        )
        assert widest > 50
        assert problems.take() == []
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM procrastinate_jobs WHERE id = %s", [job_id])


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_production_cookies_work_in_chromium(production_server, page, settings):
    """Chromium keeps Secure (and __Host-) cookies on http://127.0.0.1, so the
    production settings sign in, post forms and sign out over plain HTTP."""
    UserFactory(email="chromium-host@example.com", name="Cora Cookie")
    problems = ConsoleProblems(page)
    magic_link_sign_in(page, production_server, "chromium-host@example.com", settings)
    page.wait_for_selector("nav >> text=Cora Cookie")

    cookies = {c["name"]: c for c in page.context.cookies()}
    assert {"__Host-sessionid", "__Host-csrftoken"} <= set(cookies)
    assert not {"sessionid", "csrftoken"} & set(cookies)
    for name in ("__Host-sessionid", "__Host-csrftoken"):
        assert cookies[name]["secure"] and cookies[name]["path"] == "/"

    for path in ("/explore/", "/search/", "/billing/", "/account/"):
        page.goto(f"{production_server}{path}")
        assert problems.take() == [], path

    # A POST with the __Host- CSRF cookie: signing out.
    page.click("nav summary")
    page.click("nav >> text=Sign out")
    page.wait_for_selector("nav >> text=Sign in")
    assert problems.take() == []
