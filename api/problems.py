"""RFC 9457 problem details: every error the API answers, whatever raised it.

``{"type": "about:blank", "title": <HTTP phrase>, "status": 400,
"detail": <sentence for a person>, "code": <stable slug for a program>,
"errors": [{"field": "body.keywords", "message": "..."}]}`` as
``application/problem+json``; never an HTML page.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from django.core.exceptions import (
    ObjectDoesNotExist,
    PermissionDenied,
    RequestDataTooBig,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from api.ratelimit import RateLimitState

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"


class RateLimited(Exception):
    def __init__(self, state: RateLimitState):
        super().__init__("rate limited")
        self.state = state
        self.detail = (
            f"This key made more than {state.limit} requests this minute; "
            f"try again in {state.reset_seconds} s."
        )


class UnknownQueryParameters(Exception):
    def __init__(self, names: set[str]):
        super().__init__(", ".join(sorted(names)))
        self.names = sorted(names)


class ScopeMissing(Exception):
    def __init__(self, scope: str):
        super().__init__(scope)
        self.scope = scope


class Conflict(Exception):
    """A write made against an older version of a row (optimistic locking)."""

    def __init__(self, detail: str, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


def problem(status: int, code: str, detail: str, **extra) -> JsonResponse:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


def _field(loc) -> str:
    return ".".join(str(part) for part in loc if part != "__root__")


def _validation(request, exc: NinjaValidationError):
    errors = [
        {"field": _field(e.get("loc", ())), "message": e.get("msg", "Invalid value.")}
        for e in exc.errors
    ]
    return problem(
        422,
        "invalid",
        "Some values are missing or not valid; see errors.",
        errors=errors,
    )


# Validation codes that mean "taken by another row", not "malformed".
_CONFLICT_CODES = {"unique", "unique_together"}


def _codes(exc: DjangoValidationError) -> set[str]:
    codes = {exc.code} if getattr(exc, "code", None) else set()
    for error in (
        exc.error_list
        if not hasattr(exc, "error_dict")
        else [e for errors in exc.error_dict.values() for e in errors]
    ):
        if error.code:
            codes.add(error.code)
    return codes


def _django_validation(request, exc: DjangoValidationError):
    codes = _codes(exc)
    if codes & _CONFLICT_CODES or any("unique" in c for c in codes):
        return problem(409, "conflict", " ".join(exc.messages))
    if hasattr(exc, "error_dict"):
        errors = [
            {"field": f"body.{name}", "message": message}
            for name, messages in exc.message_dict.items()
            for message in messages
        ]
        detail = " ".join(e["message"] for e in errors)
    else:
        errors = []
        detail = " ".join(exc.messages)
    return problem(400, "invalid", detail or "The request is not valid.", errors=errors)


def _http_error(request, exc: HttpError):
    status = exc.status_code
    if status == 400:
        reason = getattr(request, "api_body_error", None)
        return problem(400, "invalid_body", reason or str(exc.message))
    return problem(
        status, HTTPStatus(status).phrase.lower().replace(" ", "_"), str(exc)
    )


def _unauthenticated(request, exc):
    response = problem(
        401,
        "not_authenticated",
        "Send a valid API key: Authorization: Bearer lp_live_…. Keys are made on "
        "your account's API keys page; revoked and expired keys are refused.",
    )
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def rate_limited_response(state: RateLimitState, detail: str) -> JsonResponse:
    """429 with ``detail`` and the RateLimit-* and Retry-After headers."""
    response = problem(429, "rate_limited", detail)
    for name, value in state.headers().items():
        response[name] = value
    return response


def _rate_limited(request, exc: RateLimited):
    return rate_limited_response(exc.state, exc.detail)


def _unknown_query_parameters(request, exc: UnknownQueryParameters):
    return problem(
        422,
        "invalid",
        "Unknown query parameters: " + ", ".join(exc.names) + ".",
        errors=[
            {"field": f"query.{name}", "message": "Unknown parameter."}
            for name in exc.names
        ],
    )


def _scope_missing(request, exc: ScopeMissing):
    return problem(
        403,
        "scope_missing",
        f"This key lacks the '{exc.scope}' scope; create a key with it.",
    )


def _forbidden(request, exc):
    return problem(403, "forbidden", str(exc) or "Not allowed.")


def _not_found(request, exc):
    return problem(404, "not_found", "There is nothing here, or it is not yours.")


def _conflict(request, exc: Conflict):
    return problem(409, "conflict", exc.detail, **exc.extra)


def _too_big(request, exc):
    return problem(413, "too_large", "The request body is too large.")


def _server_error(request, exc):
    logger.exception("API error on %s", request.path, exc_info=exc)
    return problem(500, "server_error", "Something went wrong on our side.")


def problems_install(api) -> None:
    """Register every handler on the NinjaAPI ``api`` (most specific first is
    not needed: ninja looks handlers up along the exception's MRO)."""
    for exc_class, handler in (
        (NinjaValidationError, _validation),
        (DjangoValidationError, _django_validation),
        (HttpError, _http_error),
        (AuthenticationError, _unauthenticated),
        (RateLimited, _rate_limited),
        (UnknownQueryParameters, _unknown_query_parameters),
        (ScopeMissing, _scope_missing),
        (PermissionDenied, _forbidden),
        (Http404, _not_found),
        (ObjectDoesNotExist, _not_found),
        (Conflict, _conflict),
        (RequestDataTooBig, _too_big),
        (Exception, _server_error),
    ):
        api.add_exception_handler(exc_class, handler)
