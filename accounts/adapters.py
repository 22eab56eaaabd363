"""allauth extension points: where sign-in, sign-out and OAuth sign-up meet our
audit trail and our User model. Business rules live in accounts.services."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.authentication import get_authentication_records
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp
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
        last = records[-1] if records else {}
        changes = {"method": last.get("method", "unknown")}
        if last.get("provider"):
            changes["provider"] = last["provider"]
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

    def respond_user_inactive(self, request, user):
        audit_log_record(
            action=AuditLog.Action.SIGN_IN_FAILED,
            target=user,
            changes={"reason": "inactive"},
            request=request,
        )
        return render(request, "account/account_inactive.html", status=403)


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
