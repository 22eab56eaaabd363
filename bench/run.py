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
   ``CaptureQueriesContext`` (status and content checked);
5. ORM vs raw SQL: each page's main query through the ORM (rows as the page
   builds them) and the very SQL it emits through a bare psycopg
   cursor, ``--orm-iterations`` times each;
6. gunicorn (2 workers, production settings via bench/settings.py, a throwaway
   SECRET_KEY, collectstatic into a temp dir) driven by ``wrk`` per page
   (``--duration`` seconds after a warm-up), the floor ``/bench/floor/`` included;
7. the webhook: ``--webhook-events`` distinct events signed with the webhook
   secret, sent by wrk (bench/wrk/webhook.lua), then checked: one WebhookEvent
   row per distinct event sent, each PROCESSED at its first attempt;
8. the report: printed and written to ``bench/results/<date>-<scale>.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlparse, urlunparse

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
    return subjects


@dataclass
class Page:
    name: str
    path: str
    who: str | None  # None: signed out
    expect: str = ""  # text the page must contain


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
        Page("admin: search history", "/admin/searches/searchhistory/", "admin"),
        Page("admin: apps", "/admin/apps_catalog/app/", "admin"),
    ]


def queries_per_page(pages: list[Page], subjects: Subjects) -> dict[str, int]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for page in pages:
        client = Client(HTTP_HOST=HOST)
        if page.who:
            client.cookies.load(subjects.cookies[page.who])
        client.get(page.path)  # warm: session activity, caches
        with CaptureQueriesContext(connection) as captured:
            response = client.get(page.path)
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
    from django.contrib import admin
    from django.db.models import Count
    from django.test import RequestFactory

    from apps_catalog import selectors as catalog
    from apps_catalog.models import App
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

    return {
        "explore": lambda: list(catalog.apps_explore()[:24]),
        "app page": lambda: (
            App.objects.visible_to(None).select_related("owner").get(pk=subjects.app_id)
        ),
        "my apps (signed in)": lambda: list(catalog.apps_of_owner(owner=heavy)[:20]),
        "search history (signed in)": lambda: searches.history_page(user=heavy)[0],
        "saved searches (signed in)": lambda: list(
            searches.saved_searches_for(saved_owner)[:SAVED_PAGE_SIZE]
        ),
        "admin: search history": changelist_rows(SearchHistory),
        "admin: apps": changelist_rows(App),
    }


def orm_vs_raw(queries: dict, url: str, iterations: int) -> dict[str, dict]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    results = {}
    with psycopg_connect(url, autocommit=True) as raw:
        for name, run in queries.items():
            with CaptureQueriesContext(connection) as captured:
                run()
            sql = captured.captured_queries[-1]["sql"]
            rows = None
            for _ in range(5):  # warm both paths
                run()
                rows = raw.execute(sql).fetchall()
            orm_times, raw_times = [], []
            for _ in range(iterations):
                started = time.perf_counter()
                run()
                orm_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                raw.execute(sql).fetchall()
                raw_times.append(time.perf_counter() - started)
            orm_ms = statistics.median(orm_times) * 1000
            raw_ms = statistics.median(raw_times) * 1000
            results[name] = {
                "rows": len(rows),
                "orm_ms": round(orm_ms, 3),
                "raw_ms": round(raw_ms, 3),
                "ratio": round(orm_ms / raw_ms, 2) if raw_ms else None,
                "sql": sql,
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
        headers = (f"Cookie: {subjects.cookies[page.who]}",) if page.who else ()
        url = server.base + page.path
        wrk(url, duration=2, connections=connections, headers=headers)  # warm-up
        result = wrk(url, duration=duration, connections=connections, headers=headers)
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


# --- 8. the report -------------------------------------------------------------


def report(scale: str, data: dict) -> str:
    lines = [
        f"# Benchmark — {scale} scale, {data['date']}",
        "",
        f"Command: `{data['command']}` (wall time {data['wall_minutes']:.1f} min). "
        f"Machine: {os.cpu_count()} cores. PostgreSQL: {data['server_version']}. "
        f"Site: {data['server']}, production settings (bench/settings.py adds only "
        f"`/bench/floor/`), wrk -t1 -c{data['connections']} for "
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
            f"| {page['name']} | `{page['path']}` | {r['rps']:.0f} | "
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
        "## ORM vs raw SQL (main query of each page)",
        "",
        f"Median of {data['orm_iterations']} runs each: the ORM call the page makes, "
        "as the page makes it, vs the SQL it emits, executed and fetched with a "
        "bare psycopg cursor. Every list loads only the columns it renders; the "
        "history page's rows are dicts (`.values()`: it only displays them), the "
        "others model instances (`.only()`), as their templates call model "
        "methods (display labels, price labels, the owner's display name).",
        "",
        "| page | rows | ORM ms | raw ms | ORM / raw |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in data["orm_raw"].items():
        lines.append(
            f"| {name} | {r['rows']} | {r['orm_ms']:.3f} | {r['raw_ms']:.3f} | "
            f"{r['ratio']:.2f} |"
        )
    lines += ["", "<details><summary>Main queries</summary>", ""]
    for name, r in data["orm_raw"].items():
        lines += [f"- {name}: `{r['sql'][:600]}`"]
    lines += ["", "</details>", ""]
    return "\n".join(lines)


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
    parser.add_argument(
        "--seed-only", action="store_true", help="seed (or reuse) and stop"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    wall = time.perf_counter()
    sys.path.insert(0, str(BASE_DIR))
    os.chdir(BASE_DIR)

    if not args.seed_only:
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

    log(f"migrating {urlparse(url).path.lstrip('/')}")
    call_command("migrate", verbosity=0, interactive=False)
    # The manifest storage needs it before any page renders (Client runs too).
    call_command("collectstatic", interactive=False, verbosity=0)
    seed = seed_ensure(args.scale)
    if args.seed_only:
        log(f"seeded: {json.dumps(seed)}")
        return 0
    copy = copy_check(args.copy_rows) if args.copy_rows else None
    if copy:
        log(f"seed vs bare COPY: {copy}")
        # Write out what the bulk loads dirtied now, so that a checkpoint
        # flushing gigabytes does not land in the first page's measurement.
        log("CHECKPOINT")
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")

    subjects = subjects_prepare()
    pages = pages_for(subjects)
    log("queries per page")
    queries = queries_per_page(pages, subjects)
    log(json.dumps(queries))
    log("ORM vs raw SQL")
    orm_raw = orm_vs_raw(main_queries(subjects), url, args.orm_iterations)
    for name, r in orm_raw.items():
        log(f"{name:38} ORM {r['orm_ms']:.3f} ms raw {r['raw_ms']:.3f} ms")

    connection.close()
    server = Gunicorn({**os.environ, **env})
    try:
        load = load_pages(server, pages, subjects, args.duration, args.connections)
        webhook = [
            load_webhook(
                server, args.duration, args.webhook_threads, args.webhook_events
            )
        ]
    finally:
        server.stop()
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
        "pages": [{"name": p.name, "path": p.path} for p in pages],
        "load": load,
        "queries": queries,
        "webhook": webhook,
        "orm_iterations": args.orm_iterations,
        "orm_raw": orm_raw,
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
