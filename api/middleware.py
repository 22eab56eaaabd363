"""Around every /api/v1/ request: one APIUsage row (success, refusal or error),
the RateLimit-* headers, and problem details instead of any HTML page that a
layer below answered with (Django's 404/405, the 400 for NUL bytes, the 503
during a database outage)."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import DatabaseError

from api.problems import PROBLEM_CONTENT_TYPE, problem, rate_limited_response
from api.ratelimit import unauthenticated_hit
from core.services import client_ip
from searches.services import api_usage_record, user_agent

logger = logging.getLogger(__name__)

# Documentation (the OpenAPI document, /docs and its assets) is not a call of
# the API: not metered.
UNMETERED = ("openapi.json", "docs")


class ApiMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.prefix = settings.API_V1_PREFIX

    def __call__(self, request):
        if not request.path.startswith(self.prefix):
            return self.get_response(request)
        started = time.monotonic()
        response = self.get_response(request)
        if response.status_code >= 400 and not response.get(
            "Content-Type", ""
        ).startswith((PROBLEM_CONTENT_TYPE, "application/json")):
            response = self._as_problem(response)
        state = getattr(request, "api_rate", None)
        if state is not None:
            for name, value in state.headers().items():
                response.setdefault(name, value)
        rest = request.path[len(self.prefix) :].strip("/")
        if rest.startswith(UNMETERED):
            return response
        if getattr(request, "api_key", None) is None:
            # Every metered answer without a valid key is a refusal (401, or a
            # 404 for a made-up path): counted per address, and past the limit
            # a 429 and no usage row, so a flood cannot grow the usage table.
            # A valid key from the same address (an office behind one NAT) is
            # never refused by this count.
            state = unauthenticated_hit(client_ip(request))
            if state.exceeded:
                return rate_limited_response(
                    state,
                    f"More than {state.limit} requests without a valid API key "
                    "came from this address this minute; try again in "
                    f"{state.reset_seconds} s.",
                )
        self._record(request, response, started)
        return response

    @staticmethod
    def _as_problem(response):
        status = response.status_code
        detail = {
            404: "There is no such operation; see /api/v1/docs.",
            405: "This operation does not take that method.",
        }.get(status, "The request could not be served.")
        if status == 400:
            detail = (
                "A value in the request is not valid (for example a NUL character)."
            )
        replaced = problem(status, "http_" + str(status), detail)
        for header in ("Allow", "Retry-After"):
            if header in response:
                replaced[header] = response[header]
        return replaced

    @staticmethod
    def _record(request, response, started) -> None:
        api_key = getattr(request, "api_key", None)
        try:
            api_usage_record(
                user=api_key.user if api_key else None,
                endpoint=request.path[:200],
                method=request.method or "",
                status_code=response.status_code,
                duration_ms=int((time.monotonic() - started) * 1000),
                ip_address=client_ip(request),
                user_agent=user_agent(request),
                key_prefix=api_key.prefix if api_key else "",
            )
        except DatabaseError:
            # Metering must never turn an answer into an error (database outage).
            logger.warning("API usage not recorded for %s", request.path)
