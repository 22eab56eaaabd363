import hmac
from importlib import import_module

from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    load_backend,
)
from django.db import DatabaseError
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.crypto import constant_time_compare
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from core.health import health_public, health_report

# Seconds a client is asked to wait (Retry-After) while the database is down.
RETRY_AFTER_SECONDS = 30


def healthz(request):
    """200 while this instance can serve (``ok`` or ``degraded``: a job queue
    that is behind is not fixed by taking web instances out); 503 on ``error``.

    Anyone sees the status and whether the database answers, and how fast;
    the full report (server version, connections, cache, job queue, warnings)
    only a caller presenting ``HEALTHZ_TOKEN`` or signed-in staff.
    """
    report = health_report()
    body = report if healthz_details_allowed(request) else health_public(report)
    response = JsonResponse(body, status=503 if report["status"] == "error" else 200)
    # The detailed answer must not be kept by a shared cache for the next caller.
    response["Cache-Control"] = "no-store"
    return response


def healthz_details_allowed(request) -> bool:
    """Whether ``request`` may see the detailed health report: it carries
    ``HEALTHZ_TOKEN`` (``Authorization: Bearer <token>`` or ``?token=``), or
    comes from a signed-in staff user."""
    token = getattr(settings, "HEALTHZ_TOKEN", "")
    presented = _presented_token(request)
    if token and presented and hmac.compare_digest(presented.encode(), token.encode()):
        return True
    user = _session_user(request)
    return bool(user is not None and user.is_authenticated and user.is_staff)


def _presented_token(request) -> str:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.GET.get("token", "")


def _session_user(request):
    """The signed-in user, read from the session without writing it.

    /healthz is answered before the session and authentication middleware
    (``core.middleware.HealthCheckMiddleware``), so ``request.user`` is
    usually absent: a browser sending a session cookie has its session read
    here, and the user checked as ``django.contrib.auth.get_user`` does, minus
    what writes (flushing a stale session, re-keying one signed with a
    fallback secret). A probe without the cookie costs no query.
    """
    user = getattr(request, "user", None)
    if user is not None:
        return user
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return None
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    try:
        user_id = session.get(SESSION_KEY)
        backend_path = session.get(BACKEND_SESSION_KEY)
        session_hash = session.get(HASH_SESSION_KEY)
        backends = settings.AUTHENTICATION_BACKENDS
        if not (user_id and session_hash and backend_path in backends):
            return None
        user = load_backend(backend_path).get_user(user_id)
    except DatabaseError:
        # The database check reports the outage; details wait until it is back.
        return None
    if user is None or not constant_time_compare(
        session_hash, user.get_session_auth_hash()
    ):
        return None
    return user


def database_unavailable(request) -> HttpResponse:
    """The answer while the database cannot be reached: a 503 with
    ``Retry-After``, as JSON for API calls and as a page otherwise.

    Rendered without the request: its context processors would read the
    session and the user, from the database that is down.
    """
    if _wants_json(request):
        response = JsonResponse(
            {
                "error": "service_unavailable",
                "message": "The service is briefly unavailable. "
                f"Try again in {RETRY_AFTER_SECONDS} seconds.",
            },
            status=503,
        )
    else:
        response = HttpResponse(
            render_to_string("503.html", {"retry_after": RETRY_AFTER_SECONDS}),
            status=503,
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _wants_json(request) -> bool:
    if request.path.startswith("/api/"):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


# --- Colour theme ---------------------------------------------------------------

THEME_COOKIE = "theme"
THEMES = ("light", "dark")
THEME_COOKIE_MAX_AGE = 365 * 24 * 3600


def theme_of(request) -> str:
    """The visitor's chosen theme, or "" to follow the operating system."""
    value = request.COOKIES.get(THEME_COOKIE, "")
    return value if value in THEMES else ""


@require_POST
def theme_set(request):
    """Remember the colour theme ("light", "dark", or "auto" to follow the
    operating system) in a cookie and go back where the visitor was. Anything
    else leaves the choice as it was: the form only offers these three."""
    choice = request.POST.get("theme", "")
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = "/"
    # app.js posts with fetch and applies the theme itself: it needs no page.
    if request.headers.get("X-Requested-With") == "fetch":
        response = HttpResponse(status=204)
    else:
        response = HttpResponseRedirect(next_url)
    if choice in THEMES:
        response.set_cookie(
            THEME_COOKIE,
            choice,
            max_age=THEME_COOKIE_MAX_AGE,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )
    elif choice == "auto":
        response.delete_cookie(THEME_COOKIE, samesite="Lax")
    return response


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: the branded "form has expired" page, rendered with the
    request (Django's default renders 403_csrf.html without one, so the header
    would show a signed-in visitor as signed out)."""
    back = request.META.get("HTTP_REFERER", "")
    if not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = request.path if request.method == "GET" else "/"
    return render(request, "403_csrf.html", {"back_url": back}, status=403)
