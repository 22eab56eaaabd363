"""`make bench [SCALE=small|large]`: seed a scale, serve it, load it, report.

Steps (each printed as it runs):

1. database ``bench_<scale>`` on the embedded server (or on DATABASE_URL's
   server): created when missing, migrated, seeded with the demo data plus the
   scale's volume through ``ops.seed`` (each app's seeder, COPY) and VACUUM
   ANALYZEd. The seed's timings are kept in a ``bench_meta`` table, so a re-run
   reuses the seeded database and reports the seed it had;
2. seed path vs bare COPY: 1M search-history rows (``--copy-rows``) through the
   seed path (generation + COPY into the real table, indexes, constraints and
   FKs in place; rolled back afterwards) against a bare COPY of the same number
   of pre-generated rows into an UNLOGGED table without indexes or constraints;
3. sign-in: sessions for a staff user and a heavy user (ENTERPRISE, most
   history rows) made with Django's ``force_login`` (SessionStore + the auth
   session keys); the heavy user's session also holds a finished search, so
   ``/search/`` renders a cached result table;
4. queries per page: every page once through Django's test ``Client`` under
   ``CaptureQueriesContext`` (status and content checked); then where each
   page's time goes (bench/profile.py): ``--profile-requests`` requests per
   page through the same clients, unprofiled (wall and database time) and
   under cProfile (templates / ORM Python / other);
5. ORM vs raw SQL: each page's main query through the ORM (rows as the page
   builds them) and the very SQL it emits (every statement, a prefetch's
   too) through a bare psycopg cursor, ``--orm-iterations`` times each;
6. gunicorn (2 workers, production settings via bench/settings.py, a throwaway
   SECRET_KEY, collectstatic into a temp dir) driven by ``wrk`` per page
   (``--duration`` seconds after a warm-up), the floor ``/bench/floor/`` included;
7. the webhook: ``--webhook-events`` distinct events signed with the webhook
   secret, sent by wrk (bench/wrk/webhook.lua), then checked: one WebhookEvent
   row per distinct event sent, each PROCESSED at its first attempt;
8. jobs (Procrastinate): ``--jobs`` no-op jobs, then as many mail jobs, deferred
   one per transaction as a request does (jobs/s enqueued), then drained by
   ``--job-workers`` real worker processes (``--job-concurrency`` each; jobs/s
   processed), the mail going to an SMTP sink on 127.0.0.1 (aiosmtpd);
9. sign-in to SMTP: ``--sign-ins`` concurrent sign-in POSTs (distinct
   addresses, CSRF token fetched first) against the same gunicorn, with job
   workers started the same way: p50/p95/max from each POST to its mail
   reaching the sink;
10. the report: printed and written to ``bench/results/<date>-<scale>.md``.

``--only jobs`` runs the database step and steps 8-9 alone and prints their
report without writing it; ``--only profile`` runs the database step and steps
3-5 alone and prints the profile and ORM-vs-raw sections without writing them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import http.client
import json
import math
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote, urlencode, urlparse, urlunparse

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = BASE_DIR / "bench" / "results"
WRK_DIR = BASE_DIR / "bench" / "wrk"

SCALES = {
    "small": {"users": 1_000, "apps": 10_000, "searches": 100_000},
    "large": {"users": 100_000, "apps": 1_000_000, "searches": 10_000_000},
}
WEBHOOK_SECRET = "whsec_bench_" + "0" * 24
PRICE_PRO = "price_bench_pro"
PRICE_ENTERPRISE = "price_bench_enterprise"
HOST = "127.0.0.1"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- 1. the database -----------------------------------------------------------


def server_url(database: str) -> str:
    """A DATABASE_URL for ``database`` on the configured server."""
    url = os.environ.get("DATABASE_URL", "")
    if url:
        parts = urlparse(url)
        return urlunparse(parts._replace(path="/" + database))
    from core.embedded_postgres import ensure_server

    pgdata = os.environ.get("EMBEDDED_PGDATA", str(BASE_DIR / "var" / "postgres"))
    server = ensure_server(pgdata)
    return f"postgres://postgres@{quote(str(server.socket_dir), safe='')}/{database}"


def psycopg_connect(url: str, **kwargs):
    """libpq takes the URL itself (a socket directory percent-encoded as host)."""
    import psycopg

    return psycopg.connect(url, **kwargs)


def database_ensure(url: str) -> None:
    parts = urlparse(url)
    name = parts.path.lstrip("/")
    admin_url = urlunparse(parts._replace(path="/postgres"))
    with psycopg_connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            log(f"creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')


def environment(url: str, static_root: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "DEBUG": "false",
        "ALLOWED_HOSTS": HOST,
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": url,
        "STATIC_ROOT": static_root,
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_PRICE_PRO": PRICE_PRO,
        "STRIPE_PRICE_ENTERPRISE": PRICE_ENTERPRISE,
        "KEYWORD_PROVIDER": "sample",
        "LOG_LEVEL": "WARNING",
        # The slow-query log would flood the console under load.
        "SLOW_QUERY_MS": "100000",
        # The API's per-key limit would turn the load into 429s.
        "API_RATE_LIMIT_PER_MINUTE": "100000000",
    }


def meta_get(key: str):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb)"
        )
        cursor.execute("SELECT value FROM bench_meta WHERE key = %s", [key])
        row = cursor.fetchone()
    # Django's PostgreSQL backend hands jsonb back as text.
    return json.loads(row[0]) if row else None


def meta_set(key: str, value) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_meta (key, value) VALUES (%s, %s::jsonb) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            [key, json.dumps(value)],
        )


def seed_ensure(scale: str) -> dict:
    """Seed the scale unless this database already has it; return its timings."""
    from django.core.management import call_command
    from django.db import connection

    from ops.seed import seed_demo, seed_volume

    seeded = meta_get("seed")
    if seeded and seeded.get("scale") == scale:
        log(f"reusing the seeded {scale} database (seeded {seeded['at']})")
        seeded["reused"] = True
        return seeded
    volume = SCALES[scale]
    log(f"seeding {scale}: {volume}")
    started = time.perf_counter()
    seed_demo()
    demo_seconds = time.perf_counter() - started
    result = seed_volume(**volume, batch_size=100_000, progress=True, seed=8)
    vacuum_started = time.perf_counter()
    log("VACUUM ANALYZE")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    vacuum_seconds = time.perf_counter() - vacuum_started
    seeded = {
        "scale": scale,
        "at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "counts": result.counts,
        "seconds": {
            "demo": round(demo_seconds, 1),
            **{k: round(v, 1) for k, v in result.seconds.items()},
            "vacuum analyze": round(vacuum_seconds, 1),
        },
        "total_seconds": round(time.perf_counter() - started, 1),
        "reused": False,
    }
    meta_set("seed", seeded)
    call_command("createcachetable", verbosity=0)
    return seeded


# --- 2. seed path vs bare COPY -------------------------------------------------


def copy_check(rows: int) -> dict:
    """Seed path vs bare COPY for ``rows`` search-history rows.

    Three timings of the same rows (one generator seed, so the same keywords,
    users, providers and times; ids are fresh each time):

    - the seed path: generation + ``COPY`` in batches into the real table;
    - bare COPY: the rows generated beforehand, then the same ``COPY`` calls into
      the same table — the database's share of the work, with the indexes,
      check constraint and foreign key the seed must keep enforced;
    - the floor: bare COPY into an UNLOGGED table with no index or constraint.

    The first two run in a transaction that is rolled back, then VACUUM clears
    the dead rows, so both start from the seeded table. The seed path goes
    first: the bare COPY after it finds the indexes warmer, which can only make
    the ratio look worse.
    """
    import random

    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.seed import existing_user_ids
    from core.seeding import Timeline, copy_rows, raw_connection
    from searches.models import SearchHistory
    from searches.seed import HISTORY_COLUMNS, history_rows, keyword_pool

    table = SearchHistory._meta.db_table
    now = timezone.now()
    users = existing_user_ids()
    batch = 100_000
    raw = raw_connection()

    def batches():
        """The rows, batch by batch, from one generator seed."""
        rng = random.Random(9)
        pool = keyword_pool(rng)
        timeline = Timeline(rows, rng=rng, now=now)
        for offset in range(0, rows, batch):
            moments = timeline.moments(min(batch, rows - offset))
            yield history_rows(moments, users=users, rng=rng, pool=pool)

    def copy_timed(target: str, parts) -> float:
        started = time.perf_counter()
        with transaction.atomic():
            with raw.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
            for part in parts:
                with raw.cursor() as cursor:
                    copy_rows(cursor, target, HISTORY_COLUMNS, part)
            seconds = time.perf_counter() - started
            transaction.set_rollback(True)
        return seconds

    def vacuum():
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM {table}")

    log(f"seed path: generate + COPY {rows:,} rows into {table} (rolled back)")
    seed = copy_timed(table, batches())
    vacuum()
    log(f"bare COPY of the same {rows:,} rows, generated beforehand (rolled back)")
    generated = [list(part) for part in batches()]
    bare = copy_timed(table, generated)
    vacuum()
    log(f"floor: bare COPY of {rows:,} rows into an UNLOGGED table, no indexes")
    with raw.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_bare_copy")
        cursor.execute(f"CREATE UNLOGGED TABLE bench_bare_copy (LIKE {table})")
    floor = copy_timed("bench_bare_copy", generated)
    del generated
    with raw.cursor() as cursor:
        cursor.execute("DROP TABLE bench_bare_copy")
    return {
        "rows": rows,
        "seed_seconds": round(seed, 2),
        "bare_seconds": round(bare, 2),
        "floor_seconds": round(floor, 2),
        "ratio": round(seed / bare, 2),
        "floor_ratio": round(seed / floor, 2),
    }


# --- 3. sign-in and the pages --------------------------------------------------


@dataclass
class Subjects:
    admin: object
    heavy: object
    app_id: str
    cookies: dict[str, str] = field(default_factory=dict)  # who -> Cookie header
    api_token: str = ""  # the heavy user's API key (who="api")

    def headers(self, who: str | None) -> tuple[str, ...]:
        if who == "api":
            return (
                f"Authorization: Bearer {self.api_token}",
                "Content-Type: application/json",
            )
        return (f"Cookie: {self.cookies[who]}",) if who else ()


def subjects_prepare() -> Subjects:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import Client

    from apps_catalog.models import App
    from searches import services
    from searches.selectors import SESSION_KEY

    User = get_user_model()
    admin = User.objects.get(email__iexact=settings.ADMIN_EMAIL)
    heavy_id = meta_get("heavy_user")
    if not heavy_id:
        log("finding the user with the most history rows")
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT user_id FROM searches_searchhistory WHERE user_id IS NOT NULL "
                "GROUP BY user_id ORDER BY count(*) DESC LIMIT 1"
            )
            heavy_id = cursor.fetchone()[0]
        meta_set("heavy_user", heavy_id)
    heavy = User.objects.get(pk=heavy_id)
    if heavy.tier != User.Tier.ENTERPRISE:
        # Unlimited quota: /search/ must show results, never a quota refusal.
        User.objects.filter(pk=heavy.pk).update(tier=User.Tier.ENTERPRISE)
        heavy.refresh_from_db()
    app_id = meta_get("app_page_forks3")
    if not app_id:
        # The same page at every scale: an ACTIVE app with three forks (the
        # most-forked app's tree would grow with the scale).
        app_id = (
            App.objects.filter(status=App.Status.ACTIVE, fork_count=3)
            .order_by("-created_at", "-id")
            .values_list("id", flat=True)
            .first()
        )
        meta_set("app_page_forks3", app_id)

    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
    from allauth.mfa.utils import is_mfa_enabled

    if not is_mfa_enabled(admin):
        # Staff need a second factor before the admin opens.
        TOTP.activate(admin, generate_totp_secret())
    subjects = Subjects(admin=admin, heavy=heavy, app_id=app_id)
    cookie_name = settings.SESSION_COOKIE_NAME
    for who, user in (("admin", admin), ("heavy", heavy)):
        client = Client()
        client.force_login(user)
        key = client.cookies[cookie_name].value
        if who == "heavy":
            outcome = services.search_run(
                user=user,
                keywords=["saas pricing", "keyword tool", "launch checklist"],
                ip_address=HOST,
                user_agent="bench",
            )
            session = SessionStore(session_key=key)
            session[SESSION_KEY] = outcome.as_session()
            session.save()
        subjects.cookies[who] = f"{cookie_name}={key}"
    from api.models import ApiKey
    from api.services import api_key_create

    # A key per run; the previous runs' keys go first (a user holds at most 20).
    ApiKey.objects.filter(user=heavy, name="bench").delete()
    subjects.api_token = api_key_create(
        user=heavy, name="bench", scopes=["read", "write"]
    )[1]
    return subjects


@dataclass
class Page:
    name: str
    path: str
    who: str | None  # None: signed out; "api": the heavy user's API key
    expect: str = ""  # text the page must contain
    method: str = "GET"
    body: str = ""


def pages_for(subjects: Subjects) -> list[Page]:
    return [
        Page("floor", "/bench/floor/", None, "ok"),
        Page("healthz", "/healthz", None, '"status": "ok"'),
        Page("home", "/", None),
        Page("explore", "/explore/", None),
        Page("app page", f"/apps/{subjects.app_id}/", None),
        Page("my apps (signed in)", "/apps/", "heavy"),
        Page("search, cached result (signed in)", "/search/", "heavy", "saas pricing"),
        Page("search history (signed in)", "/search/history/", "heavy"),
        Page("billing (signed in)", "/billing/", "heavy"),
        # The API equivalents of the search page and the history page.
        Page(
            "API: search, cached result",
            "/api/v1/searches",
            "api",
            '"cache_hit": true',
            method="POST",
            body=json.dumps(
                {"keywords": ["saas pricing", "keyword tool", "launch checklist"]}
            ),
        ),
        Page("API: search history", "/api/v1/history", "api"),
        Page("admin: search history", "/admin/searches/searchhistory/", "admin"),
        Page("admin: apps", "/admin/apps_catalog/app/", "admin"),
    ]


def page_request(page: Page, subjects: Subjects):
    """A callable making ``page``'s request through Django's test client, signed
    in as the page's user (session cookie or API key)."""
    from django.test import Client

    client = Client(HTTP_HOST=HOST)
    extra = {}
    if page.who == "api":
        extra["headers"] = {"Authorization": f"Bearer {subjects.api_token}"}
    elif page.who:
        client.cookies.load(subjects.cookies[page.who])

    def call():
        if page.method == "POST":
            return client.post(
                page.path, page.body, content_type="application/json", **extra
            )
        return client.get(page.path, **extra)

    return call


