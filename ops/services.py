from __future__ import annotations

from django.db import models

from ops.models import AuditLog


def _client_ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


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
        ip_address=_client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "") if request else "")[:512],
    )
