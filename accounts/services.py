"""Writes with rules for accounts: magic links, sign-in, profile, roles, sessions,
connected accounts, deletion and cleanup."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module
from typing import TextIO
from urllib.parse import urlencode

from allauth.account import signals
from allauth.account.adapter import get_adapter as get_account_adapter

# record_authentication has no public counterpart in allauth 65: it keeps the
# session's list of sign-in methods that allauth's reauthentication and MFA read.
from allauth.account.internal.flows.login import record_authentication
from allauth.account.models import EmailAddress
from allauth.account.utils import perform_login
from allauth.core import ratelimit
from allauth.core.exceptions import RateLimited
from allauth.socialaccount.models import SocialAccount
from allauth.socialaccount.signals import social_account_removed
from allauth.usersessions.adapter import get_adapter as get_usersessions_adapter
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib import messages
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts import hooks, selectors
from accounts.impersonation import IMPERSONATION_END_LOOKBACK
from accounts.models import BILLING_STATE_FIELDS, MagicLink, User
from core.ids import new_id
from core.mail import Mail, mail_deliver, mail_enqueue
from core.models import AuditLog
from core.services import (
    audit_log_changes,
    audit_log_record,
    client_ip,
    field_changes,
    model_snapshot,
)

logger = logging.getLogger(__name__)

MAGIC_LINK_SECRET_BYTES = 32  # 256 bits from the OS's CSPRNG
USED_LINK_RETENTION = timedelta(days=1)


class MagicLinkRateLimited(RateLimited):
    """Too many link requests for one address or from one IP."""


class MagicLinkInvalid(ValidationError):
    """The link is unknown (tampered), already used or expired.

    ``reason`` is one of "invalid", "used", "expired".
    """

    def __init__(self, reason: str):
        self.reason = reason
        messages = {
            "invalid": "This sign-in link is not valid. It may have been mistyped, "
            "or it expired and was cleaned up.",
            "used": "This sign-in link has already been used. Each link works once.",
            "expired": "This sign-in link has expired. Links work for 10 minutes.",
        }
        super().__init__(messages[reason], code=reason)


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def normalize_email(email: str) -> str:
    return User.objects.normalize_email((email or "").strip())


# --- magic links ------------------------------------------------------------------


def magic_link_request(
    *, email: str, request: HttpRequest, redirect_url: str | None = None
) -> MagicLink | None:
    """Create a single-use sign-in link for ``email`` and send it.

    The answer to the person asking is the same whether or not the address has
    an account: that is the caller's job; this function returns ``None`` when
    no mail went out (a deactivated account). Raises ``MagicLinkRateLimited``
    past 3 requests a minute for one address or 20 from one IP.
    """
    from accounts.tasks import magic_link_mail_send  # the task calls this module

    email = normalize_email(email)
    if not ratelimit.consume(request, action="magic_link_request", key=email.lower()):
        raise MagicLinkRateLimited()

    user = User.objects.filter(email__iexact=email).first()
    if user is not None and not user.is_active:
        # The same work as for any other address (a row, a mail job) so neither
        # the page nor its timing tells a deactivated account apart; the
        # worker sends nothing for it.
        with transaction.atomic():
            audit_log_record(
                action=AuditLog.Action.SIGN_IN_FAILED,
                target=user,
                changes={"reason": "inactive", "email": email},
                request=request,
            )
            magic_link_mail_send.defer(link_id=None, sealed=None)
        return None

    secret = secrets.token_urlsafe(MAGIC_LINK_SECRET_BYTES)
    now = timezone.now()
    with transaction.atomic():
        link = MagicLink.objects.create(
            email=user.email if user else email,
            user=user,
            token_hash=_token_hash(secret),
            expires_at=now + timedelta(seconds=settings.MAGIC_LINK_TTL_SECONDS),
            requested_ip=client_ip(request),
            created_at=now,
        )
        audit_log_record(
            action=AuditLog.Action.MAGIC_LINK_REQUESTED,
            target=link,
            changes={"email": link.email, "new_account": user is None},
            request=request,
        )
        url = reverse("magic_link", args=[secret])
        if redirect_url:
            url = f"{url}?{urlencode({'next': redirect_url})}"
        context = {
            "link_url": request.build_absolute_uri(url),
            "new_account": user is None,
            "minutes": settings.MAGIC_LINK_TTL_SECONDS // 60,
            "email": link.email,
        }
        # Deferred in this transaction: the link and its mail commit together
        # or not at all. Rendering is cheap; the SMTP round trip is the worker's.
        magic_link_mail_send.defer(
            link_id=link.pk, sealed=_magic_link_mail(link.email, context).seal()
        )
    return link


def _magic_link_mail(recipient: str, context: dict) -> Mail:
    """Rendered without the request, with allauth's subject prefix and sender."""
    adapter = get_account_adapter()
    subject = render_to_string("account/email/magic_link_subject.txt", context)
    subject = adapter.format_email_subject(" ".join(subject.splitlines()).strip())
    body = render_to_string("account/email/magic_link_message.txt", context)
    return Mail(
        subject=subject,
        body=body.strip(),
        to=[recipient],
        from_email=adapter.get_from_email(),
    )


