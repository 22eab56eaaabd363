from __future__ import annotations

import datetime as dt
import logging

from allauth.account.adapter import get_adapter as get_account_adapter
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.utils import timezone

from core.models import AuditLog, FeatureFlag, SystemMetric

logger = logging.getLogger(__name__)

# Seed 003: the audit trail is kept seven years.
AUDIT_LOG_RETENTION_DAYS = 7 * 365 + 2


def client_ip(request) -> str | None:
    """The client's address as allauth's rate limits see it: behind
    ``TRUSTED_PROXY_COUNT`` proxies, taken from X-Forwarded-For. None without a
    request or a valid address. Every IP the project records comes from here."""
    if request is None:
        return None
    try:
        return get_account_adapter().get_client_ip(request)
    except PermissionDenied:
        return None


def audit_log_record(
    *,
    action: str,
    actor=None,
    target: models.Model | None = None,
    changes: dict | None = None,
    request=None,
) -> AuditLog:
    """Append one row to the audit trail.

    ``actor`` is the user who acted (None for the system); ``target`` the record
    acted on. With a request, its client IP and user agent are kept too.
    """
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditLog.objects.create(
        action=action,
        actor=actor,
        actor_email=getattr(actor, "email", "") or "",
        target_type=target._meta.label if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:255] if target is not None else "",
        changes=changes or {},
        ip_address=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "") if request else "")[:512],
    )


def audit_log_prune(*, now: dt.datetime | None = None, batch_size: int = 10_000) -> int:
    """Delete audit rows older than seven years; return how many went.

    Deletes in batches by primary key so a large backlog never holds one huge
    lock or transaction; the ``auditlog_created_idx`` index finds the old rows.
    """
    cutoff = (now or timezone.now()) - dt.timedelta(days=AUDIT_LOG_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(
            AuditLog.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[
                :batch_size
            ]
        )
        if not ids:
            return deleted
        count, _ = AuditLog.objects.filter(pk__in=ids).delete()
        deleted += count


def metric_record(
    *,
    metric: str,
    value: float,
    tags: dict | None = None,
    timestamp: dt.datetime | None = None,
) -> SystemMetric:
    """Store one measurement of ``metric``."""
    return SystemMetric.objects.create(
        metric=metric,
        value=float(value),
        tags=tags or {},
        timestamp=timestamp or timezone.now(),
    )


def metric_prune(
    *,
    days: int | None = None,
    now: dt.datetime | None = None,
    batch_size: int = 10_000,
) -> int:
    """Delete SystemMetric rows measured more than ``days`` ago (default
    ``METRIC_RETENTION_DAYS``); return how many went.

    One ``DELETE … WHERE id IN (SELECT id … ORDER BY timestamp LIMIT n)`` per
    batch, each its own transaction (autocommit), oldest first along
    ``systemmetric_time_idx``: a backlog never holds one long lock, and an
    interrupted run resumes where it stopped.
    """
    days = settings.METRIC_RETENTION_DAYS if days is None else days
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    oldest = SystemMetric.objects.filter(timestamp__lt=cutoff).order_by(
        "timestamp", "id"
    )
    return rows_delete_in_batches(oldest, batch_size=batch_size)


def rows_delete_in_batches(queryset, *, batch_size: int = 10_000) -> int:
    """Delete ``queryset``'s rows ``batch_size`` at a time, in its order, each
    batch its own statement (``DELETE … WHERE id IN (SELECT id … LIMIT n)``),
    so a retention backlog never holds one long lock; returns rows deleted.
    Shared by the retention jobs of every app."""
    model = queryset.model
    ids = queryset.values("pk")
    deleted = 0
    while True:
        count, _ = model.objects.filter(pk__in=ids[:batch_size]).delete()
        deleted += count
        if count < batch_size:
            return deleted


@transaction.atomic
def feature_flag_save(
    *,
    flag: FeatureFlag,
    actor=None,
    request=None,
    allowed_users=None,
    changed_fields: list[str] | None = None,
) -> FeatureFlag:
    """Create or update a feature flag and record the change in the audit log.

    ``allowed_users`` (an iterable of users) replaces the allow-list when given.
    """
    creating = flag._state.adding
    if (
        creating
        and flag.created_by_id is None
        and getattr(actor, "is_authenticated", False)
    ):
        flag.created_by = actor
    flag.full_clean()
    flag.save()
    if allowed_users is not None:
        flag.allowed_users.set(allowed_users)
    changes = {
        "created": creating,
        "enabled": flag.enabled,
        "rollout_percent": flag.rollout_percent,
    }
    if changed_fields:
        changes["fields"] = sorted(changed_fields)
    if allowed_users is not None:
        changes["allowed_users"] = sorted(str(u.pk) for u in allowed_users)
    audit_log_record(
        action=AuditLog.Action.FLAG_CHANGED,
        actor=actor,
        target=flag,
        changes=changes,
        request=request,
    )
    return flag
