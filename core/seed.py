"""Demo rows of the platform layer for `manage.py seed`: a few feature flags and
system metrics (idempotent). It runs last (order 90): no app's rows point at
these, and they point at nothing but the staff user."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from core.models import FeatureFlag, SystemMetric
from core.seeding import seeder_register

DEMO_FLAGS = [
    {
        "key": "new-search-page",
        "description": "Redesigned keyword research page.",
        "enabled": True,
        "rollout_percent": 30,
    },
    {
        "key": "fork-tree-graph",
        "description": "Draw the fork tree as a graph on the app page.",
        "enabled": True,
        "rollout_percent": 100,
    },
    {
        "key": "usage-based-pricing",
        "description": "Offer usage-based plans on the pricing page.",
        "enabled": False,
        "rollout_percent": 0,
    },
]

DEMO_METRIC_SOURCE = "seed"


def seed_demo(*, admin, stdout=None) -> dict[str, int]:
    """The demo flags missing by key, and a day of hourly metrics unless a
    previous run left them."""
    created_flags = 0
    for spec in DEMO_FLAGS:
        _flag, created = FeatureFlag.objects.get_or_create(
            key=spec["key"], defaults={**spec, "created_by": admin}
        )
        created_flags += created

    created_metrics = 0
    if not SystemMetric.objects.filter(tags__source=DEMO_METRIC_SOURCE).exists():
        now = timezone.now().replace(minute=0, second=0, microsecond=0)
        rows = [
            SystemMetric(
                metric="db.response_time_ms",
                value=1.5 + (hour % 6) * 0.4,
                tags={"source": DEMO_METRIC_SOURCE},
                timestamp=now - dt.timedelta(hours=hour),
            )
            for hour in range(24)
        ]
        created_metrics = len(SystemMetric.objects.bulk_create(rows))
    return {"feature flags": created_flags, "system metrics": created_metrics}


seeder_register(name="core", order=90, demo=seed_demo)