def magic_link_mail_deliver(*, link_id: str | None, sealed: str | None) -> str:
    """The worker's half of :func:`magic_link_request`: send the link unless
    there is nothing worth sending — a deactivated account (``link_id`` None),
    or a link already used, expired or cleaned up while the mail waited (an
    SMTP outage longer than the link's life). Returns what it did."""
    if link_id is None or sealed is None:
        return "not sent: no link (deactivated account)"
    link = MagicLink.objects.filter(pk=link_id).only("used_at", "expires_at").first()
    if link is None or link.used_at is not None:
        return "not sent: the link is gone or used"
    if link.expires_at <= timezone.now():
        return "not sent: the link expired before the mail could go"
    mail_deliver(sealed=sealed)
    return "sent"


def magic_link_peek(*, secret: str) -> MagicLink:
    """The link behind ``secret`` if it can still be redeemed (read-only: GET
    never burns a link, so mail scanners that prefetch it do no harm)."""
    link = MagicLink.objects.filter(token_hash=_token_hash(secret)).first()
    if link is None:
        raise MagicLinkInvalid("invalid")
    if link.used_at is not None:
        raise MagicLinkInvalid("used")
    if link.is_expired:
        raise MagicLinkInvalid("expired")
    return link


@dataclass
class Redemption:
    user: User
    created: bool


def magic_link_redeem(*, secret: str, request: HttpRequest | None = None) -> Redemption:
    """Burn the link and return the user it signs in (created on first use).

    One conditional UPDATE claims the link, so of any number of simultaneous
    redemptions exactly one succeeds. Failures are audit-logged and raise
    ``MagicLinkInvalid``.
    """
    token_hash = _token_hash(secret)
    now = timezone.now()
    with transaction.atomic():
        claimed = MagicLink.objects.filter(
            token_hash=token_hash, used_at__isnull=True, expires_at__gt=now
        ).update(used_at=now)
        if claimed:
            link = MagicLink.objects.select_related("user").get(token_hash=token_hash)
            user, created = _user_for_verified_email(
                email=link.email, user=link.user, request=request
            )
            if link.user_id is None:
                link.user = user
                link.save(update_fields=["user"])
            return Redemption(user=user, created=created)

    link = MagicLink.objects.filter(token_hash=token_hash).first()
    if link is None:
        reason = "invalid"
    elif link.used_at is not None:
        reason = "used"
    else:
        reason = "expired"
    audit_log_record(
        action=AuditLog.Action.SIGN_IN_FAILED,
        target=link,
        changes={"reason": reason, "method": "magic_link"},
        request=request,
    )
    raise MagicLinkInvalid(reason)