def queries_per_page(pages: list[Page], subjects: Subjects) -> dict[str, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for page in pages:
        call = page_request(page, subjects)
        call()  # warm: session activity, caches
        with CaptureQueriesContext(connection) as captured:
            response = call()
        body = response.content.decode(errors="replace")
        if response.status_code != 200:
            raise SystemExit(f"{page.path} answered {response.status_code}")
        if page.expect and page.expect not in body:
            raise SystemExit(f"{page.path} does not show {page.expect!r}")
        counts[page.name] = len(captured.captured_queries)
    return counts


# --- 5. ORM vs raw SQL ---------------------------------------------------------


def main_queries(subjects: Subjects) -> dict[str, object]:
    """Each page's main query as the page runs it (callables returning rows)."""
    from django.conf import settings
    from django.contrib import admin
    from django.contrib.auth import load_backend
    from django.contrib.auth.models import AnonymousUser
    from django.db.models import Count
    from django.test import RequestFactory

    from apps_catalog import selectors as catalog
    from apps_catalog.models import App
    from billing import selectors as billing
    from searches import selectors as searches
    from searches.models import SavedSearch, SearchHistory
    from searches.selectors import SAVED_PAGE_SIZE

    heavy, staff = subjects.heavy, subjects.admin
    # Volume rows have no saved searches: the demo user with the most.
    saved_owner = (
        SavedSearch.objects.values_list("user", flat=True)
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()
    )

    def changelist_rows(model):
        model_admin = admin.site._registry[model]
        request = RequestFactory().get("/")
        request.user = staff
        changelist = model_admin.get_changelist_instance(request)
        queryset = changelist.queryset

        def run():
            return list(queryset.all()[: changelist.list_per_page])

        return run

    # The request loads its user through the backend, and /billing/ renders
    # what billing_overview() makes of that row.
    backend = load_backend(settings.AUTHENTICATION_BACKENDS[0])
    app = App.objects.get(pk=subjects.app_id)

    return {
        "explore": lambda: catalog.explore_page(sort="newest"),
        "explore, most forked": lambda: catalog.explore_page(sort="forks"),
        "app page": lambda: catalog.app_for_page(
            app_id=subjects.app_id, viewer=AnonymousUser()
        ),
        "app page: fork tree": lambda: catalog.app_fork_tree(
            app=app, viewer=AnonymousUser()
        ),
        "my apps (signed in)": lambda: list(catalog.apps_of_owner(owner=heavy)[:20]),
        "search history (signed in)": lambda: searches.history_page(user=heavy).rows,
        "saved searches (signed in)": lambda: list(
            searches.saved_searches_for(saved_owner)[:SAVED_PAGE_SIZE]
        ),
        "billing row": lambda: billing.billing_overview(backend.get_user(heavy.pk)),
        "admin: search history": changelist_rows(SearchHistory),
        "admin: apps": changelist_rows(App),
    }


def _rows(result) -> int:
    """How many rows a main query's result holds (a tree counts its nodes)."""
    if hasattr(result, "size"):
        return result.size
    if hasattr(result, "__len__"):
        return len(result)
    return 1


def orm_vs_raw(queries: dict, url: str, iterations: int) -> dict[str, dict]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    results = {}
    with psycopg_connect(url, autocommit=True) as raw:

        def replay(statements: list[str]) -> None:
            # Every statement the ORM call sent, in order: a prefetch's second
            # query is part of the page's read, so the raw side runs it too.
            for sql in statements:
                raw.execute(sql).fetchall()

        for name, run in queries.items():
            with CaptureQueriesContext(connection) as captured:
                result = run()
            statements = [query["sql"] for query in captured.captured_queries]
            for _ in range(5):  # warm both paths
                run()
                replay(statements)
            orm_times, raw_times = [], []
            for _ in range(iterations):
                started = time.perf_counter()
                run()
                orm_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                replay(statements)
                raw_times.append(time.perf_counter() - started)
            orm_ms = statistics.median(orm_times) * 1000
            raw_ms = statistics.median(raw_times) * 1000
            results[name] = {
                "rows": _rows(result),
                "statements": len(statements),
                "orm_ms": round(orm_ms, 3),
                "raw_ms": round(raw_ms, 3),
                "ratio": round(orm_ms / raw_ms, 2) if raw_ms else None,
                "sql": statements,
            }
    return results


# --- 6. gunicorn + wrk ---------------------------------------------------------


def wrk_ensure() -> None:
    """wrk is Debian's package: installed here when missing and running as root."""
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        raise SystemExit("wrk is missing: apt-get install wrk (Debian package)")
    log("installing wrk (apt-get)")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Gunicorn:
    def __init__(self, env: dict, *, worker_class: str = "sync", threads: int = 1):
        self.port = free_port()
        args = [
            str(BASE_DIR / ".venv" / "bin" / "gunicorn"),
            "config.wsgi:application",
            "--workers",
            "2",
            "--bind",
            f"{HOST}:{self.port}",
            "--worker-class",
            worker_class,
            "--log-level",
            "warning",
        ]
        if worker_class == "gthread":
            args += ["--threads", str(threads)]
        self.label = f"gunicorn 2 {worker_class} workers" + (
            f" x {threads} threads" if worker_class == "gthread" else ""
        )
        self.process = subprocess.Popen(args, cwd=BASE_DIR, env=env)
        self.base = f"http://{HOST}:{self.port}"
        deadline = time.monotonic() + 60
        import urllib.request

        while True:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.3)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wrk(
    url: str,
    *,
    duration: int,
    connections: int,
    threads: int = 1,
    script: str = "report.lua",
    headers: tuple[str, ...] = (),
    env: dict | None = None,
) -> dict:
    args = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(WRK_DIR / script),
    ]
    for header in headers:
        args += ["-H", header]
    args.append(url)
    out = subprocess.run(
        args,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
        timeout=duration + 120,
    ).stdout
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))
    raise SystemExit(f"wrk printed no result:\n{out}")


