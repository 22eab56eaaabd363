"""Session activity tracking that writes at most once a minute per browser."""

from __future__ import annotations

import time

from allauth.account.adapter import get_adapter
from allauth.usersessions import app_settings
from allauth.usersessions.models import UserSession
from django.conf import settings

# Session key holding (time recorded, IP, user agent) of the last activity write.
ACTIVITY_KEY = "_usersession_seen"


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
