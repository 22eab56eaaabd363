"""Hostile requests on every route, from the URL resolver: odd query strings,
form values, JSON bodies and headers never answer >= 500; every POST route
refuses a request without its CSRF token; no user reaches another's private
rows (the access matrix).

The routes are read from the URL resolver, so a new route is swept without
being listed here. Its form fields are found on the pages that link to it (any
``<form action>``). A route whose URL takes a parameter this module has no
value for fails :func:`test_every_route_is_swept` until one is added to
``route_values``.
"""

import itertools
import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote, urljoin, urlsplit

import pytest
from django.contrib import admin
from django.db import DatabaseError, transaction
from django.test import Client
from django.urls import NoReverseMatch, URLResolver, get_resolver, reverse
from django.urls.resolvers import RegexPattern

from accounts import services as account_services
from api.services import api_key_create
from apps_catalog.models import App, MonetizationModel, Post, Requirement
from searches.models import SavedSearch, SearchHistory
from tests.accounts.factories import UserFactory
from tests.accounts.helpers import last_link, request_link
from tests.apps_catalog.factories import (
    AppFactory,
    MonetizationModelFactory,
    PostFactory,
    RequirementFactory,
)
from tests.billing import conftest as billing_fixtures
from tests.jobs import jobs_run_queued
from tests.searches.factories import SavedSearchFactory, SearchHistoryFactory

pytestmark = pytest.mark.django_db

# Billing configured against the local fake Stripe (tests/billing/conftest.py):
# upgrade and portal run their real code, the webhook checks signatures.
stripe_settings = billing_fixtures.stripe_settings
stripe_api = billing_fixtures.stripe_api

ODD_QUERIES = [
    "page=abc",
    "page=-1",
    "page=99999999999999999999",
    "sort=%00",
    "sort=zzz",
    "q=%00",
    "q=" + "x" * 5000,
    "type=NOPE",
    "cursor=%00garbage",
    "cursor=abc",
    "status=NOPE&priority=%00",
    "keywords=%00",
    "q=%ED%A0%80",
    "keywords=%ED%A0%80&location=%00&language=%FF",
    "page=%FF%FE",
    "next=abc",
    "next=%00",
    "next=%ED%A0%80",
    "plan=%00&match_type=[]",
    "a=1&a=2&a[]=3&a[b]=4",
]
# Form values, already percent-encoded: NUL bytes, a lone surrogate's UTF-8
# bytes, invalid UTF-8, huge values and values of the wrong type.
ODD_VALUES = {
    "nul": quote("\x00"),
    "nul-inside": quote("seo\x00tools"),
    "surrogate-utf8": "%ED%A0%80",
    "invalid-utf8": "%FF%FE%C0%AF",
    # Over every max_length but the keyword box's. (Not 100,000: see
    # test_a_huge_display_name_is_refused_quickly.)
    "huge": "x" * 10_000,
    "negative": "-1",
    "huge-number": "9" * 40,
    "infinity": "1e309",
    "nan": "NaN",
    "json-text": quote('{"a": [1]}'),
    "bad-date": quote("2024-13-45T25:61"),
    "blank": quote("   "),
}
ODD_JSON = [
    '{"keywords": ["\\ud800"], "name": "\\udfff", "email": "\\ud800@x.io"}',
    b'{"keywords": ["\xed\xa0\x80"], "name": "\xed\xb0\x80"}',
    b"\xff\xfe{}",
    '{"keywords": {"a": 1}, "location": [], "match_type": null, "name": 5}',
    "[" * 5000,
    '"just a string"',
    "null",
    '{"keywords": ["' + "k" * 200_000 + '"]}',
]
# Headers a real server passes on (no NUL: gunicorn refuses those itself).
ODD_HEADERS = {
    "HTTP_USER_AGENT": "\xff\xfe" + "u" * 10_000,
    "HTTP_X_FORWARDED_FOR": "not-an-ip, 999.1.1.1, ::zz",
    "HTTP_ACCEPT_LANGUAGE": "zz-ZZZZZZZZ;q=abc," * 50,
    "HTTP_REFERER": "http://[::1/%ED%A0%80",
    "HTTP_COOKIE": "sessionid=%00garbage; csrftoken=x; db_primary=%FF",
    "HTTP_ACCEPT": "application/json;q=x, */*",
}
# Fields sent to every POST route besides those found in its forms.
BASE_FIELDS = {"name", "email", "keywords", "next", "page", "plan", "code", "status"}
# Routes whose POST changes what later routes need: swept last, in this order.
LAST = re.compile(r"/(archive|restore|delete|logout)/$")
DEAD_SECRET = "dead-link-secret-" + "x" * 30