def load_pages(server: Gunicorn, pages, subjects, duration, connections) -> dict:
    results = {}
    for page in pages:
        headers = subjects.headers(page.who)
        url = server.base + page.path
        request = {"WRK_METHOD": page.method, "WRK_BODY": page.body}
        # warm-up
        wrk(url, duration=2, connections=connections, headers=headers, env=request)
        result = wrk(
            url,
            duration=duration,
            connections=connections,
            headers=headers,
            env=request,
        )
        log(
            f"{page.name:38} {result['rps']:8.1f} req/s  p50 {result['p50_ms']:7.2f}"
            f"  p95 {result['p95_ms']:7.2f}  p99 {result['p99_ms']:7.2f} ms"
            f"  non-2xx {result['non_2xx']}"
        )
        results[page.name] = result
    return results


# --- 7. the webhook ------------------------------------------------------------


def stripe_signature(body: bytes, *, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(WEBHOOK_SECRET.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def webhook_events_write(path: Path, count: int, run_id: str) -> None:
    """``count`` distinct customer.subscription.updated events for paid users.

    Like real traffic, most updates keep the plan (renewals, period changes):
    every tenth event switches the user between Pro and Enterprise (a tier
    change, with its audit-log row)."""
    from django.contrib.auth import get_user_model
    from django.db.models import Max

    User = get_user_model()
    users = list(
        User.objects.exclude(stripe_subscription_id="")
        .exclude(stripe_customer_id="")
        .order_by("id")
        .values_list("stripe_subscription_id", "stripe_customer_id", "tier")[:5000]
    )
    if not users:
        raise SystemExit("no users with a Stripe subscription to send events for")
    tiers = {sub: tier for sub, _, tier in users}
    prices = {User.Tier.PRO: PRICE_PRO, User.Tier.ENTERPRISE: PRICE_ENTERPRISE}
    now = int(time.time())
    # Later than any change applied before (earlier runs included), so no event
    # is skipped as stale: each one really updates its user.
    latest = User.objects.aggregate(at=Max("subscription_updated_at"))
    created = max(now, int(latest["at"].timestamp()) if latest["at"] else 0) + 1
    period_end = now + 30 * 86400
    with path.open("w") as out:
        for i in range(count):
            subscription_id, customer_id, _ = users[i % len(users)]
            tier = tiers[subscription_id]
            if tier not in prices or i % 10 == 9:
                switched = {User.Tier.ENTERPRISE: User.Tier.PRO}
                tier = switched.get(tier, User.Tier.ENTERPRISE)
                tiers[subscription_id] = tier
            event = {
                "id": f"evt_bench_{run_id}_{i:07d}",
                "object": "event",
                "type": "customer.subscription.updated",
                "created": created + i // len(users),
                "data": {
                    "object": {
                        "id": subscription_id,
                        "object": "subscription",
                        "customer": customer_id,
                        "status": "active",
                        "cancel_at": None,
                        "items": {
                            "data": [
                                {
                                    "price": {"id": prices[tier]},
                                    "current_period_end": period_end + i,
                                }
                            ]
                        },
                    }
                },
            }
            body = json.dumps(event, separators=(",", ":")).encode()
            out.write(f"{stripe_signature(body, timestamp=now)}\t{body.decode()}\n")


def webhook_check(run_id: str, sent: int, completed: int) -> dict:
    """One row per distinct event that reached the site, each processed once.

    wrk stops mid-flight: the last requests it wrote may still be in the
    workers, so wait until the row count settles, then expect
    ``completed <= rows <= sent`` (answered requests vs requests written) with
    every row PROCESSED at its first attempt.
    """
    from django.db.models import Count, Q

    from billing.models import WebhookEvent

    rows = WebhookEvent.objects.filter(id__startswith=f"evt_bench_{run_id}_")
    previous = -1
    for _ in range(50):
        total = rows.count()
        if total == previous and not rows.filter(status="RECEIVED").exists():
            break
        previous = total
        time.sleep(0.2)
    stats = rows.aggregate(
        total=Count("id"),
        processed=Count("id", filter=Q(status="PROCESSED")),
        first_attempt=Count("id", filter=Q(attempts=1)),
    )
    stats["sent"] = sent
    stats["completed"] = completed
    stats["exactly_once"] = (
        completed <= stats["total"] <= sent
        and stats["total"] == stats["processed"] == stats["first_attempt"]
    )
    return stats


def webhook_replay(base: str, path: Path, run_id: str, count: int = 200) -> dict:
    """Deliver ``count`` already-processed events again (freshly signed, as
    Stripe's retries are): no new row, no second processing."""
    import urllib.request

    from billing.models import WebhookEvent

    rows = WebhookEvent.objects.filter(id__startswith=f"evt_bench_{run_id}_")
    delivered = set(rows.values_list("id", flat=True))
    before = len(delivered)
    now = int(time.time())
    answered = replayed = 0
    with path.open() as events:
        for line in events:
            body = line.rstrip("\n").split("\t", 1)[1].encode()
            if json.loads(body)["id"] not in delivered:
                continue  # never sent: it would be new, not a redelivery
            if replayed == count:
                break
            replayed += 1
            request = urllib.request.Request(
                base + "/billing/webhook/",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "Stripe-Signature": stripe_signature(body, timestamp=now),
                },
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                answered += response.status == 200
    return {
        "replayed": replayed,
        "answered_200": answered,
        "new_rows": rows.count() - before,
        "reprocessed": rows.exclude(attempts=1).count(),
    }


def load_webhook(server: Gunicorn, duration: int, connections: int, events: int):
    run_id = secrets.token_hex(4)
    threads = 2
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.tsv"
        webhook_events_write(path, events, run_id)
        result = wrk(
            server.base + "/billing/webhook/",
            duration=duration,
            connections=connections,
            threads=threads,
            script="webhook.lua",
            env={"BENCH_WEBHOOK_FILE": str(path), "BENCH_WRK_THREADS": str(threads)},
        )
        result["check"] = webhook_check(
            run_id, result["events_sent"], result["requests"]
        )
        result["replay"] = webhook_replay(server.base, path, run_id)
    if result["events_sent"] >= events:
        log("WARNING: the webhook run used up its events; raise --webhook-events")
    result["server"] = server.label
    log(
        f"webhook ({server.label}) {result['rps']:.1f} events/s p95 "
        f"{result['p95_ms']:.2f} ms; {result['check']}; replay {result['replay']}"
    )
    return result


# --- 8. jobs: enqueued and processed -------------------------------------------


class SmtpSink:
    """An SMTP server on 127.0.0.1 (aiosmtpd, in a thread of this process) that
    accepts every message and keeps when the first one for each recipient
    arrived, on this process's ``time.perf_counter`` clock — the clock the
    sign-in requests are timed with. Web and job workers reach it through
    ``EMAIL_URL``."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.arrivals: dict[str, float] = {}
        self.port = free_port()
        self.url = f"smtp://{HOST}:{self.port}"
        # A fixed server name: aiosmtpd otherwise asks DNS (socket.getfqdn) on
        # its event loop at every connection, which stalled all sends for ~1 s.
        self._controller = Controller(
            self, hostname=HOST, port=self.port, server_hostname="bench-sink"
        )
        self._controller.start()

    async def handle_DATA(self, server, session, envelope) -> str:
        """aiosmtpd's hook, called once a whole message has been received."""
        arrived = time.perf_counter()
        for recipient in envelope.rcpt_tos:
            self.arrivals.setdefault(recipient.lower(), arrived)
        return "250 Message accepted for delivery"

    def wait_for(self, recipients: list[str], timeout: float) -> list[str]:
        """Wait until every recipient has a message; return the missing ones."""
        deadline = time.monotonic() + timeout
        while True:
            missing = [r for r in recipients if r.lower() not in self.arrivals]
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.05)

    def stop(self) -> None:
        self._controller.stop()


class JobWorkers:
    """``count`` job worker processes run as the Procfile runs them
    (``manage.py procrastinate worker --queues … --concurrency N`` with
    ``PROCRASTINATE_DATABASE_ALIAS=direct``, which is ``default`` without a
    DIRECT_URL), on the bench settings and database. ``stop`` sends SIGTERM:
    Procrastinate's graceful shutdown lets running jobs finish."""

    def __init__(self, env: dict, *, queues: str, count: int, concurrency: int):
        args = [
            str(BASE_DIR / ".venv" / "bin" / "python"),
            "manage.py",
            "procrastinate",
            "worker",
            "--queues",
            queues,
            "--concurrency",
            str(concurrency),
        ]
        env = {**env, "PROCRASTINATE_DATABASE_ALIAS": "direct"}
        self.processes = [
            subprocess.Popen(args, cwd=BASE_DIR, env=env) for _ in range(count)
        ]

    def check(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise SystemExit(f"a job worker exited with {process.returncode}")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def jobs_last_id() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM procrastinate_jobs")
        return cursor.fetchone()[0]


def jobs_reset() -> None:
    """Leave the bench database's queue as a fresh install's: no job waiting,
    no periodic tick recorded.

    The bench's workers defer the periodic maintenance ticks, as every worker
    does, but none of them runs the maintenance queue (VACUUM or a backup would
    land in a measurement): left behind, those ticks read as overdue tasks and
    /healthz turns "degraded". A job waiting from an interrupted run, or mail
    the webhook step queued, would run inside the next timing."""
    from django.db import connection

    with connection.cursor() as cursor:
        # The ticks first: they reference their jobs.
        cursor.execute("DELETE FROM procrastinate_periodic_defers")
        cursor.execute("DELETE FROM procrastinate_jobs WHERE status = 'todo'")


def jobs_vacuum(*, analyze: bool = False) -> None:
    """VACUUM before a measurement: the jobs earlier steps and runs updated and
    deleted leave dead rows the workers' fetch would wade through until
    autovacuum comes by. ANALYZE once the jobs are queued: statistics taken on
    an empty queue make Procrastinate's fetch query a nested loop over every
    queued job per fetch (procrastinate#1242), ~1 s per job with 2,000 queued,
    until autoanalyze catches up; the step measures the steady state."""
    from django.db import connection

    tables = "procrastinate_jobs, procrastinate_events"
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}" if analyze else f"VACUUM {tables}")


def jobs_delete(first: int, last: int, task_name: str) -> None:
    """Remove a step's jobs (their events cascade), so the bench database's
    queue does not grow with every run."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM procrastinate_jobs "
            "WHERE id BETWEEN %s AND %s AND task_name = %s",
            [first, last, task_name],
        )


def jobs_drain(first: int, last: int, task_name: str, workers: JobWorkers) -> None:
    from django.db import connection

    deadline = time.monotonic() + 600
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE id BETWEEN %s AND %s "
                "AND task_name = %s AND status IN ('todo', 'doing')",
                [first, last, task_name],
            )
            left = cursor.fetchone()[0]
        if not left:
            return
        workers.check()
        if time.monotonic() > deadline:
            raise SystemExit(f"the workers left {left} {task_name} jobs after 600 s")
        time.sleep(0.2)


def jobs_processed(first: int, last: int, task_name: str) -> dict:
    """Outcome and rate of the jobs ``first``..``last`` of ``task_name``: jobs per
    second from the first job started to the last one succeeded, by
    Procrastinate's own event times (worker start-up is not counted)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) "
            "FROM procrastinate_jobs WHERE id BETWEEN %s AND %s AND task_name = %s",
            [first, last, task_name],
        )
        succeeded, total = cursor.fetchone()
        cursor.execute(
            "SELECT extract(epoch FROM max(e.at) FILTER (WHERE e.type = 'succeeded')"
            " - min(e.at) FILTER (WHERE e.type = 'started')) "
            "FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id "
            "WHERE j.id BETWEEN %s AND %s AND j.task_name = %s",
            [first, last, task_name],
        )
        seconds = float(cursor.fetchone()[0] or 0)
    return {
        "jobs": total,
        "succeeded": succeeded,
        "process_seconds": round(seconds, 2),
        "processed_per_s": round(succeeded / seconds, 1) if seconds else None,
    }


