"""Writes for API keys: create (the one moment the key is visible) and revoke.
Both leave an audit row."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from api.keys import key_generate, key_hash, key_prefix
from api.models import ApiKey
from core.services import audit_log_record

# A user's keys that are not revoked; more is a leak waiting to happen.
MAX_ACTIVE_KEYS = 20
# last_used_at is written at most this often per key (an UPDATE a minute, not a call).
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def _scopes_clean(scopes) -> list[str]:
    chosen = sorted(set(scopes or ()))
    known = set(ApiKey.Scope.values)
    if not chosen or not set(chosen) <= known:
        raise ValidationError(
            {"scopes": "Choose at least one scope: read, write."}, code="scopes"
        )
    return chosen


def _name_clean(name: str) -> str:
    name = " ".join((name or "").split())[:100]
    if not name or any(ord(c) < 32 for c in name):
        raise ValidationError({"name": "Give the key a name."}, code="name")
    return name


@transaction.atomic
def api_key_create(
    *,
    user,
    name: str,
    scopes=("read",),
    expires_at: dt.datetime | None = None,
    actor=None,
    request=None,
) -> tuple[ApiKey, str]:
    """A new key for ``user``: returns the row and the key itself, which is
    never available again."""
    name = _name_clean(name)
    scopes = _scopes_clean(scopes)
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise ValidationError(
            {"expires_at": "Pick a date in the future."}, code="expired"
        )
    # Lock the user row so two tabs cannot both pass the limit.
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    active = ApiKey.objects.filter(user=user, revoked_at__isnull=True).count()
    if active >= MAX_ACTIVE_KEYS:
        raise ValidationError(
            f"You have {MAX_ACTIVE_KEYS} keys; revoke one before creating another.",
            code="too_many",
        )
    raw = key_generate()
    api_key = ApiKey.objects.create(
        user=user,
        name=name,
        prefix=key_prefix(raw),
        key_hash=key_hash(raw),
        scopes=scopes,
        expires_at=expires_at,
    )
    audit_log_record(
        action="api_key_created",
        actor=actor or user,
        target=api_key,
        changes={
            "prefix": api_key.prefix,
            "scopes": scopes,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
        request=request,
    )
    return api_key, raw


def api_key_revoke(*, api_key: ApiKey, actor, request=None) -> ApiKey:
    """Revoke ``api_key`` at once (idempotent: a revoked key stays as it was)."""
    updated = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    api_key.refresh_from_db(fields=["revoked_at"])
    if updated:
        audit_log_record(
            action="api_key_revoked",
            actor=actor,
            target=api_key,
            changes={"prefix": api_key.prefix},
            request=request,
        )
    return api_key


def api_key_touch(*, api_key: ApiKey, now: dt.datetime | None = None) -> None:
    """Record that ``api_key`` was just used, at most once a minute."""
    now = now or timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
