"""The API's operations as its own OpenAPI document lists them."""

from __future__ import annotations

import re
from functools import cache

from django.conf import settings


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
    unknown body field, so a typo (?limt=5) is an error, not silently ignored.
    Checked once the key is (api.auth): a caller without one learns nothing
    about the operation's parameters, only that it needs a key (401)."""
    if not request.GET:
        return set()
    for regex, method, names in _operations():
        if method == request.method and regex.match(request.path):
            return set(request.GET) - names
    return set()