def _user_for_verified_email(
    *, email: str, user: User | None, request: HttpRequest | None
) -> tuple[User, bool]:
    """The owner of ``email``, proven by a redeemed link: found or created, with
    the address marked verified (also as allauth's primary EmailAddress)."""
    now = timezone.now()
    created = False
    if user is None:
        user = User.objects.filter(email__iexact=email).first()
    if user is None:
        try:
            with transaction.atomic():
                user = User.objects.create_user(email, email_verified_at=now)
                created = True
        except (IntegrityError, ValidationError):
            # Two first-time links for one address redeemed at the same moment:
            # the other redemption's account is this one. It surfaces as the
            # unique constraint's IntegrityError when the other insert is still
            # uncommitted, or as create_user's ValidationError (full_clean
            # checks constraints) once it has committed.
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                raise
    if user.email_verified_at is None:
        _claim_unverified_account(user=user, request=request)
        user.email_verified_at = now
        user.save(update_fields=["email_verified_at", "updated_at"])
    address = EmailAddress.objects.filter(user=user, email__iexact=user.email).first()
    if address is None:
        EmailAddress.objects.filter(user=user, primary=True).update(primary=False)
        EmailAddress.objects.create(
            user=user, email=user.email, verified=True, primary=True
        )
    elif not (address.verified and address.primary):
        EmailAddress.objects.filter(user=user, primary=True).update(primary=False)
        address.verified = True
        address.primary = True
        address.save(update_fields=["verified", "primary"])
    return user, created


def _claim_unverified_account(*, user: User, request: HttpRequest | None) -> None:
    """The owner of an unverified address proves it by magic link: provider
    accounts connected to it never proved they own that address (someone could
    have signed up with another person's email), so they are disconnected."""
    for account in SocialAccount.objects.filter(user=user):
        audit_log_record(
            action=AuditLog.Action.ACCOUNT_DISCONNECTED,
            target=user,
            changes={
                "provider": account.provider,
                "reason": "email verified by magic link",
            },
            request=request,
        )
        account.delete()


def user_sign_in(
    *,
    request: HttpRequest,
    user: User,
    method: str,
    redirect_url: str | None = None,
    signup: bool = False,
) -> HttpResponse:
    """Sign ``user`` in through allauth's login flow (pre/post login hooks,
    ``user_logged_in``, session key rotation, user sessions, audit row)."""
    record_authentication(request, user, method=method, email=user.email)
    return perform_login(
        request, user, redirect_url=redirect_url, email=user.email, signup=signup
    )


# --- profile, roles, deactivation, deletion -------------------------------------------


PROFILE_FIELDS = ("name", "first_name", "last_name", "image")


@transaction.atomic
def user_profile_update(
    *, user: User, data: dict, request: HttpRequest | None = None
) -> User:
    """Update the editable profile fields; unknown keys are ignored."""
    changes = {}
    for field in PROFILE_FIELDS:
        if field in data:
            value = (data[field] or "").strip()
            if getattr(user, field) != value:
                changes[field] = [getattr(user, field), value]
                setattr(user, field, value)
    if not changes:
        return user
    user.full_clean(exclude=["password"], validate_unique=False)
    user.save(update_fields=[*changes, "updated_at"])
    audit_log_record(
        action=AuditLog.Action.PROFILE_UPDATED,
        actor=user,
        target=user,
        changes=changes,
        request=request,
    )
    return user


ONLY_ADMIN_MESSAGE = "This is the only active admin; make someone else admin first."


def _is_only_active_admin(user: User) -> bool:
    return (
        user.role == User.Role.ADMIN
        and user.is_active
        and not User.objects.filter(role=User.Role.ADMIN, is_active=True)
        .exclude(pk=user.pk)
        .exists()
    )


def user_role_change_check(*, user: User, old_role: str, role: str) -> None:
    """Refuse (``ValidationError`` on ``role``) a change from ``old_role`` to
    ``role`` that would leave no active admin. The admin form calls it too."""
    if old_role != User.Role.ADMIN or role == User.Role.ADMIN:
        return
    others = (
        User.objects.filter(role=User.Role.ADMIN, is_active=True)
        .exclude(pk=user.pk)
        .exists()
    )
    if not others:
        raise ValidationError({"role": ONLY_ADMIN_MESSAGE})


