"""Receivers for allauth signals whose flows have no adapter hook: each writes an
audit row (or forgets a cached check), nothing else."""

from allauth.mfa.models import Authenticator

from accounts.middleware import admin_mfa_forget
from core.models import AuditLog
from core.services import audit_log_record


def audit_social_account_added(sender, request, sociallogin, **kwargs):
    user = sociallogin.user
    audit_log_record(
        action=AuditLog.Action.ACCOUNT_CONNECTED,
        actor=user,
        target=user,
        changes={"provider": sociallogin.account.provider},
        request=request,
    )


def _mfa_changes(authenticator: Authenticator) -> dict:
    changes = {"type": authenticator.type}
    if authenticator.pk is not None:  # None once deleted
        changes["authenticator"] = authenticator.pk
    if name := (authenticator.data or {}).get("name"):  # a passkey's label
        changes["name"] = name
    return changes


def audit_authenticator_added(sender, request, user, authenticator, **kwargs):
    audit_log_record(
        action=AuditLog.Action.MFA_ENABLED,
        actor=user,
        target=user,
        changes=_mfa_changes(authenticator),
        request=request,
    )


def audit_authenticator_removed(sender, request, user, authenticator, **kwargs):
    admin_mfa_forget(request)
    audit_log_record(
        action=AuditLog.Action.MFA_DISABLED,
        actor=user,
        target=user,
        changes=_mfa_changes(authenticator),
        request=request,
    )


def audit_authenticator_reset(sender, request, user, authenticator, **kwargs):
    audit_log_record(
        action=AuditLog.Action.MFA_RECOVERY_CODES_REGENERATED,
        actor=user,
        target=user,
        changes=_mfa_changes(authenticator),
        request=request,
    )


def audit_authenticator_used(sender, request, user, authenticator, **kwargs):
    # TOTP and passkey use at sign-in is on the sign_in row; a recovery code is
    # a spent, one-time credential and gets its own row.
    if authenticator.type != Authenticator.Type.RECOVERY_CODES:
        return
    changes = _mfa_changes(authenticator)
    changes["reauthenticated"] = bool(kwargs.get("reauthenticated"))
    # The instance allauth passes predates the code being marked used.
    codes = Authenticator.objects.filter(pk=authenticator.pk).first()
    if codes is not None:
        changes["codes_left"] = len(codes.wrap().get_unused_codes())
    audit_log_record(
        action=AuditLog.Action.MFA_RECOVERY_CODE_USED,
        actor=user,
        target=user,
        changes=changes,
        request=request,
    )
