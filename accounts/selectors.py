"""Reads reused by the accounts pages."""

from __future__ import annotations

from allauth.socialaccount.adapter import get_adapter as get_social_adapter
from allauth.socialaccount.models import SocialAccount
from allauth.usersessions.models import UserSession
from django.contrib.sessions.models import Session
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
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
