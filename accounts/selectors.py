"""Reads reused by the accounts pages."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from allauth.socialaccount.adapter import get_adapter as get_social_adapter
from allauth.socialaccount.models import SocialAccount
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User


def user_sessions_active(*, user) -> QuerySet[UserSession]:
    """The user's sessions that still exist and have not expired, newest
    activity first, in one query (allauth's purge_and_list checks each one)."""
    live = Session.objects.filter(
        session_key=OuterRef("session_key"), expire_date__gt=timezone.now()
    )
    return (
        UserSession.objects.filter(user_id=user.pk)
        .filter(Exists(live))
        .order_by("-last_seen_at")
    )


def social_accounts_for(*, user) -> QuerySet[SocialAccount]:
    return SocialAccount.objects.filter(user_id=user.pk).order_by("provider", "pk")


def oauth_providers(*, request: HttpRequest) -> list:
    """Providers with credentials (settings or SocialApp rows); others hidden."""
    return get_social_adapter().list_providers(request)


def tier_effective(user, *, now=None) -> str:
    """The tier the user may use now.

    A past_due subscription keeps its tier until the paid period ends, as Stripe's
    dunning expects; after that the user is treated as FREE until a payment (or the
    subscription's deletion) arrives. :func:`tier_effective_sql` is the same rule
    inside an UPDATE.
    """
    now = now or timezone.now()
    if (
        user.subscription_status == "past_due"
        and user.subscription_ends_at is not None
        and user.subscription_ends_at <= now
    ):
        return User.Tier.FREE
    return user.tier


def tier_effective_sql(*, now) -> tuple[str, list]:
    """:func:`tier_effective` as a SQL expression over the user's row."""
    return (
        "(CASE WHEN subscription_status = 'past_due' AND subscription_ends_at <= %s"
        " THEN %s ELSE tier END)",
        [now, User.Tier.FREE],
    )


# --- keyword usage: the counters on the user row ----------------------------------

# The meter turns amber and offers an upgrade when this share of the monthly
# quota is used.
NEAR_LIMIT_RATIO = 0.8


def next_reset_at(now: dt.datetime) -> dt.datetime:
    """Start of the next calendar month (UTC) after ``now``."""
    now = now.astimezone(dt.UTC)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return dt.datetime(year, month, 1, tzinfo=dt.UTC)


def quota_limit(tier: str) -> int | None:
    """Keywords a month for ``tier`` (None: unlimited), from ``KEYWORD_QUOTAS``."""
    quotas = settings.KEYWORD_QUOTAS
    return quotas.get(tier, quotas.get("FREE"))


@dataclass(frozen=True)
class Usage:
    used: int
    limit: int | None  # None: unlimited
    reset_at: dt.datetime
    upgrade_url: str
    near_limit: bool

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    @property
    def at_limit(self) -> bool:
        return self.limit is not None and self.used >= self.limit

    def as_json(self) -> dict:
        return {
            "used": self.used,
            "limit": self.limit,
            "remaining": self.remaining,
            "reset_at": self.reset_at.isoformat(),
        }


def usage_for(user, *, now: dt.datetime | None = None) -> Usage:
    """The user's keyword usage this month: the one rule every meter renders
    (``templates/_usage_meter.html``) and the quota check agrees with.

    The limit is the *effective* tier's (:func:`tier_effective`), and a month
    whose reset date has passed counts as zero even before the next search or
    ``reset_monthly_usage`` writes the reset.
    """
    now = now or timezone.now()
    reset_at = user.monthly_reset_at
    used = user.keyword_searches_this_month
    if reset_at is None or reset_at <= now:
        used = 0 if reset_at is not None else used
        reset_at = next_reset_at(now)
    limit = quota_limit(tier_effective(user, now=now))
    return Usage(
        used=used,
        limit=limit,
        reset_at=reset_at,
        upgrade_url=reverse("billing"),
        near_limit=limit is not None and used >= limit * NEAR_LIMIT_RATIO,
    )
