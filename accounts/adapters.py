"""allauth extension points: where sign-in, sign-out, OAuth sign-up and second
factors meet our audit trail and our User model. Business rules live in
accounts.services."""

from __future__ import annotations

import base64
import hashlib
import time

from allauth.account import app_settings as account_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.authentication import get_authentication_records
from allauth.core import context as allauth_context
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp
from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.contrib.sites.shortcuts import get_current_site
from django.http import Http404, HttpRequest
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from accounts.models import validate_email_shape
from core.mail import mail_enqueue
from core.models import AuditLog
from core.services import audit_log_record


class AccountAdapter(DefaultAccountAdapter):
    """Passwordless: nobody signs up with a form; accounts come from a redeemed
    magic link (accounts.services) or from an OAuth provider."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Local (password) signup does not exist; OAuth signup is governed by
        # SocialAccountAdapter.is_open_for_signup.
        return False

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """Every email allauth sends goes through the job queue too: rendered
        here (no I/O), handed to SMTP by a worker. Only the plain-text part is
        queued; the project ships no HTML email templates."""
        request = context.get("request") or allauth_context.request
        if request is not None:
            # What allauth's own send_mail adds: its templates greet by site.
            context = {
                "request": request,
                "email": email,
                "current_site": get_current_site(request),
                **context,
            }
        message = self.render_mail(template_prefix, email, context)
        mail_enqueue(
            subject=message.subject,
            body=message.body,
            to=list(message.to),
            from_email=message.from_email,
        )

    def clean_email(self, email: str) -> str:
        """allauth's forms (the OAuth sign-up step that asks for an address)
        check the shape the database accepts, not only Django's."""
        validate_email_shape(email)
        return super().clean_email(email)

    def post_login(self, request, user, **kwargs):
        response = super().post_login(request, user, **kwargs)
        records = get_authentication_records(request, user)
        # With a second factor the newest record is "mfa": the row names the
        # way in (magic link or provider) and adds the factor's type.
        way_in = next(
            (
                r
                for r in reversed(records)
                if r.get("method") != "mfa" and not r.get("reauthenticated")
            ),
            {},
        )
        changes = {"method": way_in.get("method", "unknown")}
        if way_in.get("provider"):
            changes["provider"] = way_in["provider"]
        last = records[-1] if records else {}
        if last.get("method") == "mfa" and not last.get("reauthenticated"):
            changes["mfa"] = last.get("type", "")
        audit_log_record(
            action=AuditLog.Action.SIGN_IN,
            actor=user,
            target=user,
            changes=changes,
            request=request,
        )
        return response

    def logout(self, request: HttpRequest) -> None:
        user = request.user
        if user.is_authenticated:
            audit_log_record(
                action=AuditLog.Action.SIGN_OUT,
                actor=user,
                target=user,
                request=request,
            )
        super().logout(request)

    def is_reauthentication_required(self, *, app: str, **kwargs) -> bool:
        """Adding or removing a second factor (and other sensitive changes) asks
        for fresh proof of identity, and nobody has a password. A sign-in in
        this session within ACCOUNT_REAUTHENTICATION_TIMEOUT (5 minutes) is that
        proof: it took a just-redeemed magic link, a provider round trip or a
        factor. Later, allauth asks for an existing factor or a code mailed to
        the verified address (ACCOUNT_REAUTHENTICATION_METHODS), which proves
        the same mailbox a magic link does. Switching reauthentication off
        instead would let a stolen session cookie enrol the thief's
        authenticator or remove the owner's."""
        if not super().is_reauthentication_required(app=app, **kwargs):
            return False
        request = allauth_context.request
        if request is None or not request.user.is_authenticated:
            return True
        records = get_authentication_records(request, request.user)
        if not records:
            return True
        age = time.time() - records[-1].get("at", 0)
        return age >= account_settings.REAUTHENTICATION_TIMEOUT

    def respond_user_inactive(self, request, user):
        audit_log_record(
            action=AuditLog.Action.SIGN_IN_FAILED,
            target=user,
            changes={"reason": "inactive"},
            request=request,
        )
        return render(request, "account/account_inactive.html", status=403)


def _mfa_fernet() -> MultiFernet:
    """Keys derived from SECRET_KEY (sealing) and SECRET_KEY_FALLBACKS (still
    opening), so a key rotation with fallbacks keeps every factor working."""
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet(
        [
            Fernet(
                base64.urlsafe_b64encode(
                    hashlib.sha256(b"accounts.mfa:" + key.encode()).digest()
                )
            )
            for key in keys
        ]
    )


class MFAAdapter(DefaultMFAAdapter):
    """allauth.mfa's extension point. TOTP secrets and recovery-code seeds are
    sealed at rest: whoever reads the table (a backup, a replica, the admin's
    SQL tools) must not be able to mint codes."""

    def encrypt(self, text: str) -> str:
        return _mfa_fernet().encrypt(text.encode()).decode()

    def decrypt(self, encrypted_text: str) -> str:
        return _mfa_fernet().decrypt(encrypted_text.encode()).decode()


class ProviderNotConfigured(SocialApp.DoesNotExist, Http404):
    """A provider without credentials is hidden: its URLs answer 404."""


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def get_app(self, request, provider, client_id=None):
        try:
            return super().get_app(request, provider, client_id=client_id)
        except SocialApp.DoesNotExist as exc:
            raise ProviderNotConfigured(f"{provider} is not configured") from exc

    def is_open_for_signup(self, request, sociallogin) -> bool:
        return True

    def save_user(self, request, sociallogin, form=None):
        """A new account from a provider: its email counts as verified only when
        the provider says so (then magic links to it are a way in as well)."""
        user = super().save_user(request, sociallogin, form=form)
        verified = {
            address.email.lower()
            for address in sociallogin.email_addresses
            if address.verified
        }
        if user.email.lower() in verified and user.email_verified_at is None:
            user.email_verified_at = timezone.now()
            user.save(update_fields=["email_verified_at", "updated_at"])
        return user

    def populate_user(self, request, sociallogin, data):
        user = super().populate_user(request, sociallogin, data)
        name = (data.get("name") or "").strip()
        if name and not user.name:
            user.name = name[:255]
        picture = sociallogin.account.get_avatar_url() if sociallogin.account else None
        if picture and not user.image and len(picture) <= 2048:
            user.image = picture
        return user

    def get_connect_redirect_url(self, request, socialaccount) -> str:
        return reverse("socialaccount_connections")

    def on_authentication_error(
        self, request, provider, error=None, exception=None, extra_context=None
    ) -> None:
        audit_log_record(
            action=AuditLog.Action.SIGN_IN_FAILED,
            changes={"provider": getattr(provider, "id", ""), "error": str(error)},
            request=request,
        )
        super().on_authentication_error(
            request,
            provider,
            error=error,
            exception=exception,
            extra_context=extra_context,
        )
