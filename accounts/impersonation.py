"""Support staff impersonation (django-hijack): who may, what the impersonated
session may not do, and the audit trail of each impersonation.

django-hijack serves the two views (``hijack:acquire``, ``hijack:release``:
POST with a CSRF token only) and keeps the impersonator's id in the session
under ``hijack_history``. This module decides who may impersonate whom
(``HIJACK_PERMISSION_CHECK``), keeps the impersonated session out of the admin,
and writes an audit row when an impersonation starts and ends (released,
signed out, or expired). An impersonation lasts at most
IMPERSONATION_MAX_MINUTES: the first request after that signs the session out
(:class:`ImpersonationAdminGuardMiddleware`), and one never used again gets its
end row from the ``accounts.impersonations_expired_end`` job. Start and end
rows share an ``impersonation_id``. base.html shows the banner
(accounts/_impersonation_banner.html);
core.services.audit_log_record notes the impersonator on every other audit row
written during one.
"""

from __future__ import annotations

import datetime as dt
import time

from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from accounts.middleware import ADMIN_MFA_TYPES
from accounts.models import User
from core.ids import new_id
from core.models import AuditLog
from core.services import IMPERSONATOR_SESSION_KEY, audit_log_record

# {"id": the impersonation's id (in its audit rows), "expires_at": epoch seconds}
IMPERSONATION_SESSION_KEY = "impersonation"
EXPIRED_MESSAGE = (
    "The impersonation ended after {minutes} minutes and you were signed out; "
    "sign in again to continue."
)


def impersonator_id(request) -> str | None:
    """The id of the admin impersonating in this session, or None."""
    session = getattr(request, "session", None)
    history = session.get(IMPERSONATOR_SESSION_KEY) if session is not None else None
    return history[-1] if history else None


def impersonation_allowed(*, hijacker, hijacked) -> bool:
    """Whether ``hijacker`` may sign in as ``hijacked`` (HIJACK_PERMISSION_CHECK).

    Only an active ADMIN, and only with the second factor the admin itself
    requires (the acquire view is outside /admin/, where
    AdminMFARequiredMiddleware would check it). Only an active USER may be
    impersonated: never an admin (whose session would carry admin powers
    without their second factor), an inactive account, or oneself.
    """
    if hijacker is None or hijacked is None:
        return False
    if not getattr(hijacker, "is_authenticated", False):
        return False
    if not (hijacker.is_active and hijacker.role == User.Role.ADMIN):
        return False
    if hijacked.pk == hijacker.pk:
        return False
    if not hijacked.is_active or hijacked.role != User.Role.USER:
        return False
    return is_mfa_enabled(hijacker, types=list(ADMIN_MFA_TYPES))


def _impersonation_state(request) -> dict:
    return request.session.get(IMPERSONATION_SESSION_KEY) or {}


