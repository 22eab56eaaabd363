"""Support staff impersonation (django-hijack): who may, what the impersonated
session may not do, and the audit trail of each impersonation.

django-hijack serves the two views (``hijack:acquire``, ``hijack:release``:
POST with a CSRF token only) and keeps the impersonator's id in the session
under ``hijack_history``. This module decides who may impersonate whom
(``HIJACK_PERMISSION_CHECK``), keeps the impersonated session out of the admin,
and writes an audit row when an impersonation starts and ends (released, or
signed out). base.html shows the banner (accounts/_impersonation_banner.html);
core.services.audit_log_record notes the impersonator on every other audit row
written during one.
"""

from __future__ import annotations

from allauth.mfa.utils import is_mfa_enabled
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from accounts.middleware import ADMIN_MFA_TYPES
from accounts.models import User
from core.models import AuditLog
from core.services import IMPERSONATOR_SESSION_KEY, audit_log_record


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


class ImpersonationAdminGuardMiddleware:
    """No /admin/ page for a session that impersonates someone, whatever the
    impersonated account's role becomes meanwhile (promoted to ADMIN by another
    admin, say): the branded 403, whose banner offers Stop."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.admin_prefix = None

    def __call__(self, request):
        if self.admin_prefix is None:
            self.admin_prefix = reverse("admin:index")
        if request.path.startswith(self.admin_prefix) and impersonator_id(request):
            raise PermissionDenied("Stop impersonating to return to the admin.")
        return self.get_response(request)


# --- signal receivers (registered in AccountsConfig.ready) ---------------------


def audit_impersonation_started(sender, *, request, hijacker, hijacked, **kwargs):
    """hijack_started: the admin is now signed in as the user."""
    audit_log_record(
        action=AuditLog.Action.IMPERSONATION_STARTED,
        actor=hijacker,
        target=hijacked,
        request=request,
    )


def audit_impersonation_ended(sender, *, request, hijacker, hijacked, **kwargs):
    """hijack_ended: the admin pressed Stop and is back in their own account."""
    audit_log_record(
        action=AuditLog.Action.IMPERSONATION_ENDED,
        actor=hijacker,
        target=hijacked,
        changes={"ended_by": "stop"},
        request=request,
    )


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
        changes={"ended_by": "sign_out"},
        request=request,
    )