def user_removal_check(*, user: User) -> None:
    """Refuse (``ValidationError``) to deactivate or delete the only active
    admin: nobody could reach the admin any more."""
    if _is_only_active_admin(user):
        raise ValidationError(ONLY_ADMIN_MESSAGE)


@transaction.atomic
def user_role_change(
    *, user: User, role: str, actor: User | None = None, request=None
) -> User:
    """Set ``user.role``; refused when it would leave no active admin."""
    if role not in User.Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    old = (
        User.objects.select_for_update().values_list("role", flat=True).get(pk=user.pk)
    )
    if old == role:
        user.role = role
        return user
    user_role_change_check(user=user, old_role=old, role=role)
    user.role = role
    user.save(update_fields=["role", "updated_at"])
    audit_log_record(
        action=AuditLog.Action.ROLE_CHANGED,
        actor=actor,
        target=user,
        changes=field_changes({"role": old}, {"role": role}),
        request=request,
    )
    return user


@transaction.atomic
def user_deactivate(*, user: User, actor: User | None = None, request=None) -> User:
    """Deactivate and end every session: the browser is signed out on its next
    request and the account can no longer sign in (links or providers).
    Refused for the only active admin."""
    if not user.is_active:
        return user
    user_removal_check(user=user)
    user.is_active = False
    user.save(update_fields=["is_active", "updated_at"])
    _user_sessions_end_all(user=user)
    audit_log_record(
        action=AuditLog.Action.USER_DEACTIVATED,
        actor=actor,
        target=user,
        changes=field_changes({"is_active": True}, {"is_active": False}),
        request=request,
    )
    return user


def _user_sessions_end_all(*, user: User) -> None:
    """Sign ``user`` out everywhere: the browser is signed out on its next
    request."""
    keys = list(
        UserSession.objects.filter(user=user).values_list("session_key", flat=True)
    )
    Session.objects.filter(session_key__in=keys).delete()
    UserSession.objects.filter(user=user).delete()


# What staff may set on a user in the admin. Never the password (there is
# none: sign-in is by link, provider or passkey), the id or the dates the
# system keeps; billing state Stripe owns is editable for support fixes.
STAFF_EDITABLE_USER_FIELDS = frozenset(
    {
        "email",
        "name",
        "first_name",
        "last_name",
        "image",
        "role",
        "is_active",
        "email_verified_at",
        "keyword_searches_this_month",
        "keyword_searches_total",
        "monthly_reset_at",
        *BILLING_STATE_FIELDS,
    }
)
# Kept out of every audit row, whatever a future form offers.
USER_SECRET_FIELDS = ("password",)


def _staff_check(actor) -> None:
    if actor is None or not getattr(actor, "is_staff", False):
        raise PermissionDenied("Only staff can change another user's account.")


def _unknown_fields_check(changes: dict) -> None:
    unknown = sorted(set(changes) - STAFF_EDITABLE_USER_FIELDS)
    if unknown:
        raise ValidationError(f"These fields cannot be set here: {', '.join(unknown)}.")


@transaction.atomic
def user_create_by_staff(*, user: User, actor: User, request=None) -> User:
    """Save a user staff filled in on the admin's add page (no password: they
    sign in by link or provider) with one audit row listing every value set."""
    _staff_check(actor)
    user.full_clean(exclude=["password"])
    user.save()
    audit_log_changes(
        action=AuditLog.Action.UPDATED,
        actor=actor,
        target=user,
        before={},
        after=model_snapshot(user, fields=STAFF_EDITABLE_USER_FIELDS),
        secret_fields=USER_SECRET_FIELDS,
        request=request,
    )
    return user


