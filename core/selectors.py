"""Platform reads: feature flag decisions, recorded metrics, who may signal
database backends."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.db.models import Avg, Exists, Max, OuterRef
from django.db.models.functions import Trunc

from core.models import FeatureFlag, SystemMetric

# accounts.User.Role.ADMIN (core sits below accounts and cannot import it;
# tests/core/test_dashboard_queries.py checks the two agree).
ADMIN_ROLE = "ADMIN"

BUCKETS = 100


def flag_bucket(key: str, user_id: str) -> int:
    """The user's bucket (0-99) for one flag.

    A stable hash of the flag key and user id, so the answer is the same on every
    request, process and machine (Python's ``hash()`` is salted per process), and a
    user's buckets for two different flags are independent.
    """
    digest = hashlib.sha256(f"{key}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def flag_enabled(key: str, user=None) -> bool:
    """Whether ``user`` (a User, or None/anonymous) gets the feature ``key``.

    Unknown or disabled flags are off. An enabled flag is on for users in its
    allow-list, for everyone at 100 %, and otherwise for signed-in users whose
    bucket is below ``rollout_percent``. One query.
    """
    user_id = (
        getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
    )
    flags = FeatureFlag.objects.filter(key=key, enabled=True)
    if user_id is not None:
        flags = flags.annotate(
            allowed=Exists(
                FeatureFlag.allowed_users.through.objects.filter(
                    featureflag_id=OuterRef("pk"), user_id=user_id
                )
            )
        )
        row = flags.values("rollout_percent", "allowed").first()
    else:
        row = flags.values("rollout_percent").first()
    if row is None:
        return False
    if row.get("allowed") or row["rollout_percent"] >= BUCKETS:
        return True
    if user_id is None:
        return False
    return flag_bucket(key, str(user_id)) < row["rollout_percent"]


def user_may_signal_backends(user) -> bool:
    """Whether ``user`` may cancel or terminate database queries and reset
    statement statistics: an active staff member with the ADMIN role. Other
    staff (any future non-ADMIN staff role) see the lists without buttons."""
    return bool(
        getattr(user, "is_authenticated", False)
        and user.is_active
        and user.is_staff
        and getattr(user, "role", None) == ADMIN_ROLE
    )


def metric_hourly(
    metric: str, *, since: dt.datetime
) -> list[tuple[dt.datetime, float, float]]:
    """``(hour, average, peak)`` of ``metric`` since ``since``, oldest first:
    at most one row per hour whatever the recording rate, read along
    ``systemmetric_metric_ts_idx``."""
    rows = (
        SystemMetric.objects.filter(metric=metric, timestamp__gte=since)
        .annotate(hour=Trunc("timestamp", "hour"))
        .values("hour")
        .annotate(average=Avg("value"), peak=Max("value"))
        .order_by("hour")
        .values_list("hour", "average", "peak")
    )
    return list(rows)


def metric_daily(metric: str, *, since: dt.date) -> dict[dt.date, float]:
    """The value of a once-a-day metric (one row per day, stamped at the day's
    midnight, e.g. ``searches.per_day``) for each day since ``since``; the
    newest row wins if a day has two."""
    start = dt.datetime.combine(since, dt.time.min, tzinfo=dt.UTC)
    rows = (
        SystemMetric.objects.filter(metric=metric, timestamp__gte=start)
        .order_by("timestamp", "id")
        .values_list("timestamp", "value")
    )
    return {at.astimezone(dt.UTC).date(): value for at, value in rows}
