"""Around every /api/v1/ request: one APIUsage row (success, refusal or error),
the RateLimit-* headers, and problem details instead of any HTML page that a
layer below answered with (Django's 404/405, the 400 for NUL bytes, the 503
during a database outage)."""

from __future__ import annotations

import logging
import re
import time
from functools import cache

from django.conf import settings
from django.db import DatabaseError

from api.problems import PROBLEM_CONTENT_TYPE, problem
from core.services import client_ip
from searches.services import api_usage_record, user_agent

logger = logging.getLogger(__name__)

# Documentation (the OpenAPI document, /docs and its assets) is not a call of
# the API: not metered.
UNMETERED = ("openapi.json", "docs")


@cache
def _operations() -> list[tuple[re.Pattern, str, frozenset[str]]]:
    """(path regex, method, query parameter names) of every operation, read
    from the API's own OpenAPI document once per process."""
    from api.v1 import api

    document = api.get_openapi_schema(path_prefix=settings.API_V1_PREFIX.rstrip("/"))
    operations = []
    for path, item in document["paths"].items():
        regex = re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$")
        for method, operation in item.items():
            names = frozenset(
                p["name"]
                for p in operation.get("parameters", [])
                if p.get("in") == "query"
            )
            operations.append((regex, method.upper(), names))
    return operations


def unknown_query_parameters(request) -> set[str]:
    """Query parameters the operation does not take: refused (422) like an
    unknown body field, so a typo (?limt=5) is an error, not silently ignored."""
    if not request.GET:
        return set()
    for regex, method, names in _operations():
        if method == request.method and regex.match(request.path):
            return set(request.GET) - names
    return set()


class ApiMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.prefix = settings.API_V1_PREFIX

    def __call__(self, request):
        if not request.path.startswith(self.prefix):
            return self.get_response(request)
        started = time.monotonic()
        unknown = unknown_query_parameters(request)
        if unknown:
            response = problem(
                422,
                "invalid",
                "Unknown query parameters: " + ", ".join(sorted(unknown)) + ".",
                errors=[
                    {"field": f"query.{name}", "message": "Unknown parameter."}
                    for name in sorted(unknown)
                ],
            )
        else:
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
        if not rest.startswith(UNMETERED):
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