@transaction.atomic
def user_update_by_staff(
    *, user: User, actor: User, changes: dict, request=None
) -> User:
    """Apply ``changes`` (field name → new value) that staff made to ``user``
    in the admin, with one audit row holding each changed field's old and new
    value. The rules of :func:`user_role_change` and :func:`user_deactivate`
    hold (checked again under lock, whatever the form checked): the only
    active admin is neither demoted nor deactivated, and a deactivated user is
    signed out everywhere. Only the fields named (those that differ) are
    written.

    The row is ``ROLE_CHANGED`` when the role changed, ``USER_DEACTIVATED``
    when the account was deactivated, ``UPDATED`` otherwise; nothing is
    recorded when no value differs."""
    _staff_check(actor)
    _unknown_fields_check(changes)
    if "role" in changes and changes["role"] not in User.Role.values:
        raise ValidationError({"role": f"Unknown role {changes['role']!r}."})
    guarded = "role" in changes or "is_active" in changes
    # Lock the target and, when its role or access changes, every active admin
    # in one statement (in id order): two staff demoting the last two admins
    # at once cannot both pass the "someone else is admin" check.
    rows = User.objects.select_for_update().filter(pk=user.pk)
    if guarded:
        rows = User.objects.select_for_update().filter(
            models.Q(pk=user.pk) | models.Q(role=User.Role.ADMIN, is_active=True)
        )
    stored = next(u for u in rows.order_by("pk") if u.pk == user.pk)
    before = model_snapshot(stored, fields=STAFF_EDITABLE_USER_FIELDS)
    deactivating = stored.is_active and changes.get("is_active") is False
    if "role" in changes:
        user_role_change_check(user=stored, old_role=stored.role, role=changes["role"])
    if deactivating:
        user_removal_check(user=stored)
    for field, value in changes.items():
        setattr(stored, field, value)
    stored.full_clean(exclude=["password"])
    after = model_snapshot(stored, fields=STAFF_EDITABLE_USER_FIELDS)
    written = [field for field in changes if before[field] != after[field]]
    if written:
        stored.save(update_fields=[*written, "updated_at"])
    if deactivating:
        _user_sessions_end_all(user=stored)
    if "role" in written:
        action = AuditLog.Action.ROLE_CHANGED
    elif deactivating:
        action = AuditLog.Action.USER_DEACTIVATED
    else:
        action = AuditLog.Action.UPDATED
    audit_log_changes(
        action=action,
        actor=actor,
        target=stored,
        before=before,
        after=after,
        secret_fields=USER_SECRET_FIELDS,
        request=request,
    )
    # The caller's instance (the admin's ``obj``) shows what is stored now.
    for field in (*STAFF_EDITABLE_USER_FIELDS, "updated_at"):
        setattr(user, field, getattr(stored, field))
    return user


@transaction.atomic
def user_delete(*, user: User, confirm_email: str, request=None) -> None:
    """Delete one's own account (GDPR): everything the user owns goes with it;
    rows that must outlive them (search history, audit trail) keep a null user.

    Refused for the only active admin and whenever an app above accounts says
    no (billing, while a subscription still bills: ``accounts.hooks``)."""
    if normalize_email(confirm_email).lower() != user.email.lower():
        raise ValidationError(
            {"confirm_email": "Type your email address exactly to confirm."}
        )
    _user_erase(user=user, actor=None, request=request, by="self")


@transaction.atomic
def user_delete_by_staff(*, user: User, actor: User, request=None) -> None:
    """The admin's delete: the same rules and audit row as :func:`user_delete`."""
    _user_erase(user=user, actor=actor, request=request, by="staff")


def _user_erase(*, user: User, actor: User | None, request, by: str) -> None:
    user_removal_check(user=user)
    hooks.user_deletion_checks_run(user=user)
    audit_log_record(
        action=AuditLog.Action.USER_DELETED,
        actor=actor,
        target=user,
        changes={"email": user.email, "by": by},
        request=request,
    )
    # For example apps_catalog: the parents of the user's forks must stop
    # counting them before the cascade removes them.
    hooks.before_user_deletion_run(user=user)
    keys = list(
        UserSession.objects.filter(user=user).values_list("session_key", flat=True)
    )
    Session.objects.filter(session_key__in=keys).delete()
    exports = selectors.data_export_dir() / str(user.pk)
    user.delete()
    # Their data archives go too, once the deletion is committed.
    transaction.on_commit(lambda: shutil.rmtree(exports, ignore_errors=True))


