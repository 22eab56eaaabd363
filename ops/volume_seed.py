"""Volume for `manage.py seed --users N --apps N --searches N` (issue #8).

Rows go in through PostgreSQL ``COPY … FROM STDIN`` on the raw psycopg
connection behind Django's, in batches of ``batch_size`` rows, each batch its
own transaction. Indexes, constraints and foreign keys stay in place: every row
is checked exactly as an ORM insert would be, only without a round trip per row.

The data is coherent:

- users of every tier (about 70 % Free, 20 % Pro, 10 % Enterprise);
- apps owned by those users (or by existing users when ``--users`` is 0), a fifth
  of them forks of an earlier app of the same batch, so fork chains form and each
  parent's ``fork_count`` (direct forks that are not DELETED) is computed before
  the COPY and is right when the batch commits;
- requirements for about 30 % of the apps and a monetization model (every type,
  prices and intervals as the constraints demand) for about half;
- search history spread over the last 180 days, keywords from a fixed vocabulary,
  ``sample``/``dataforseo`` providers, 85 % signed-in (skewed: a few users own
  many rows, like real heavy users) and 15 % anonymous (``user`` NULL);
- one API usage row per ten history rows.

Running it twice adds the volume twice ("add N"); the demo data is seeded
separately and stays idempotent.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone
from tqdm import tqdm

from accounts.models import User
from apps_catalog.models import App, MonetizationModel, Requirement
from config.ids import new_id
from searches.models import APIUsage, SearchHistory

DEFAULT_BATCH_SIZE = 100_000
# Per option and run: a typo'd extra digit or three is refused at once instead
# of running for days (10x the large benchmark's 10M history rows).
MAX_VOLUME = 100_000_000
HISTORY_DAYS = 180
# The anonymous share of the search history (user NULL).
ANONYMOUS_SHARE = 0.15
# Existing users that volume rows may be attached to when --users is 0.
EXISTING_USERS_LIMIT = 200_000

ADJECTIVES = [
    "rapid",
    "smart",
    "quiet",
    "bold",
    "bright",
    "clever",
    "simple",
    "modern",
    "agile",
    "lean",
    "open",
    "cloud",
    "social",
    "green",
    "happy",
    "secure",
    "native",
    "tiny",
    "mighty",
    "zen",
]
NOUNS = [
    "invoice",
    "planner",
    "tracker",
    "studio",
    "notes",
    "mail",
    "chat",
    "forms",
    "metrics",
    "pages",
    "shop",
    "crm",
    "wiki",
    "board",
    "calendar",
    "budget",
    "recipes",
    "fitness",
    "survey",
    "deploy",
]
KEYWORD_WORDS = [
    "saas",
    "pricing",
    "launch",
    "marketing",
    "seo",
    "keyword",
    "tool",
    "free",
    "best",
    "cheap",
    "online",
    "app",
    "builder",
    "no-code",
    "template",
    "startup",
    "growth",
    "email",
    "crm",
    "analytics",
    "review",
    "guide",
]
USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) volume-seed",
    "Mozilla/5.0 (Macintosh) volume-seed",
    "curl/8.5 volume-seed",
)
APP_STATUSES = ("ACTIVE",) * 14 + ("DRAFT",) * 3 + ("ARCHIVED",) * 2 + ("DELETED",)
TIERS = ("FREE",) * 7 + ("PRO",) * 2 + ("ENTERPRISE",)
PRIORITIES = [c.value for c in Requirement.Priority]
REQ_STATUSES = [c.value for c in Requirement.Status]


class VolumeError(ValueError):
    """Bad volume arguments (negative, not integers)."""


@dataclass
class VolumeResult:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def volume_count_parse(value, *, name: str) -> int:
    """An ``N`` for --users/--apps/--searches: a non-negative integer."""
    if isinstance(value, bool):
        raise VolumeError(f"--{name} must be a whole number, not {value!r}.")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip().replace("_", "")
        if not text.lstrip("-").isdigit():
            raise VolumeError(f"--{name} must be a whole number, not {value!r}.")
        number = int(text)
    if number < 0:
        raise VolumeError(f"--{name} cannot be negative ({number}).")
    if number > MAX_VOLUME:
        raise VolumeError(
            f"--{name} {number:,} is more than this command adds in one run "
            f"({MAX_VOLUME:,}); run it again for more."
        )
    return number


# ---------------------------------------------------------------------------
# COPY plumbing


def _raw_connection():
    """The psycopg connection behind Django's default connection."""
    connection.ensure_connection()
    return connection.connection


