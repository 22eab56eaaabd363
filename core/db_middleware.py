"""Request-scoped primary pinning for the read-replica router (core.routers)."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections

from core import replica


class PrimaryPinMiddleware:
    """Start every request with a clean read-your-writes state.

    A request that wrote gets a short-lived cookie; while the client sends it
    back (the redirect after a POST, the next few clicks) its reads go to the
    primary too, so a replica a little behind never shows it stale data. Without
    a replica configured the middleware only resets the state.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        configured = replica.replica_configured()
        token = replica.request_started(
            pinned=configured and replica.PIN_COOKIE in request.COOKIES
        )
        try:
            if configured:
                # Raw SQL on the primary never asks the router: watch it directly.
                primary = connections[DEFAULT_DB_ALIAS]
                with primary.execute_wrapper(replica.note_primary_query):
                    response = self.get_response(request)
            else:
                response = self.get_response(request)
            seconds = replica.sticky_seconds()
            if configured and seconds > 0 and replica.wrote():
                response.set_cookie(
                    replica.PIN_COOKIE,
                    "1",
                    max_age=seconds,
                    secure=request.is_secure(),
                    httponly=True,
                    samesite="Lax",
                )
        finally:
            replica.request_finished(token)
        return response