def load_jobs(
    env: dict, sink: SmtpSink, *, count: int, workers: int, concurrency: int
) -> dict:
    """Jobs/s enqueued and processed, for a no-op task and for a real mail job.

    Enqueue: ``count`` jobs, one ``defer`` per transaction from this process
    through the Django connection, as a request defers its job (the mail job
    through ``core.mail.mail_enqueue``, sealing included), with no worker
    running. Process: then ``workers`` worker processes drain the queue, the
    mail jobs handing their messages to the SMTP sink; they are stopped once
    it is empty, and every job must have succeeded (and every mail arrived).
    """
    from django.db import transaction

    from bench.tasks import BENCH_QUEUE, noop
    from core.mail import MAIL_QUEUE, mail_enqueue
    from core.tasks import mail_send

    run_id = secrets.token_hex(4)
    addresses = [f"jobs-{run_id}-{i}@example.com" for i in range(count)]

    def defer_noop(i: int) -> None:
        noop.defer(n=i)

    def defer_mail(i: int) -> None:
        mail_enqueue(
            subject="[Launchpad] Bench message",
            body="A message of about the size of a sign-in mail.\n" * 8,
            to=[addresses[i]],
            from_email="no-reply@localhost",
        )

    kinds = [
        ("no-op", noop.name, BENCH_QUEUE, defer_noop),
        ("mail to SMTP", mail_send.name, MAIL_QUEUE, defer_mail),
    ]
    jobs_reset()
    results = []
    for label, task_name, queue, defer in kinds:
        jobs_vacuum()
        first = jobs_last_id() + 1
        started = time.perf_counter()
        for i in range(count):
            with transaction.atomic():
                defer(i)
        enqueue_seconds = time.perf_counter() - started
        last = jobs_last_id()
        jobs_vacuum(analyze=True)
        log(
            f"jobs, {label}: {count:,} deferred in {enqueue_seconds:.2f} s; "
            f"{workers} worker(s) x concurrency {concurrency} on queue {queue}"
        )
        pool = JobWorkers(env, queues=queue, count=workers, concurrency=concurrency)
        try:
            jobs_drain(first, last, task_name, pool)
        finally:
            pool.stop()
        result = {
            "task": label,
            "task_name": task_name,
            "enqueue_seconds": round(enqueue_seconds, 2),
            "enqueued_per_s": round(count / enqueue_seconds, 1),
            **jobs_processed(first, last, task_name),
        }
        if result["jobs"] != count or result["succeeded"] != count:
            raise SystemExit(f"jobs, {label}: {result}")
        if queue == MAIL_QUEUE:
            missing = sink.wait_for(addresses, timeout=10)
            if missing:
                raise SystemExit(f"{len(missing)} mails never reached the SMTP sink")
        jobs_delete(first, last, task_name)
        log(
            f"jobs, {label}: {result['enqueued_per_s']:.0f} enqueued/s, "
            f"{result['processed_per_s']:.0f} processed/s"
        )
        results.append(result)
    return {"workers": workers, "concurrency": concurrency, "tasks": results}