class ImpersonationAdminGuardMiddleware:
    """For a session that impersonates someone: no /admin/ page, whatever the
    impersonated account's role becomes meanwhile (promoted to ADMIN by another
    admin, say): the branded 403, whose banner offers Stop. Past
    IMPERSONATION_MAX_MINUTES the session is signed out (an end row "expired")
    and sent to the sign-in page."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.admin_prefix = None

    def __call__(self, request):
        if self.admin_prefix is None:
            self.admin_prefix = reverse("admin:index")
        admin_id = impersonator_id(request)
        if admin_id:
            expires_at = _impersonation_state(request).get("expires_at")
            if expires_at is not None and time.time() >= expires_at:
                return _impersonation_expire(request, admin_id)
            if request.path.startswith(self.admin_prefix):
                raise PermissionDenied("Stop impersonating to return to the admin.")
        return self.get_response(request)


def _impersonation_expire(request, admin_id: str):
    """End an impersonation past its time: an end row, then the whole session
    signed out (the admin's own sign-in was inside it). The end row is
    skipped when the job (``impersonations_expired_end``) already wrote it,
    the browser having come back after the job's run."""
    changes = _ended_changes(request, "expired", admin_id=admin_id, user=request.user)
    if not impersonation_end_recorded(changes.get("impersonation_id")):
        audit_log_record(
            action=AuditLog.Action.IMPERSONATION_ENDED,
            actor=User.objects.filter(pk=admin_id).first(),
            target=request.user,
            changes=changes,
            request=request,
        )
    # No second end row from the sign-out receiver.
    request.session.pop(IMPERSONATOR_SESSION_KEY, None)
    logout(request)
    messages.info(
        request, EXPIRED_MESSAGE.format(minutes=settings.IMPERSONATION_MAX_MINUTES)
    )
    return redirect(settings.LOGIN_URL)


# How far back the job looks for impersonations left without an end row (the
# job runs every ten minutes; a longer outage still gets them ended).
IMPERSONATION_END_LOOKBACK = dt.timedelta(days=2)


def impersonation_end_recorded(impersonation_id: str | None) -> bool:
    """Whether an end row for ``impersonation_id`` exists (within the job's
    lookback; along ``auditlog_action_idx``)."""
    if not impersonation_id:
        return False
    return AuditLog.objects.filter(
        action=AuditLog.Action.IMPERSONATION_ENDED,
        created_at__gte=timezone.now() - IMPERSONATION_END_LOOKBACK,
        changes__impersonation_id=impersonation_id,
    ).exists()


def _ended_changes(request, ended_by: str, *, admin_id, user) -> dict:
    """The end row's changes, with the id of the impersonation it ends: from
    the session, or, after Stop (hijack signs the admin back in first, which
    empties the session), from the pair's latest start row."""
    changes = {"ended_by": ended_by}
    impersonation_id = _impersonation_state(request).get("id")
    if not impersonation_id and admin_id and user is not None:
        impersonation_id = (
            AuditLog.objects.filter(
                action=AuditLog.Action.IMPERSONATION_STARTED,
                actor_id=admin_id,
                target_type=User._meta.label,
                target_id=str(user.pk),
            )
            .order_by("-created_at", "-id")
            .values_list("changes__impersonation_id", flat=True)
            .first()
        )
    if impersonation_id:
        changes["impersonation_id"] = impersonation_id
    return changes


# --- signal receivers (registered in AccountsConfig.ready) ---------------------


def audit_impersonation_started(sender, *, request, hijacker, hijacked, **kwargs):
    """hijack_started: the admin is now signed in as the user, for at most
    IMPERSONATION_MAX_MINUTES."""
    impersonation_id = new_id()
    expires_at = time.time() + settings.IMPERSONATION_MAX_MINUTES * 60
    request.session[IMPERSONATION_SESSION_KEY] = {
        "id": impersonation_id,
        "expires_at": expires_at,
    }
    audit_log_record(
        action=AuditLog.Action.IMPERSONATION_STARTED,
        actor=hijacker,
        target=hijacked,
        changes={
            "impersonation_id": impersonation_id,
            "expires_at": dt.datetime.fromtimestamp(expires_at, dt.UTC).isoformat(),
        },
        request=request,
    )


def audit_impersonation_ended(sender, *, request, hijacker, hijacked, **kwargs):
    """hijack_ended: the admin pressed Stop and is back in their own account."""
    audit_log_record(
        action=AuditLog.Action.IMPERSONATION_ENDED,
        actor=hijacker,
        target=hijacked,
        changes=_ended_changes(request, "stop", admin_id=hijacker.pk, user=hijacked),
        request=request,
    )
    request.session.pop(IMPERSONATION_SESSION_KEY, None)


def audit_impersonation_signed_out(sender, *, request, user, **kwargs):
    """user_logged_out during an impersonation: signing out ends it too (the
    whole session goes, the admin's included), and hijack sends no signal."""
    pk = impersonator_id(request)
    if not pk or user is None:
        return
    audit_log_record(
        action=AuditLog.Action.IMPERSONATION_ENDED,
        actor=User.objects.filter(pk=pk).first(),
        target=user,
        changes=_ended_changes(request, "sign_out", admin_id=pk, user=user),
        request=request,
    )
