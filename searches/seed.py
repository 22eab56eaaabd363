"""Demo rows for ``manage.py seed``: saved searches, history and API usage.

Idempotent: each demo user gets the rows once (saved searches by name; history
and API usage only when the user has none).
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.utils import timezone

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
    others = (
        get_user_model()
        .objects.filter(is_active=True, deleted_at__isnull=True)
        .exclude(pk=admin.pk)
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
