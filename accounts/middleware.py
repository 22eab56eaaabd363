"""Session activity tracking that writes at most once a minute per browser, the
admin's second-factor gate, and a clean ending for a request whose account was
deleted while it ran."""

from __future__ import annotations

import time

from allauth.account.adapter import get_adapter
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from allauth.usersessions import app_settings
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, get_user_model, logout
from django.db import IntegrityError
from django.shortcuts import redirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect
from psycopg.errors import ForeignKeyViolation

# Session key holding (time recorded, IP, user agent) of the last activity write.
ACTIVITY_KEY = "_usersession_seen"
# Session key holding (user id, time) of the last check that found a factor.
ADMIN_MFA_KEY = "_admin_mfa_seen"
# Seconds a successful check is trusted before the next admin page checks again.
ADMIN_MFA_RECHECK_SECONDS = 60
# Factors that open the admin; recovery codes only back one of these up.
ADMIN_MFA_TYPES = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)


class UserSessionActivityMiddleware:
    """allauth's ``UserSessionsMiddleware`` with a write throttle.

    allauth records activity on every signed-in request: a transaction with two
    SELECTs and an UPDATE of the whole ``usersessions_usersession`` row, so each
    page view waits for a WAL flush (the benchmark's signed-in pages spent about
    a third of their time there). Here the row is written when this browser has
    no record yet, when its IP or user agent changed (allauth's
    ``session_client_changed`` signal still fires), or when the last write is
    older than ``USERSESSIONS_ACTIVITY_INTERVAL`` seconds; "last seen" on the
    sessions page is then accurate to that interval.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.interval = getattr(settings, "USERSESSIONS_ACTIVITY_INTERVAL", 60)

    def __call__(self, request):
        if (
            app_settings.TRACK_ACTIVITY
            and hasattr(request, "session")
            and request.session.session_key
            and hasattr(request, "user")
            and request.user.is_authenticated
            # Support staff impersonating a customer: their browser is not one
            # of the customer's sessions (it would show on the sessions page).
            and not request.session.get("hijack_history")
        ):
            self._record(request)
        return self.get_response(request)

    def _record(self, request) -> None:
        now = time.time()
        client = [
            get_adapter().get_client_ip(request),
            request.META.get("HTTP_USER_AGENT", "")[:200],
        ]
        seen = request.session.get(ACTIVITY_KEY)
        if seen and seen[1:] == client and now - seen[0] < self.interval:
            return
        UserSession.objects.create_from_request(request)
        request.session[ACTIVITY_KEY] = [now, *client]


class AdminMFARequiredMiddleware:
    """ADMIN accounts enter the admin only with a second factor (TOTP or a
    passkey) enrolled.

    A signed-in admin without one who opens any ``/admin/`` page is sent to
    allauth's two-factor page with a message saying why; the admin's sign-out
    stays reachable. The check is a middleware, not ``admin.site.has_permission``,
    because a refused permission sends staff to the admin login, which sends a
    signed-in admin straight back: a loop. A positive check is remembered in the
    session for ``ADMIN_MFA_RECHECK_SECONDS`` so admin pages do not pay a query
    each; removing a factor forgets it in the removing session at once
    (accounts.signals), other sessions re-check within that interval.
    """

    message = (
        "The admin needs two-factor authentication. Add an authenticator app or "
        "a passkey to your account, then open the admin again."
    )

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and user.is_staff
            and request.path.startswith(reverse("admin:index"))
            and request.path != reverse("accounts_admin_logout")
            and not self._has_factor(request, user)
        ):
            messages.warning(request, self.message)
            return redirect("mfa_index")
        return self.get_response(request)

    def _has_factor(self, request, user) -> bool:
        seen = request.session.get(ADMIN_MFA_KEY)
        now = time.time()
        if (
            seen
            and seen[0] == str(user.pk)
            and now - seen[1] < ADMIN_MFA_RECHECK_SECONDS
        ):
            return True
        if not is_mfa_enabled(user, types=list(ADMIN_MFA_TYPES)):
            request.session.pop(ADMIN_MFA_KEY, None)
            return False
        request.session[ADMIN_MFA_KEY] = [str(user.pk), now]
        return True


def admin_mfa_forget(request) -> None:
    """Make the next admin page check for a factor again (after a removal)."""
    if request is not None and hasattr(request, "session"):
        request.session.pop(ADMIN_MFA_KEY, None)


ACCOUNT_GONE_MESSAGE = (
    "Your account was deleted while you were using it, so nothing was saved. "
    "You have been signed out."
)


class AccountGoneMiddleware:
    """A write that loses the race with the deletion of the account making it
    (deleted in another tab, or by staff, while the request ran) fails on a
    foreign key to the user row, at the statement or at commit. The browser
    is signed out and sent to the sign-in page with a message, not a 500.

    Only then: any other foreign-key failure, or one while the account still
    exists, is a bug and stays an error. One primary-key lookup, on the error
    path only."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not (
            isinstance(exception, IntegrityError)
            and isinstance(exception.__cause__, ForeignKeyViolation)
        ):
            return None
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        # A browser signed in by its session; an API call made with a key has
        # no sign-in to end (api answers it as problem details).
        session = getattr(request, "session", None)
        if session is None or session.get(SESSION_KEY) != str(user.pk):
            return None
        if get_user_model().objects.filter(pk=user.pk).exists():
            return None
        logout(request)
        messages.info(request, ACCOUNT_GONE_MESSAGE)
        login = reverse(settings.LOGIN_URL)
        if getattr(request, "htmx", False):
            return HttpResponseClientRedirect(login)
        return redirect(login)