def _columns(model, columns: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse to COPY into a table whose model has columns this module does not
    fill (a new NOT NULL column would otherwise fail deep inside a batch)."""
    expected = {f.column for f in model._meta.concrete_fields}
    if set(columns) != expected:
        missing = sorted(expected - set(columns))
        extra = sorted(set(columns) - expected)
        raise RuntimeError(
            f"volume seed columns for {model._meta.db_table} are out of date: "
            f"missing {missing}, unknown {extra}"
        )
    return columns


def copy_rows(cursor, table: str, columns: Iterable[str], rows: Iterable[tuple]) -> int:
    """``COPY table (columns) FROM STDIN`` with one ``write_row`` per row."""
    count = 0
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with cursor.copy(sql) as copy:
        write_row = copy.write_row
        for row in rows:
            write_row(row)
            count += 1
    return count


def _batches(total: int, size: int) -> Iterator[int]:
    while total > 0:
        n = min(size, total)
        yield n
        total -= n


def _progress(total: int, label: str, enabled: bool):
    return tqdm(
        total=total,
        desc=label,
        unit=" rows",
        unit_scale=True,
        disable=not enabled or total == 0,
        file=sys.stderr,
        mininterval=0.5,
    )


# ---------------------------------------------------------------------------
# Row generators (each returns a list of tuples in its table's column order)

USER_COLUMNS = (
    "id",
    "password",
    "last_login",
    "email",
    "name",
    "first_name",
    "last_name",
    "image",
    "email_verified_at",
    "role",
    "is_active",
    "tier",
    "keyword_searches_this_month",
    "keyword_searches_total",
    "monthly_reset_at",
    "trial_ends_at",
    "stripe_customer_id",
    "stripe_subscription_id",
    "subscription_status",
    "subscription_plan",
    "subscription_ends_at",
    "subscription_updated_at",
    "deleted_at",
    "created_at",
    "updated_at",
)


def user_rows(n: int, *, rng: random.Random, now: dt.datetime) -> list[tuple]:
    rows = []
    next_month = (now.replace(day=1) + dt.timedelta(days=32)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    for _ in range(n):
        uid = new_id()
        tier = rng.choice(TIERS)
        created = now - dt.timedelta(seconds=rng.randrange(HISTORY_DAYS * 86400))
        paid = tier != "FREE"
        first = rng.choice(ADJECTIVES).title()
        last = rng.choice(NOUNS).title()
        used = rng.randrange(300) if tier == "FREE" else rng.randrange(1000)
        rows.append(
            (
                uid,
                "!volume",  # unusable password: nobody signs in with one
                None,
                f"{uid}@volume.example.com",
                f"{first} {last}",
                first,
                last,
                "",
                created,
                "USER",
                True,
                tier,
                used,
                used + rng.randrange(5000),
                next_month,
                None,
                f"cus_v{uid}" if paid else "",
                f"sub_v{uid}" if paid else "",
                "active" if paid else "",
                tier.lower() if paid else "",
                next_month if paid else None,
                created if paid else None,
                None,
                created,
                created,
            )
        )
    return rows


APP_COLUMNS = (
    "id",
    "name",
    "description",
    "owner_id",
    "forked_from_id",
    "status",
    "domain",
    "fork_count",
    "created_at",
    "updated_at",
)


def app_rows(
    n: int, *, owners: list[str], rng: random.Random, now: dt.datetime
) -> list[tuple]:
    """Apps of one batch; forks point at earlier apps of the same batch, so the
    batch's parents' fork counts are complete when it is copied."""
    ids = [new_id() for _ in range(n)]
    statuses = [rng.choice(APP_STATUSES) for _ in range(n)]
    parents: list[int | None] = [None] * n
    fork_counts = [0] * n
    for i in range(1, n):
        if rng.random() < 0.2:
            # Mostly recent parents, so chains (fork of a fork of …) form.
            parent = i - 1 - min(int(rng.expovariate(1 / 20)), i - 1)
            parents[i] = parent
            if statuses[i] != "DELETED":
                fork_counts[parent] += 1
    # Children are created after their parents.
    offsets = sorted(
        (rng.randrange(HISTORY_DAYS * 86400) for _ in range(n)), reverse=True
    )
    rows = []
    for i in range(n):
        adjective = rng.choice(ADJECTIVES)
        noun = rng.choice(NOUNS)
        created = now - dt.timedelta(seconds=offsets[i])
        parent = parents[i]
        rows.append(
            (
                ids[i],
                f"{adjective.title()} {noun} {ids[i][:6]}",
                f"A {adjective} {noun} app for {rng.choice(KEYWORD_WORDS)} "
                f"{rng.choice(KEYWORD_WORDS)} teams.",
                rng.choice(owners),
                ids[parent] if parent is not None else None,
                statuses[i],
                None,
                fork_counts[i],
                created,
                created,
            )
        )
    return rows


REQUIREMENT_COLUMNS = (
    "id",
    "app_id",
    "description",
    "priority",
    "status",
    "version",
    "created_at",
    "updated_at",
)
MONETIZATION_COLUMNS = (
    "id",
    "app_id",
    "type",
    "price",
    "subscription_interval",
    "features",
    "created_at",
    "updated_at",
)
MONETIZATION_TYPES = [c.value for c in MonetizationModel.Type]
INTERVALS = [c.value for c in MonetizationModel.Interval]


def app_children_rows(
    apps: list[tuple], *, rng: random.Random
) -> tuple[list[tuple], list[tuple]]:
    requirements, monetization = [], []
    for app in apps:
        app_id, created = app[0], app[8]
        if rng.random() < 0.3:
            for k in range(rng.randint(1, 3)):
                requirements.append(
                    (
                        new_id(),
                        app_id,
                        f"Requirement {k + 1}: {rng.choice(KEYWORD_WORDS)} support",
                        rng.choice(PRIORITIES),
                        rng.choice(REQ_STATUSES),
                        1,
                        created,
                        created,
                    )
                )
        if rng.random() < 0.5:
            kind = rng.choice(MONETIZATION_TYPES)
            price = None
            if kind in ("ONE_TIME", "SUBSCRIPTION"):
                price = f"{rng.randint(1, 99)}.{rng.randrange(100):02d}"
            monetization.append(
                (
                    new_id(),
                    app_id,
                    kind,
                    price,
                    rng.choice(INTERVALS) if kind == "SUBSCRIPTION" else "",
                    ["Core features", rng.choice(KEYWORD_WORDS).title()],
                    created,
                    created,
                )
            )
    return requirements, monetization


HISTORY_COLUMNS = (
    "id",
    "user_id",
    "keywords",
    "location",
    "language",
    "match_type",
    "provider",
    "cache_hit",
    "response_time_ms",
    "keyword_count",
    "avg_volume",
    "total_volume",
    "searched_at",
    "user_agent",
    "ip_address",
    "created_at",
)


def _keyword_pool(rng: random.Random) -> list[list[str]]:
    pool = []
    for _ in range(500):
        size = rng.randint(1, 8)
        words = {
            f"{rng.choice(KEYWORD_WORDS)} {rng.choice(KEYWORD_WORDS)}"
            for _ in range(size)
        }
        pool.append(sorted(words))
    return pool


class Timeline:
    """Instants over the last HISTORY_DAYS for ``total`` rows, handed out oldest
    first in consecutive slices: the k-th call gets the k-th slice of the span.

    So a run's rows go in globally in time order, as real history does: the
    time-keyed indexes ((searched_at, id), (provider, searched_at), the
    cache-hit one, APIUsage's (timestamp)) grow at their right edge and each
    batch touches a batch-sized region of them, instead of every batch sweeping
    their whole width (which, on a 10M-row table, no longer fits in shared
    buffers and was most of the seed's time).
    """

    def __init__(self, total: int, *, rng: random.Random, now: dt.datetime) -> None:
        self.total = max(total, 1)
        self.rng = rng
        self.now = now
        self.handed = 0

    def moments(self, n: int) -> list[dt.datetime]:
        span = HISTORY_DAYS * 86400.0
        newest = span * (1 - self.handed / self.total)  # seconds ago
        oldest = span * (1 - min(self.handed + n, self.total) / self.total)
        self.handed += n
        width = newest - oldest
        random_ = self.rng.random
        offsets = sorted((oldest + random_() * width for _ in range(n)), reverse=True)
        now, timedelta = self.now, dt.timedelta
        return [now - timedelta(seconds=offset) for offset in offsets]


def history_rows(
    moments: list[dt.datetime],
    *,
    users: list[str],
    rng: random.Random,
    pool: list[list[str]],
) -> Iterator[tuple]:
    """One history row per instant of ``moments`` (see :class:`Timeline`); users
    earlier in ``users`` get more rows (rng**3 skew), like a few heavy users
    among many occasional ones."""
    random_ = rng.random
    n_users = len(users)
    for at in moments:
        keywords = pool[int(random_() * 500)]
        count = len(keywords)
        total = int(random_() * 20000 * count)
        user = (
            users[int(random_() ** 3 * n_users)]
            if n_users and random_() >= ANONYMOUS_SHARE
            else None
        )
        yield (
            new_id(),
            user,
            keywords,
            "US",
            "en",
            "broad",
            "sample" if random_() < 0.8 else "dataforseo",
            random_() < 0.3,
            int(random_() * 900) + 5,
            count,
            total // count,
            total,
            at,
            USER_AGENTS[int(random_() * 3)],
            "127.0.0.1",
            at,
        )


API_USAGE_COLUMNS = (
    "id",
    "user_id",
    "endpoint",
    "method",
    "status_code",
    "duration_ms",
    "ip_address",
    "user_agent",
    "timestamp",
    "created_at",
)


def api_usage_rows(
    moments: list[dt.datetime], *, users: list[str], rng: random.Random
) -> Iterator[tuple]:
    for at in moments:
        yield (
            new_id(),
            rng.choice(users) if users and rng.random() >= ANONYMOUS_SHARE else None,
            "/api/keywords/",
            "POST",
            rng.choice((200, 200, 200, 200, 400, 429)),
            rng.randint(5, 900),
            "127.0.0.1",
            USER_AGENTS[2],
            at,
            at,
        )


# ---------------------------------------------------------------------------
# The seed


def _existing_user_ids() -> list[str]:
    return list(
        User.objects.filter(is_active=True, deleted_at__isnull=True)
        .order_by("created_at", "id")
        .values_list("id", flat=True)[:EXISTING_USERS_LIMIT]
    )


def _copy_batches(
    *,
    label: str,
    total: int,
    batch_size: int,
    progress: bool,
    make_batch: Callable[[int], Iterable[tuple]],
    table: str,
    columns: tuple[str, ...],
) -> int:
    copied = 0
    with _progress(total, label, progress) as bar:
        for n in _batches(total, batch_size):
            with transaction.atomic(), _raw_connection().cursor() as cursor:
                copied += copy_rows(cursor, table, columns, make_batch(n))
            bar.update(n)
    return copied


def seed_volume(
    *,
    users: int = 0,
    apps: int = 0,
    searches: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    seed: int | None = None,
) -> VolumeResult:
    """Add ``users`` users, ``apps`` apps (with requirements and monetization)
    and ``searches`` search-history rows (plus a tenth as many API usage rows)."""
    users = volume_count_parse(users, name="users")
    apps = volume_count_parse(apps, name="apps")
    searches = volume_count_parse(searches, name="searches")
    batch_size = volume_count_parse(batch_size, name="batch-size") or 1
    rng = random.Random(seed)  # noqa: S311 - fake data, not secrets
    now = timezone.now()
    result = VolumeResult()

    _columns(User, USER_COLUMNS)
    _columns(App, APP_COLUMNS)
    _columns(Requirement, REQUIREMENT_COLUMNS)
    _columns(MonetizationModel, MONETIZATION_COLUMNS)
    _columns(SearchHistory, HISTORY_COLUMNS)
    _columns(APIUsage, API_USAGE_COLUMNS)

    with _raw_connection().cursor() as cursor:
        # Durability of each batch is not worth a WAL flush wait: a crash loses
        # at most the last batches of generated data. Session-level only.
        cursor.execute("SET synchronous_commit = off")

    new_users: list[str] = []
    started = time.perf_counter()

    def user_batch(n):
        rows = user_rows(n, rng=rng, now=now)
        new_users.extend(r[0] for r in rows)
        return rows

    result.counts["users"] = _copy_batches(
        label="users",
        total=users,
        batch_size=batch_size,
        progress=progress,
        make_batch=user_batch,
        table=User._meta.db_table,
        columns=USER_COLUMNS,
    )
    result.seconds["users"] = time.perf_counter() - started

    owners = new_users or _existing_user_ids()
    if (apps or searches) and not owners:
        raise VolumeError("There are no users to own apps or searches: add --users.")

    started = time.perf_counter()
    counts = {"apps": 0, "requirements": 0, "monetization models": 0}
    with _progress(apps, "apps", progress) as bar:
        for n in _batches(apps, batch_size):
            rows = app_rows(n, owners=owners, rng=rng, now=now)
            requirements, monetization = app_children_rows(rows, rng=rng)
            with transaction.atomic(), _raw_connection().cursor() as cursor:
                counts["apps"] += copy_rows(
                    cursor, App._meta.db_table, APP_COLUMNS, rows
                )
                counts["requirements"] += copy_rows(
                    cursor,
                    Requirement._meta.db_table,
                    REQUIREMENT_COLUMNS,
                    requirements,
                )
                counts["monetization models"] += copy_rows(
                    cursor,
                    MonetizationModel._meta.db_table,
                    MONETIZATION_COLUMNS,
                    monetization,
                )
            bar.update(n)
    result.counts.update(counts)
    result.seconds["apps"] = time.perf_counter() - started

    started = time.perf_counter()
    pool = _keyword_pool(rng)
    timeline = Timeline(searches, rng=rng, now=now)
    result.counts["search history"] = _copy_batches(
        label="search history",
        total=searches,
        batch_size=batch_size,
        progress=progress,
        make_batch=lambda n: history_rows(
            timeline.moments(n), users=owners, rng=rng, pool=pool
        ),
        table=SearchHistory._meta.db_table,
        columns=HISTORY_COLUMNS,
    )
    result.seconds["search history"] = time.perf_counter() - started

    started = time.perf_counter()
    timeline = Timeline(searches // 10, rng=rng, now=now)
    result.counts["api usage"] = _copy_batches(
        label="api usage",
        total=searches // 10,
        batch_size=batch_size,
        progress=progress,
        make_batch=lambda n: api_usage_rows(timeline.moments(n), users=owners, rng=rng),
        table=APIUsage._meta.db_table,
        columns=API_USAGE_COLUMNS,
    )
    result.seconds["api usage"] = time.perf_counter() - started
    with _raw_connection().cursor() as cursor:
        cursor.execute("RESET synchronous_commit")
    return result