@transaction.atomic
def email_address_verify_by_staff(
    *, address: EmailAddress, actor: User, request=None
) -> bool:
    """Staff mark an address verified (the admin action allauth offers), with
    an audit row of what changed on it; False when allauth refuses (another
    account has the address verified)."""
    _staff_check(actor)
    before = model_snapshot(address)
    if not address.set_verified():
        return False
    signals.email_confirmed.send(
        sender=EmailAddress, request=request, email_address=address
    )
    address.refresh_from_db()
    audit_log_changes(
        action=AuditLog.Action.UPDATED,
        actor=actor,
        target=address,
        before=before,
        after=model_snapshot(address),
        request=request,
    )
    return True


@transaction.atomic
def user_session_end_by_staff(*, session: UserSession, actor: User, request=None):
    """Staff end a user's session from the admin (a stolen laptop): the browser
    holding it is signed out at its next request, as when the user ends it on
    their sessions page (allauth's ``UserSession.end`` deletes the Django
    session, not only the list's row), with an audit row on the user."""
    _staff_check(actor)
    audit_log_record(
        action=AuditLog.Action.SESSION_REVOKED,
        actor=actor,
        target=session.user,
        changes={
            "ip": session.ip,
            "user_agent": session.user_agent[:200],
            "by": "staff",
        },
        request=request,
    )
    get_usersessions_adapter().end_sessions([session])


@transaction.atomic
def mfa_authenticator_remove_by_staff(*, authenticator, actor: User, request=None):
    """Staff remove a user's second factor (a lost phone): audited like the
    user's own removal, with the staff member as actor. An ADMIN left without a
    factor is sent to enrol again before the admin opens."""
    user = authenticator.user
    changes = {"type": authenticator.type, "by": "staff"}
    authenticator.delete()
    audit_log_record(
        action=AuditLog.Action.MFA_DISABLED,
        actor=actor,
        target=user,
        changes=changes,
        request=request,
    )


# --- sessions and connected accounts -----------------------------------------------


@transaction.atomic
def user_session_revoke(*, request: HttpRequest, session: UserSession) -> None:
    """End one of the signed-in user's sessions (the current one signs out)."""
    audit_log_record(
        action=AuditLog.Action.SESSION_REVOKED,
        actor=request.user,
        target=request.user,
        changes={"ip": session.ip, "user_agent": session.user_agent[:200]},
        request=request,
    )
    _sessions_end(request=request, sessions=[session])


def _sessions_end(*, request: HttpRequest, sessions: list[UserSession]) -> None:
    """End ``sessions``; when the current one is among them, sign out here too
    (with allauth's "signed out" message), as allauth's own sessions page does."""
    current = any(session.is_current() for session in sessions)
    get_usersessions_adapter().end_sessions(sessions)
    if current:
        adapter = get_account_adapter()
        adapter.add_message(
            request, messages.SUCCESS, "account/messages/logged_out.txt"
        )
        adapter.logout(request)


@transaction.atomic
def user_sessions_revoke_others(*, request: HttpRequest) -> int:
    """End every session of the signed-in user except this one."""
    others = [
        s
        for s in UserSession.objects.filter(user_id=request.user.pk)
        if s.session_key != request.session.session_key
    ]
    if others:
        audit_log_record(
            action=AuditLog.Action.SESSION_REVOKED,
            actor=request.user,
            target=request.user,
            changes={"count": len(others), "scope": "all others"},
            request=request,
        )
        _sessions_end(request=request, sessions=others)
    return len(others)


@transaction.atomic
def social_account_disconnect(*, request: HttpRequest, account: SocialAccount) -> None:
    """Unlink a provider. The last way in cannot be removed: a magic link to
    the account's email is a way in only once that address is verified, so
    the last provider of an account with an unverified email stays."""
    user = account.user
    others = SocialAccount.objects.filter(user=user).exclude(pk=account.pk).exists()
    if not others and user.email_verified_at is None:
        raise ValidationError(
            f"This is your only way to sign in: {user.email} is not verified yet. "
            "Sign in once with a link sent to that address, then you can "
            "disconnect this account."
        )
    provider = account.provider
    # allauth's own disconnect flow needs the provider's credentials to still be
    # configured; unlinking must work after they are removed too.
    account.delete()
    social_account_removed.send(
        sender=SocialAccount, request=request, socialaccount=account
    )
    audit_log_record(
        action=AuditLog.Action.ACCOUNT_DISCONNECTED,
        actor=user,
        target=user,
        changes={"provider": provider},
        request=request,
    )


