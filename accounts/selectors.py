"""Reads reused by the accounts pages."""

from __future__ import annotations

from allauth.socialaccount.adapter import get_adapter as get_social_adapter
from allauth.socialaccount.models import SocialAccount
from allauth.usersessions.models import UserSession
from django.contrib.sessions.models import Session
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django.utils import timezone


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