# --- 9. sign-in to SMTP --------------------------------------------------------

SIGN_IN_PATH = "/accounts/login/"


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (of 50 samples, p95 is the 48th smallest)."""
    ordered = sorted(values)
    return ordered[max(math.ceil(pct / 100 * len(ordered)) - 1, 0)]


def sign_in_post(
    base: str, email: str, barrier: threading.Barrier | None = None
) -> dict:
    """One person asking for a sign-in link: GET the sign-in page (its CSRF
    cookie and token), wait at ``barrier`` for the others, POST the address.
    Returns when the POST was sent and answered (``time.perf_counter``)."""
    port = urlparse(base).port
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    conn.request("GET", SIGN_IN_PATH)
    response = conn.getresponse()
    page = response.read().decode()
    conn.close()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if response.status != 200 or not token:
        if barrier:
            barrier.abort()  # the others stop waiting for this one
        raise SystemExit(f"GET {SIGN_IN_PATH} answered {response.status}")
    cookies = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        cookies.load(header)
    # The cookies are Secure (production settings): sent by hand over plain HTTP.
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": "; ".join(f"{name}={m.value}" for name, m in cookies.items()),
    }
    body = urlencode({"csrfmiddlewaretoken": token[1], "email": email})
    if barrier:
        barrier.wait(timeout=60)
    sent = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    conn.request("POST", SIGN_IN_PATH, body=body, headers=headers)
    response = conn.getresponse()
    answer = response.read().decode()
    answered = time.perf_counter()
    conn.close()
    if response.status != 200 or "Check your email" not in answer:
        raise SystemExit(f"POST {SIGN_IN_PATH} for {email} answered {response.status}")
    return {"email": email, "sent": sent, "answered": answered}


def load_sign_in(
    server: Gunicorn,
    env: dict,
    sink: SmtpSink,
    *,
    count: int,
    workers: int,
    concurrency: int,
) -> dict:
    """``count`` concurrent sign-ins, each timed from its POST to the moment its
    mail reached the SMTP sink.

    Job workers started as the Procfile does, but on the ``mail`` queue only
    (the periodic maintenance jobs, VACUUM and backups among them, stay out of
    the measurement), come first; a first sign-in whose mail must arrive warms
    the path and proves they listen; three more, one after the other, give the
    time of a sign-in alone. Then ``count`` threads, one distinct address
    without an account each, GET the page and POST together. The per-IP
    sign-in limit is raised in bench/settings.py (every request comes from
    127.0.0.1)."""
    from accounts.tasks import magic_link_mail_send

    run_id = secrets.token_hex(4)
    jobs_vacuum()
    jobs_vacuum(analyze=True)  # a near-empty queue, as the sign-ins meet it
    first = jobs_last_id() + 1
    pool = JobWorkers(env, queues="mail", count=workers, concurrency=concurrency)
    try:
        alone = []
        for i in range(4):
            email = f"signin-{run_id}-alone{i}@example.com"
            timing = sign_in_post(server.base, email)
            if sink.wait_for([timing["email"]], timeout=60 if i == 0 else 10):
                pool.check()
                raise SystemExit("a sign-in mail never reached the SMTP sink")
            alone.append(timing)
        del alone[0]  # the warm-up
        emails = [f"signin-{run_id}-{i:03d}@example.com" for i in range(count)]
        barrier = threading.Barrier(count)
        with ThreadPoolExecutor(max_workers=count) as executor:
            timings = list(
                executor.map(
                    lambda email: sign_in_post(server.base, email, barrier), emails
                )
            )
        missing = sink.wait_for(emails, timeout=60)
        if missing:
            raise SystemExit(f"{len(missing)} sign-in mails never reached the sink")
    finally:
        pool.stop()
        jobs_reset()
    jobs_delete(first, jobs_last_id(), magic_link_mail_send.name)

    def summary(values: list[float]) -> dict:
        return {
            "p50_ms": round(percentile(values, 50), 1),
            "p95_ms": round(percentile(values, 95), 1),
            "max_ms": round(max(values), 1),
        }

    for t in timings + alone:
        t["arrived"] = sink.arrivals[t["email"].lower()]
    result = {
        "sign_ins": count,
        "server": server.label,
        "workers": workers,
        "concurrency": concurrency,
        "to_smtp": summary([(t["arrived"] - t["sent"]) * 1000 for t in timings]),
        "response": summary([(t["answered"] - t["sent"]) * 1000 for t in timings]),
        "response_to_smtp": summary(
            [(t["arrived"] - t["answered"]) * 1000 for t in timings]
        ),
        "alone": {
            "to_smtp_ms": round(
                statistics.median((t["arrived"] - t["sent"]) * 1000 for t in alone), 1
            ),
            "response_ms": round(
                statistics.median((t["answered"] - t["sent"]) * 1000 for t in alone), 1
            ),
        },
    }
    log(
        f"sign-in -> SMTP ({count} concurrent): p50 {result['to_smtp']['p50_ms']} "
        f"p95 {result['to_smtp']['p95_ms']} max {result['to_smtp']['max_ms']} ms; "
        f"POST response p50 {result['response']['p50_ms']} "
        f"p95 {result['response']['p95_ms']} ms; alone {result['alone']}"
    )
    return result


# --- 10. the report ------------------------------------------------------------


def report_jobs(data: dict) -> list[str]:
    jobs, sign_in = data["jobs"], data["sign_in"]
    lines = [
        "## Jobs (Procrastinate)",
        "",
        f"Workers: {jobs['workers']} x `manage.py procrastinate worker "
        f"--concurrency {jobs['concurrency']}` (the Procfile's worker), started once "
        "the jobs are queued and stopped (SIGTERM) once the queue is empty.",
        "",
        "| task | jobs | enqueued/s | processed/s | succeeded |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in jobs["tasks"]:
        lines.append(
            f"| {r['task']} (`{r['task_name']}`) | {r['jobs']:,} | "
            f"{r['enqueued_per_s']:.0f} | {r['processed_per_s']:.0f} | "
            f"{r['succeeded']:,} |"
        )
    lines += [
        "",
        "Enqueued: one `defer` per transaction from the bench process on one "
        "connection, as a request defers its job (the mail job through "
        "`core.mail.mail_enqueue`, sealing included), no worker running. Processed: "
        "from the first job started to the last succeeded (Procrastinate's event "
        "times, worker start-up excluded); the mail job hands its message to an "
        "SMTP sink on 127.0.0.1 (aiosmtpd, in the bench process).",
        "",
        f"### Sign-in to SMTP, {sign_in['sign_ins']} concurrent sign-ins",
        "",
        "| ms | p50 | p95 | max |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, label in (
        ("to_smtp", "**POST sent → mail at the SMTP sink**"),
        ("response", "POST sent → response read"),
        ("response_to_smtp", "response read → mail at the SMTP sink"),
    ):
        r = sign_in[key]
        lines.append(
            f"| {label} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['max_ms']:.0f} |"
        )
    alone = sign_in["alone"]
    lines += [
        "",
        f"A sign-in alone (median of 3, one after the other): "
        f"{alone['to_smtp_ms']:.0f} ms to the sink, of which "
        f"{alone['response_ms']:.0f} ms for the POST.",
        "",
        f"{sign_in['sign_ins']} threads, one new address each (no account yet), "
        f"each GET `{SIGN_IN_PATH}` for its CSRF token, then POST together to "
        f"{sign_in['server']}; the request defers `accounts.magic_link_mail_send` "
        f"in its transaction and {sign_in['workers']} worker x concurrency "
        f"{sign_in['concurrency']} (queue `mail` only: no maintenance job runs "
        "during the measurement) sends it. "
        "bench/settings.py raises the per-IP limit of sign-in requests from 20 to "
        "1000 a minute (every request comes from 127.0.0.1); the per-address limit "
        "(3 a minute) is production's.",
        "",
    ]
    return lines


def report(scale: str, data: dict) -> str:
    from bench.profile import report_lines as profile_report_lines

    lines = [
        f"# Benchmark — {scale} scale, {data['date']}",
        "",
        f"Command: `{data['command']}` (wall time {data['wall_minutes']:.1f} min). "
        f"Machine: {os.cpu_count()} cores. PostgreSQL: {data['server_version']}. "
        f"Site: {data['server']}, production settings (bench/settings.py adds only "
        "`/bench/floor/`, a no-op job and a per-IP sign-in limit of 1000 a minute), "
        f"wrk -t1 -c{data['connections']} for "
        f"{data['duration']} s per page after a 2 s warm-up.",
        "",
        "## Data",
        "",
        "| table | rows |",
        "| --- | ---: |",
    ]
    for table, rows in data["row_counts"].items():
        lines.append(f"| {table} | {rows:,} |")
    seed = data["seed"]
    lines += [
        "",
        f"Seed ({'reused from ' + seed['at'] if seed.get('reused') else seed['at']}): "
        f"{seed['total_seconds']:.0f} s in all — "
        + ", ".join(f"{k} {v:.1f} s" for k, v in seed["seconds"].items())
        + ".",
        "",
    ]
    copy = data.get("copy")
    if copy:
        lines += [
            f"Seed path vs bare COPY, {copy['rows']:,} search-history rows into the "
            f"seeded table (its primary key, 4 indexes, check constraint and "
            f"foreign key in place; each run rolled back):",
            "",
            "| load | seconds | seed path / this |",
            "| --- | ---: | ---: |",
            f"| seed path: generate + COPY in batches | {copy['seed_seconds']:.1f} | "
            "1.00 |",
            f"| bare COPY of the same rows, generated beforehand (target: seed "
            f"path ≤ 2x this) | {copy['bare_seconds']:.1f} | **{copy['ratio']:.2f}** |",
            f"| floor: bare COPY into an UNLOGGED table with no index or "
            f"constraint | {copy['floor_seconds']:.1f} | {copy['floor_ratio']:.2f} |",
            "",
        ]
    floor = data["load"]["floor"]
    lines += [
        "## Pages",
        "",
        "Latency in ms. `x floor` = the page's p50 / the floor's p50 (the floor is "
        "`/bench/floor/`: a view returning `ok` through the same gunicorn and "
        "middleware, no database, no template).",
        "",
        "| page | path | req/s | p50 | p95 | p99 | x floor | queries | non-2xx |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for page in data["pages"]:
        r = data["load"][page["name"]]
        lines.append(
            f"| {page['name']} | `{page.get('method', 'GET')} {page['path']}` | "
            f"{r['rps']:.0f} | "
            f"{r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['p50_ms'] / floor['p50_ms']:.1f} | "
            f"{data['queries'].get(page['name'], '-')} | {r['non_2xx']} |"
        )
    baseline = data.get("baseline")
    if baseline:
        lines += [
            "",
            f"### Against small scale ({baseline['file']})",
            "",
            "| page | small p95 | this p95 | ratio (target <= 1.5) | small queries | "
            "these queries |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for page in data["pages"]:
            name = page["name"]
            small = baseline["load"].get(name)
            if not small:
                continue
            r = data["load"][name]
            lines.append(
                f"| {name} | {small['p95_ms']:.2f} | {r['p95_ms']:.2f} | "
                f"{r['p95_ms'] / small['p95_ms']:.2f} | "
                f"{baseline['queries'].get(name, '-')} | "
                f"{data['queries'].get(name, '-')} |"
            )
    lines += [
        "",
        *profile_report_lines(data.get("profile") or {}),
        "## Webhook",
        "",
        "| server | events/s | p50 | p95 | p99 | sent | answered | rows | "
        "PROCESSED | 1st attempt | exactly once | replayed: new rows |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- "
        "| ---: |",
    ]
    for w in data["webhook"]:
        c = w["check"]
        lines.append(
            f"| {w['server']} | {w['rps']:.0f} | {w['p50_ms']:.2f} | "
            f"{w['p95_ms']:.2f} | {w['p99_ms']:.2f} | {c['sent']:,} | "
            f"{c['completed']:,} | {c['total']:,} | {c['processed']:,} | "
            f"{c['first_attempt']:,} | {'yes' if c['exactly_once'] else 'NO'} | "
            f"{w['replay']['replayed']}: {w['replay']['new_rows']} |"
        )
    lines += [
        "",
        "Each event is a distinct, signed `customer.subscription.updated` for a paid "
        "user (9 in 10 keep the plan, 1 in 10 switches Pro/Enterprise), sent by wrk "
        "(bench/wrk/webhook.lua, each connection its own events). Exactly once = "
        "one WebhookEvent row per distinct event that reached the site (between "
        "the requests answered and the requests written when wrk stopped), every "
        "row PROCESSED with `attempts = 1`; then 200 of those events are delivered "
        "again with fresh signatures: no new row, nothing processed twice.",
        "",
        *report_jobs(data),
        *report_orm_raw(data),
    ]
    return "\n".join(lines)


def report_orm_raw(data: dict) -> list[str]:
    lines = [
        "## ORM vs raw SQL (main query of each page)",
        "",
        f"Median of {data['orm_iterations']} runs each: the ORM call the page makes, "
        "as the page makes it (the selectors the views call), vs every statement "
        "it emits (a prefetch's query, the fork tree's owners included), "
        "replayed in order with the parameters inlined and fetched with a bare "
        "psycopg cursor: raw = the server, the round trips and the driver, "
        "no Django. Every list loads only the columns it renders; the "
        "history and explore pages' rows are dicts (`.values()`: they only display "
        "them), the others model instances (`.only()`), as their templates call model "
        "methods (display labels, price labels, the owner's display name). "
        "The billing row is the user row as the request loads it (the "
        "authentication backend's `get_user`) turned into the page's "
        "`billing_overview`.",
        "",
        "| page | rows | statements | ORM ms | raw ms | ORM / raw |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in data["orm_raw"].items():
        lines.append(
            f"| {name} | {r['rows']} | {r['statements']} | {r['orm_ms']:.3f} | "
            f"{r['raw_ms']:.3f} | {r['ratio']:.2f} |"
        )
    lines += ["", "<details><summary>Main queries</summary>", ""]
    for name, r in data["orm_raw"].items():
        shown = "; ".join(f"`{' '.join(sql.split())[:600]}`" for sql in r["sql"])
        lines += [f"- {name}: {shown}"]
    lines += ["", "</details>", ""]
    return lines


def row_counts() -> dict[str, int]:
    from django.db import connection

    tables = [
        "accounts_user",
        "apps_catalog_app",
        "apps_catalog_requirement",
        "apps_catalog_monetizationmodel",
        "searches_searchhistory",
        "searches_apiusage",
        "billing_webhookevent",
    ]
    counts = {}
    with connection.cursor() as cursor:
        for table in tables:
            # Planner estimate: exact counts of 10M rows cost seconds each.
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [table]
            )
            counts[table] = max(int(cursor.fetchone()[0]), 0)
    return counts


# --- main ----------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--duration", type=int, default=10, help="seconds per page")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--copy-rows", type=int, default=1_000_000)
    parser.add_argument("--orm-iterations", type=int, default=200)
    parser.add_argument("--webhook-events", type=int, default=40_000)
    parser.add_argument("--webhook-threads", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per task")
    parser.add_argument("--job-workers", type=int, default=1, help="processes")
    parser.add_argument(
        "--job-concurrency", type=int, default=4, help="per worker process"
    )
    parser.add_argument("--sign-ins", type=int, default=50, help="concurrent")
    parser.add_argument(
        "--profile-requests",
        type=int,
        default=100,
        help="requests per page in each pass of the profile",
    )
    parser.add_argument(
        "--only",
        choices=["jobs", "profile"],
        help="the database step and these steps alone; prints, never writes",
    )
    parser.add_argument(
        "--seed-only", action="store_true", help="seed (or reuse) and stop"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    wall = time.perf_counter()
    # bench/profile.py would shadow the standard library's profile module,
    # which cProfile imports: this directory's modules load as bench.<name>.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != here]
    sys.path.insert(0, str(BASE_DIR))
    os.chdir(BASE_DIR)

    only_jobs = args.only == "jobs"
    only_profile = args.only == "profile"
    if not args.seed_only and not args.only:
        wrk_ensure()
    url = server_url(f"bench_{args.scale}")
    database_ensure(url)
    static_root = tempfile.mkdtemp(prefix="bench-static-")
    env = environment(url, static_root)
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from bench.profile import pages_profile, report_lines

    log(f"migrating {urlparse(url).path.lstrip('/')}")
    # The bench database is disposable: no pre-migration backup (core's
    # migrate takes one by default), which at large scale would be minutes.
    call_command("migrate", verbosity=0, interactive=False, no_backup=True)
    # The manifest storage needs it before any page renders (Client runs too).
    call_command("collectstatic", interactive=False, verbosity=0)
    seed = seed_ensure(args.scale)
    jobs_reset()  # what an interrupted run's job workers left (see jobs_reset)
    if args.seed_only:
        log(f"seeded: {json.dumps(seed)}")
        return 0
    copy = copy_check(args.copy_rows) if args.copy_rows and not args.only else None
    if copy:
        log(f"seed vs bare COPY: {copy}")
        # Write out what the bulk loads dirtied now, so that a checkpoint
        # flushing gigabytes does not land in the first page's measurement.
        log("CHECKPOINT")
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")

    if not only_jobs:
        subjects = subjects_prepare()
        pages = pages_for(subjects)
        log("queries per page")
        queries = queries_per_page(pages, subjects)
        log(json.dumps(queries))
        log(f"where the time goes: {args.profile_requests} requests per page, twice")
        profile = pages_profile(
            {
                page.name: page_request(page, subjects)
                for page in pages
                # No database, no template: nothing to split.
                if page.name != "floor"
            },
            requests=args.profile_requests,
        )
        for name, r in profile.items():
            log(
                f"{name:38} {r['ms']:7.2f} ms: templates {r['templates_ms']:.2f}"
                f"  ORM {r['orm_ms']:.2f}  database {r['database_ms']:.2f}"
                f"  other {r['other_ms']:.2f}"
            )
        log("ORM vs raw SQL")
        orm_raw = orm_vs_raw(main_queries(subjects), url, args.orm_iterations)
        for name, r in orm_raw.items():
            log(f"{name:38} ORM {r['orm_ms']:.3f} ms raw {r['raw_ms']:.3f} ms")
        if only_profile:
            shutil.rmtree(static_root, ignore_errors=True)
            data = {"orm_iterations": args.orm_iterations, "orm_raw": orm_raw}
            print("\n".join([*report_lines(profile), *report_orm_raw(data)]))
            log("--only: nothing written")
            return 0

    # Web and job workers send their mail to the sink (the site only defers it).
    sink = SmtpSink()
    env["EMAIL_URL"] = os.environ["EMAIL_URL"] = sink.url
    workers = {"workers": args.job_workers, "concurrency": args.job_concurrency}
    try:
        connection.close()
        server = Gunicorn({**os.environ, **env})
        try:
            if not only_jobs:
                load = load_pages(
                    server, pages, subjects, args.duration, args.connections
                )
                webhook = [
                    load_webhook(
                        server, args.duration, args.webhook_threads, args.webhook_events
                    )
                ]
            # After the pages: their numbers stay comparable with earlier runs.
            jobs = load_jobs({**os.environ, **env}, sink, count=args.jobs, **workers)
            sign_in = load_sign_in(
                server, {**os.environ, **env}, sink, count=args.sign_ins, **workers
            )
        finally:
            server.stop()
    finally:
        sink.stop()
    if only_jobs:
        shutil.rmtree(static_root, ignore_errors=True)
        print("\n".join(report_jobs({"jobs": jobs, "sign_in": sign_in})))
        log("--only: nothing written")
        return 0
    if webhook[0]["rps"] < 500:
        log("webhook below 500/s with sync workers: trying gthread workers")
        server = Gunicorn({**os.environ, **env}, worker_class="gthread", threads=8)
        try:
            webhook.append(
                load_webhook(
                    server, args.duration, args.webhook_threads, args.webhook_events
                )
            )
        finally:
            server.stop()
    shutil.rmtree(static_root, ignore_errors=True)

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server_version = cursor.fetchone()[0]
    data = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": f"make bench SCALE={args.scale}",
        "wall_minutes": (time.perf_counter() - wall) / 60,
        "server_version": server_version,
        "server": "gunicorn 2 sync workers",
        "connections": args.connections,
        "duration": args.duration,
        "row_counts": row_counts(),
        "seed": seed,
        "copy": copy,
        "pages": [{"name": p.name, "path": p.path, "method": p.method} for p in pages],
        "load": load,
        "queries": queries,
        "profile": profile,
        "webhook": webhook,
        "orm_iterations": args.orm_iterations,
        "orm_raw": orm_raw,
        "jobs": jobs,
        "sign_in": sign_in,
    }
    if args.scale != "small":
        smalls = sorted(RESULTS_DIR.glob("*-small.json"))
        if smalls:
            small = json.loads(smalls[-1].read_text())
            data["baseline"] = {
                "file": smalls[-1].name,
                "load": small["load"],
                "queries": small["queries"],
            }
    text = report(args.scale, data)
    print(text)
    if not args.no_write:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stem = f"{dt.datetime.now(dt.UTC):%Y-%m-%d}-{args.scale}"
        (RESULTS_DIR / f"{stem}.md").write_text(text)
        (RESULTS_DIR / f"{stem}.json").write_text(json.dumps(data, indent=2))
        log(f"wrote bench/results/{stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