# --- the routes -----------------------------------------------------------------------


@dataclass
class Route:
    name: str  # "namespace:name", or the pattern for an unnamed route
    params: tuple[str, ...]
    path: str | None = None  # None: no value for a parameter yet


def _params(pattern) -> tuple[str, ...]:
    if isinstance(pattern.pattern, RegexPattern):
        return tuple(pattern.pattern.regex.groupindex)
    return tuple(pattern.pattern.converters)


def _patterns(patterns, prefix="", namespace="", params=()):
    """(prefix, namespace, pattern, parameters) of every leaf pattern; the
    parameters include those of the resolvers above it."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                continue  # the admin: test_admin_forms_never_answer_a_500
            yield from _patterns(
                pattern.url_patterns,
                prefix + str(pattern.pattern),
                ":".join(filter(None, [namespace, pattern.namespace])),
                params + _params(pattern),
            )
        else:
            yield prefix, namespace, pattern, params + _params(pattern)


def route_values(name: str, objects: dict) -> dict:
    """URL parameter values of route ``name``, from ``objects``."""
    if name.startswith("mfa_"):
        return {"pk": 1}  # an authenticator id (int), nobody's
    pk = objects["history"] if name == "searches:history_detail" else objects["saved"]
    return {
        "app_id": objects["app"],
        "requirement_id": objects["requirement"],
        "model_id": objects["model"],
        "post_id": objects["post"],
        "pk": pk,
        "secret": objects.get("secret", DEAD_SECRET),
        "export_id": objects.get("export", "nosuchexport"),
        # The API's path parameters (api/v1.py) and the account's API keys.
        "saved_id": objects["saved"],
        "key_id": objects.get("api_key", "z" + "0" * 24),
        "key": "nosuchkey",
        "uidb36": "1z",
    }


def routes(objects: dict) -> list[Route]:
    """Every route but the admin's, with a concrete path, swept in a stable
    order (routes that remove things last)."""
    found: dict[str, Route] = {}
    for prefix, namespace, pattern, params in _patterns(get_resolver().url_patterns):
        if pattern.name:
            name = f"{namespace}:{pattern.name}" if namespace else pattern.name
            values = route_values(name, objects)
            if not set(params) <= values.keys():
                found.setdefault(name, Route(name, params))
                continue
            path = reverse(name, kwargs={key: values[key] for key in params})
        elif isinstance(pattern.pattern, RegexPattern) or params:
            # Unnamed patterns with parameters: the project's catch-alls in
            # accounts/auth_urls.py, reached through allauth's named routes.
            continue
        else:
            name = path = "/" + prefix + str(pattern.pattern)
        found.setdefault(path, Route(name, params, path))
    return sorted(
        found.values(),
        key=lambda r: (
            r.path is not None and r.path.startswith("/account/delete"),
            bool(r.path and LAST.search(r.path)),
            r.path or "",
        ),
    )


# --- forms on the pages ---------------------------------------------------------------


@dataclass
class _Form:
    method: str
    action: str
    fields: set[str] = field(default_factory=set)


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[_Form] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            method = (attrs.get("method") or "get").lower()
            self.forms.append(_Form(method, attrs.get("action") or ""))
        elif (
            tag in {"input", "select", "textarea", "button"}
            and self.forms
            and attrs.get("name") not in (None, "", "csrfmiddlewaretoken")
        ):
            self.forms[-1].fields.add(attrs["name"])


def form_fields(client, paths: list[str]) -> dict[str, set[str]]:
    """Field names of every form found on ``paths``, by the path it posts to."""
    fields: dict[str, set[str]] = {}
    for path in paths:
        response = client.get(path)
        if "html" not in response.get("Content-Type", ""):
            continue
        parser = _FormParser()
        parser.feed(response.content.decode(errors="replace"))
        for form in parser.forms:
            target = urlsplit(urljoin(path, form.action)).path
            fields.setdefault(target, set()).update(form.fields)
    return fields


# Fields left out of a route's odd bodies while a known 500 stands (each has
# a strict xfail test below, which fails once the bug is fixed).
KNOWN_BROKEN_FIELDS: dict = {}


def odd_form_bodies(fields: set[str], path: str = "", values=None) -> list[str]:
    names = sorted(BASE_FIELDS | fields)
    for route, broken in KNOWN_BROKEN_FIELDS.items():
        if route.match(path):
            names = [name for name in names if name not in broken]
    bodies = [
        "&".join(f"{quote(name)}={value}" for name in names)
        for value in (ODD_VALUES if values is None else values).values()
    ]
    bodies.append("&".join(f"{quote(n)}=a&{quote(n)}=b" for n in names))
    bodies.append("&".join(f"{quote(n)}[]=1&{quote(n)}[a]=2" for n in names))
    bodies.append("")
    return bodies


# --- the sweep ------------------------------------------------------------------------


def owner_objects(user) -> dict:
    app = AppFactory(owner=user, status=App.Status.DRAFT)
    return {
        "app": app.pk,
        "requirement": RequirementFactory(app=app).pk,
        "model": MonetizationModelFactory(app=app).pk,
        "post": PostFactory(app=app, author=user).pk,
        "saved": SavedSearchFactory(user=user).pk,
        "history": SearchHistoryFactory(user=user).pk,
    }


def sweep(client: Client, paths: list[str], fields: dict, sign_in=None) -> tuple:
    """Every odd request on every path; returns (requests sent, answers >= 500)."""
    sent, errors = 0, []

    def send(method, path, **kwargs):
        nonlocal sent
        sent += 1
        response = getattr(client, method)(path, **kwargs)
        if response.status_code >= 500:
            detail = kwargs.get("data", kwargs.get("QUERY_STRING", ""))
            errors.append((method, path, response.status_code, str(detail)[:80]))

    form = "application/x-www-form-urlencoded"
    for path in paths:
        if sign_in:
            sign_in()
        for query in ODD_QUERIES:
            send("get", path, QUERY_STRING=query)
        for body in odd_form_bodies(fields.get(path, set()), path):
            send("post", path, data=body, content_type=form)
        for body in ODD_JSON:
            send("post", path, data=body, content_type="application/json")
        send("get", path, **ODD_HEADERS)
        send("post", path, data="name=x", content_type=form, **ODD_HEADERS)
    return sent, errors


@pytest.fixture
def swept(user, stripe_api):
    objects = owner_objects(user)
    # A live sign-in link of the user: its route answers its real pages.
    request_link(Client(), user.email)
    objects["secret"] = last_link().strip("/").rsplit("/", 1)[1]
    objects["api_key"] = api_key_create(user=user, name="swept")[0].pk
    return objects, routes(objects)


def test_every_route_is_swept(swept):
    objects, found = swept

    assert [r.name for r in found if r.path is None] == []
    paths = {r.path for r in found}
    for expected in (
        "/account/name/",
        "/account/data/",
        "/accounts/2fa/totp/activate/",
        "/billing/upgrade/",
        "/billing/portal/",
        "/billing/webhook/",
        "/api/keywords/",
        "/api/v1/searches",
        f"/api/v1/saved-searches/{objects['saved']}",
        "/account/api-keys/",
        f"/accounts/magic/{objects['secret']}/",
    ):
        assert expected in paths


@pytest.mark.slow
def test_odd_input_on_every_form_and_json_endpoint_never_reaches_a_500(
    swept, user, capsys
):
    _, found = swept
    paths = [r.path for r in found]
    client = Client(raise_request_exception=False)
    client.force_login(user)
    fields = form_fields(client, paths)

    signed_in = sweep(client, paths, fields, sign_in=lambda: client.force_login(user))
    client.logout()
    anonymous = sweep(client, paths, fields)

    sent = signed_in[0] + anonymous[0]
    errors = signed_in[1] + anonymous[1]
    with capsys.disabled():
        print(
            f"\nodd-input sweep: {sent} requests over {len(paths)} routes "
            f"(signed in and anonymous), {len(errors)} answered >= 500"
        )
    assert errors == [], "\n".join(map(repr, errors))


def admin_pages(model) -> list[str]:
    """The changelist, add and (for its first row) change page of ``model``'s
    admin: those it has."""
    meta = model._meta
    pages = []
    try:
        with transaction.atomic():  # a dashboard "model" has no table
            first = model._default_manager.order_by("pk").first()
    except DatabaseError:
        first = None
    for view, args in (
        ("changelist", []),
        ("add", []),
        ("change", [first.pk] if first else None),
    ):
        if args is None:
            continue
        try:
            pages.append(
                reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args)
            )
        except NoReverseMatch:
            continue  # e.g. a read-only or dashboard admin without that page
    return pages


@pytest.mark.slow
def test_admin_forms_never_answer_a_500(admin_user, capsys):
    owner_objects(admin_user)  # a row for each catalog and search change page
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    form = "application/x-www-form-urlencoded"
    admin_queries = [*ODD_QUERIES, "o=99.-1", "p=-1", "e=1", "_to_field=password"]
    values = ODD_VALUES
    sent, errors, pages = 0, [], []
    actions = {}
    for model in admin.site._registry:
        for page in admin_pages(model):
            pages.append(page)
            # No such row, and a key of the wrong shape (core.middleware.
            # BadInputMiddleware answers 400 to what the admin cannot parse).
            actions[page] = (
                "action=delete_selected&_selected_action=2147483647",
                "action=delete_selected&_selected_action=nosuchrow",
            )
    fields = form_fields(client, pages)
    for path in pages:
        action = actions[path]
        requests = [("get", {"QUERY_STRING": query}) for query in admin_queries]
        requests += [
            ("post", {"data": body, "content_type": form})
            for body in (
                *odd_form_bodies(fields.get(path, set()), values=values),
                *action,
            )
        ]
        for method, kwargs in requests:
            sent += 1
            status = getattr(client, method)(path, **kwargs).status_code
            if status >= 500:
                detail = kwargs.get("data", kwargs.get("QUERY_STRING"))[:80]
                errors.append((method, path, detail, status))
    with capsys.disabled():
        print(
            f"\nadmin odd-input sweep: {sent} requests over {len(pages)} admin "
            f"pages, {len(errors)} answered >= 500"
        )
    assert errors == [], "\n".join(map(repr, errors))


# --- CSRF -----------------------------------------------------------------------------

# Refusing a missing token is not the rule here: Stripe signs its calls and
# sends no token (billing.views.webhook checks the signature instead).
CSRF_EXEMPT = {"/billing/webhook/"}
# The public API reads no cookie (a bearer key or nothing), so a forged
# cross-site request carries no credentials: there is no token to check.
CSRF_EXEMPT_PREFIXES = ("/api/v1/",)


def test_every_post_route_refuses_a_request_without_its_csrf_token(swept, user, capsys):
    _, found = swept
    paths = [r.path for r in found]

    checked, refused, accepted = 0, 0, []
    for signed_in in (True, False):
        for path in paths:
            trusting = Client()  # no CSRF enforcement: is this a POST route?
            guarded = Client(enforce_csrf_checks=True)
            if signed_in:
                trusting.force_login(user)
                guarded.force_login(user)
            answer = trusting.post(path, {"name": "probe"}).status_code
            if (
                answer in (404, 405)
                or path in CSRF_EXEMPT
                or path.startswith(CSRF_EXEMPT_PREFIXES)
            ):
                continue  # not a POST route (for this visitor)
            checked += 1
            response = guarded.post(path, {"name": "probe", "email": user.email})
            # 403: the CSRF check; 401: the API refuses an anonymous caller
            # (no session, so nothing a forged request could ride on).
            if response.status_code == 403 or (
                response.status_code == 401 and not signed_in
            ):
                refused += 1
            else:
                accepted.append((path, signed_in, response.status_code))
    with capsys.disabled():
        print(
            f"\nCSRF: {checked} POST route checks (signed in and anonymous), "
            f"{refused} refused without a token"
        )
    assert accepted == []
    assert checked > 40


# --- the access matrix ----------------------------------------------------------------

SECRET_MARK = "matrix-private-7f3a"
# Pages listing the signed-in user's own things (and the public catalog).
LISTS = (
    "/apps/",
    "/explore/",
    "/search/saved/",
    "/search/history/",
    "/account/",
    "/billing/",
    "/accounts/sessions/",
)


def test_access_matrix_no_one_reaches_another_users_private_rows(
    settings, tmp_path, stripe_api, capsys
):
    settings.DATA_EXPORT_DIR = tmp_path / "exports"
    owner = UserFactory(email=f"{SECRET_MARK}@example.com", name=SECRET_MARK)
    app = AppFactory(owner=owner, status=App.Status.DRAFT, name=f"{SECRET_MARK} app")
    objects = {
        "app": app.pk,
        "requirement": RequirementFactory(
            app=app, description=f"{SECRET_MARK} requirement"
        ).pk,
        "model": MonetizationModelFactory(app=app, features=[SECRET_MARK]).pk,
        "post": PostFactory(
            app=app, author=owner, title=f"{SECRET_MARK} post", published=False
        ).pk,
        "saved": SavedSearchFactory(user=owner, name=f"{SECRET_MARK} saved").pk,
        "history": SearchHistoryFactory(user=owner, keywords=[SECRET_MARK]).pk,
        "export": account_services.data_export_request(
            user=owner, base_url="http://testserver/"
        ),
    }
    jobs_run_queued()
    owner_path = f"/account/data/{objects['export']}/"
    owner_client = Client()
    owner_client.force_login(owner)
    assert owner_client.get(owner_path).status_code == 200  # it exists

    before = _private_rows(owner)
    stranger = UserFactory()
    visitors = {"another user": stranger, "anonymous": None}
    paths = [r.path for r in routes(objects) if r.path and r.params]
    cells, leaks = 0, []
    for (who, visitor), path in itertools.product(visitors.items(), paths):
        client = Client(raise_request_exception=False)
        if visitor is not None:
            client.force_login(visitor)
        for method in ("get", "post"):
            cells += 1
            response = getattr(client, method)(path, {"name": "taken", "status": "x"})
            body = b"".join(response) if response.streaming else response.content
            if response.status_code < 300 and SECRET_MARK.encode() in body:
                leaks.append((who, method.upper(), path, response.status_code))
    # The lists every signed-in user has show nothing of the owner either.
    stranger_client = Client()
    stranger_client.force_login(stranger)
    for path in LISTS:
        cells += 1
        if SECRET_MARK in stranger_client.get(path).content.decode():
            leaks.append(("another user", "GET", path, 200))
    with capsys.disabled():
        print(
            f"\naccess matrix: {cells} cells ({len(paths)} routes with ids x "
            f"{len(visitors)} visitors x GET/POST, plus {len(LISTS)} lists), "
            f"{len(leaks)} leaks"
        )
    assert leaks == []
    assert _private_rows(owner) == before


def _private_rows(owner) -> dict:
    return {
        "apps": list(App.objects.filter(owner=owner).values()),
        "requirements": list(Requirement.objects.filter(app__owner=owner).values()),
        "models": list(MonetizationModel.objects.filter(app__owner=owner).values()),
        "posts": list(Post.objects.filter(author=owner).values()),
        "saved": list(SavedSearch.objects.filter(user=owner).values()),
        "history": list(SearchHistory.objects.filter(user=owner).values()),
    }


# --- known 500s and slow answers, outside this module's reach -------------------------


def test_requirement_status_ignores_an_unsafe_next(user):
    requirement = RequirementFactory(app=AppFactory(owner=user))
    client = Client(raise_request_exception=False)
    client.force_login(user)
    path = f"/apps/{requirement.app_id}/requirements/{requirement.pk}/status/"

    response = client.post(path, {"status": "COMPLETED", "version": 1, "next": "abc"})

    assert response.status_code == 302


def test_a_huge_display_name_is_refused_quickly(user_client):
    started = time.perf_counter()

    response = user_client.post("/account/name/", {"name": "x" * 30_000})

    assert response.status_code == 400
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("get", "/admin/apps_catalog/requirement/?priority=%00", None),
        (
            "post",
            "/admin/accounts/user/",
            "action=delete_selected&_selected_action=%00",
        ),
        (
            "post",
            "/admin/account/emailaddress/",
            "action=delete_selected&_selected_action=abc",
        ),
    ],
    ids=["nul-in-a-filter", "nul-selected", "non-integer-selected"],
)
def test_the_admin_answers_a_nul_byte_or_a_non_integer_selection_with_a_400(
    admin_user, method, path, data
):
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    kwargs = {}
    if data is not None:
        kwargs = {"data": data, "content_type": "application/x-www-form-urlencoded"}

    assert getattr(client, method)(path, **kwargs).status_code == 400


# --- ids in URLs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/apps/%00/", "/search/saved/%00/", "/search/history/%00/", "/search/saved/x/"],
)
def test_malformed_ids_in_urls_are_404(user_client, path):
    assert user_client.get(path).status_code == 404
