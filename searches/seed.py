"""Search rows for ``manage.py seed``: saved searches, history and API usage.

Demo: idempotent, each demo user gets the rows once (saved searches by name;
history and API usage only when the user has none).

Volume (``--searches N``, through COPY, see ``core.seeding``): N history rows
spread over the last HISTORY_DAYS, keywords from a fixed vocabulary,
``sample``/``dataforseo`` providers, 85 % signed-in (skewed: a few users own
many rows, like real heavy users) and 15 % anonymous (``user`` NULL); one API
usage row per ten history rows. Both go in oldest first (:class:`Timeline`).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.seed import VOLUME_EMAIL_DOMAIN
from core.ids import new_id
from core.seeding import (
    KEYWORD_WORDS,
    SeedContext,
    Timeline,
    copy_batches,
    seeder_register,
)
from searches.models import APIUsage, SavedSearch, SearchHistory
from searches.providers import SampleProvider

DEMO_SEARCHES = [
    (
        "SaaS launch ideas",
        ["saas ideas", "how to launch a saas", "best saas tools", "saas pricing"],
    ),
    (
        "Keyword tools",
        ["keyword research tool", "free keyword planner", "seo tools review"],
    ),
    (
        "No-code builders",
        ["no code app builder", "build app without code", "bubble vs webflow"],
    ),
]
DEMO_USERS = 3


def _demo_users(admin):
    """The admin and the oldest other active users, volume users left out: they
    are back-dated, so after a volume run they would be the oldest and every
    demo run would pick (and fill) new ones."""
    others = (
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(pk=admin.pk)
        .exclude(email__endswith=f"@{VOLUME_EMAIL_DOMAIN}")
        .order_by("created_at", "id")[:DEMO_USERS]
    )
    return [admin, *others]


def seed_demo(*, admin, stdout=None) -> dict[str, int]:
    provider = SampleProvider()
    now = timezone.now()
    created = {"saved searches": 0, "search history": 0, "api usage": 0}
    for user in _demo_users(admin):
        for offset, (name, keywords) in enumerate(DEMO_SEARCHES):
            results = [
                r.as_dict()
                for r in provider.search_keywords(keywords, "US", "en", "broad")
            ]
            _, made = SavedSearch.objects.get_or_create(
                user=user,
                name=name,
                defaults={
                    "keywords": keywords,
                    "keyword_count": len(keywords),
                    "results": results,
                    "provider": provider.name,
                    "last_accessed_at": now - dt.timedelta(days=offset),
                },
            )
            created["saved searches"] += int(made)
        if not SearchHistory.objects.filter(user=user).exists():
            rows = []
            for day in range(30):
                name, keywords = DEMO_SEARCHES[day % len(DEMO_SEARCHES)]
                total = sum(
                    r.search_volume
                    for r in provider.search_keywords(keywords, "US", "en", "broad")
                )
                rows.append(
                    SearchHistory(
                        user=user,
                        keywords=keywords,
                        provider=provider.name,
                        cache_hit=day % 4 == 3,
                        response_time_ms=5 + day % 7,
                        keyword_count=len(keywords),
                        total_volume=total,
                        avg_volume=round(total / len(keywords)),
                        searched_at=now - dt.timedelta(days=day, hours=day % 5),
                        user_agent="Mozilla/5.0 (demo)",
                        ip_address="127.0.0.1",
                    )
                )
            SearchHistory.objects.bulk_create(rows)
            created["search history"] += len(rows)
        if not APIUsage.objects.filter(user=user).exists():
            rows = [
                APIUsage(
                    user=user,
                    endpoint="/api/keywords/",
                    method="POST",
                    status_code=(200, 200, 200, 400, 429)[i % 5],
                    duration_ms=20 + i * 3,
                    ip_address="127.0.0.1",
                    user_agent="curl/8.0 (demo)",
                    timestamp=now - dt.timedelta(hours=i * 7),
                )
                for i in range(10)
            ]
            APIUsage.objects.bulk_create(rows)
            created["api usage"] += len(rows)
    return created


# ---------------------------------------------------------------------------
# Volume (generators yield tuples in their table's column order)

# The anonymous share of the search history (user NULL).
ANONYMOUS_SHARE = 0.15
USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) volume-seed",
    "Mozilla/5.0 (Macintosh) volume-seed",
    "curl/8.5 volume-seed",
)
KEYWORD_POOL_SIZE = 500

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
API_USAGE_COLUMNS = (
    "id",
    "user_id",
    "endpoint",
    "method",
    "status_code",
    "duration_ms",
    "ip_address",
    "user_agent",
    "key_prefix",
    "timestamp",
    "created_at",
)


def keyword_pool(rng: random.Random) -> list[list[str]]:
    """KEYWORD_POOL_SIZE keyword lists (1 to 8 two-word keywords, sorted) that
    history rows pick from, so searches repeat as real ones do."""
    pool = []
    for _ in range(KEYWORD_POOL_SIZE):
        size = rng.randint(1, 8)
        words = {
            f"{rng.choice(KEYWORD_WORDS)} {rng.choice(KEYWORD_WORDS)}"
            for _ in range(size)
        }
        pool.append(sorted(words))
    return pool


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
    n_pool = len(pool)
    for at in moments:
        keywords = pool[int(random_() * n_pool)]
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


def api_usage_rows(
    moments: list[dt.datetime], *, users: list[str], rng: random.Random
) -> Iterator[tuple]:
    """One keyword-API call per instant of ``moments``, mostly successful."""
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
            "",  # the session endpoint: no API key
            at,
            at,
        )


def seed_volume(context: SeedContext) -> None:
    """Add ``requested["searches"]`` history rows and a tenth as many API usage
    rows, owned by ``context.owners``."""
    searches = context.requested.get("searches", 0)
    rng, now, owners = context.rng, context.now, context.owners

    with context.timed("search history"):
        pool = keyword_pool(rng)
        timeline = Timeline(searches, rng=rng, now=now)
        context.result.counts["search history"] = copy_batches(
            context,
            label="search history",
            total=searches,
            make_batch=lambda n: history_rows(
                timeline.moments(n), users=owners, rng=rng, pool=pool
            ),
            table=SearchHistory._meta.db_table,
            columns=HISTORY_COLUMNS,
        )

    with context.timed("api usage"):
        calls = searches // 10
        api_timeline = Timeline(calls, rng=rng, now=now)
        context.result.counts["api usage"] = copy_batches(
            context,
            label="api usage",
            total=calls,
            make_batch=lambda n: api_usage_rows(
                api_timeline.moments(n), users=owners, rng=rng
            ),
            table=APIUsage._meta.db_table,
            columns=API_USAGE_COLUMNS,
        )


seeder_register(
    name="searches",
    order=20,
    demo=seed_demo,
    volume=seed_volume,
    copies=[(SearchHistory, HISTORY_COLUMNS), (APIUsage, API_USAGE_COLUMNS)],
    needs_owners=True,
)