# --- maintenance --------------------------------------------------------------------


def cleanup_expired(*, now=None) -> dict[str, int]:
    """Delete expired magic links (and used ones older than a day), expired
    Django sessions and allauth user sessions whose session is gone. Returns
    rows deleted by kind. (allauth's login codes live in the session, so they
    go with it.)"""
    now = now or timezone.now()
    links, _ = MagicLink.objects.filter(expires_at__lt=now).delete()
    used, _ = MagicLink.objects.filter(used_at__lt=now - USED_LINK_RETENTION).delete()
    if settings.SESSION_ENGINE in (
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
    ):
        sessions, _ = Session.objects.filter(expire_date__lt=now).delete()
        stale, _ = UserSession.objects.exclude(
            session_key__in=Session.objects.values("session_key")
        ).delete()
    else:
        import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
        sessions = 0
        stale = 0
        for user_session in UserSession.objects.all().iterator():
            stale += int(user_session.purge())
    return {
        "expired magic links": links,
        "used magic links": used,
        "expired sessions": sessions,
        "stale user sessions": stale,
    }


def impersonations_expired_end(*, now=None) -> int:
    """An end row ("expired") for each impersonation past its time that has
    none: the admin closed the browser instead of pressing Stop, so no request
    came to end it (accounts.impersonation). Safe to run twice. Returns how
    many were ended."""
    now = now or timezone.now()
    max_age = timedelta(minutes=settings.IMPERSONATION_MAX_MINUTES)
    recent = AuditLog.objects.filter(created_at__gte=now - IMPERSONATION_END_LOOKBACK)
    ended = set(
        recent.filter(action=AuditLog.Action.IMPERSONATION_ENDED).values_list(
            "changes__impersonation_id", flat=True
        )
    )
    started = recent.filter(
        action=AuditLog.Action.IMPERSONATION_STARTED, created_at__lte=now - max_age
    ).values_list("changes__impersonation_id", "actor_id", "target_id")
    expired = [row for row in started if row[0] and row[0] not in ended]
    users = User.objects.in_bulk({pk for row in expired for pk in row[1:] if pk})
    for impersonation_id, admin_id, user_id in expired:
        audit_log_record(
            action=AuditLog.Action.IMPERSONATION_ENDED,
            actor=users.get(admin_id),
            target=users.get(user_id),
            changes={"ended_by": "expired", "impersonation_id": impersonation_id},
        )
    return len(expired)


# --- "Download my data" -------------------------------------------------------------


class DataExportPending(ValidationError):
    """An archive of this user's is already waiting for a worker."""


def data_export_request(*, user: User, base_url: str) -> str:
    """Queue the building of ``user``'s data archive; a worker builds it
    (:func:`data_export_build`) and mails a download link. Nothing heavy runs
    here. ``base_url`` (``https://host/``) is where the link points. Returns
    the archive's id; raises ``DataExportPending`` while one is queued."""
    from procrastinate.exceptions import AlreadyEnqueued

    from accounts.tasks import data_export_build  # the task calls this module

    export_id = new_id()
    try:
        # A savepoint: a refused insert must not abort the request's transaction.
        with transaction.atomic():
            data_export_build.configure(
                queueing_lock=selectors.data_export_lock(user.pk)
            ).defer(user_id=user.pk, export_id=export_id, base_url=base_url)
    except AlreadyEnqueued as exc:
        raise DataExportPending(
            "Your archive is already being prepared: you will get an email "
            "with the link as soon as it is ready."
        ) from exc
    audit_log_record(
        action=AuditLog.Action.DATA_EXPORT_REQUESTED,
        actor=user,
        target=user,
        changes={"export": export_id},
    )
    return export_id


def data_export_build(*, user_id: str, export_id: str, base_url: str, now=None) -> str:
    """The worker's half of :func:`data_export_request`: write the archive of
    everything the user owns to a private file, readable by them for
    ``DATA_EXPORT_TTL``, and mail them the link. Safe to run twice (a built
    archive is left alone). Returns what it did."""
    now = now or timezone.now()
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return "not built: the account is gone"
    path = selectors.data_export_path(user_id=user.pk, export_id=export_id)
    if path is None:
        return "not built: malformed archive id"
    if path.exists():
        return "not built: already there"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.part")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "w", encoding="utf-8") as out:
            _json_document_write(out, _data_export_document(user=user, now=now))
        # Complete or absent: the download view never sees half a file.
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    export = selectors.data_export_get(user=user, export_id=export_id)
    _data_export_mail(user=user, export=export, base_url=base_url)
    return f"built: {export.size} bytes"


def _data_export_document(*, user: User, now) -> Iterator[tuple[str, object]]:
    yield "format", "launchpad-data-export/1"
    yield "generated_at", now
    yield from selectors.user_data_export_sections(user=user).items()
    # The apps above accounts: apps and posts, searches, billing (accounts.hooks).
    yield from hooks.user_data_export_run(user=user)


def _json_document_write(out: TextIO, items: Iterable[tuple[str, object]]) -> None:
    """One JSON object, written as it is produced: a section given as a list or
    an iterator is written one element a line, so a long search history never
    sits in memory whole."""
    out.write("{")
    for index, (key, value) in enumerate(items):
        out.write(",\n  " if index else "\n  ")
        out.write(f"{json.dumps(key)}: ")
        if isinstance(value, dict | str | bytes) or not isinstance(value, Iterable):
            text = json.dumps(value, cls=DjangoJSONEncoder, indent=2)
            out.write(text.replace("\n", "\n  "))
            continue
        out.write("[")
        empty = True
        for element in value:
            out.write("\n    " if empty else ",\n    ")
            out.write(json.dumps(element, cls=DjangoJSONEncoder))
            empty = False
        out.write("]" if empty else "\n  ]")
    out.write("\n}\n")


def _data_export_mail(*, user: User, export, base_url: str) -> None:
    adapter = get_account_adapter()
    path = reverse("data_export_download", args=[export.id])
    context = {
        "download_url": f"{base_url.rstrip('/')}{path}",
        "account_url": f"{base_url.rstrip('/')}{reverse('account')}",
        "expires_at": export.expires_at,
    }
    subject = render_to_string("accounts/email/data_export_subject.txt", context)
    mail_enqueue(
        subject=adapter.format_email_subject(" ".join(subject.split())),
        body=render_to_string(
            "accounts/email/data_export_message.txt", context
        ).strip(),
        to=[user.email],
        from_email=adapter.get_from_email(),
    )


def data_exports_prune(*, now=None) -> dict[str, int]:
    """Delete archives past ``DATA_EXPORT_TTL`` (and files a crashed build left
    behind), and every archive of an account that no longer exists. Returns
    files deleted by kind."""
    now = now or timezone.now()
    root = selectors.data_export_dir()
    counts = {"expired archives": 0, "archives of deleted accounts": 0}
    if not root.is_dir():
        return counts
    folders = {folder.name: folder for folder in root.iterdir() if folder.is_dir()}
    existing = set(
        User.objects.filter(pk__in=list(folders)).values_list("pk", flat=True)
    )
    cutoff = (now - selectors.DATA_EXPORT_TTL).timestamp()
    for name, folder in folders.items():
        gone = name not in existing
        for path in folder.iterdir():
            try:
                if gone or path.stat().st_mtime <= cutoff:
                    path.unlink()
                    key = "archives of deleted accounts" if gone else "expired archives"
                    counts[key] += 1
            except FileNotFoundError:
                continue  # a download or another prune got there first
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty
    return counts
