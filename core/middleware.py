import logging
import sys

from django.core.exceptions import ValidationError
from django.core.signals import got_request_exception
from django.db import DataError, InterfaceError, OperationalError
from django.http import HttpResponseBadRequest
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse

from core.views import database_unavailable, healthz

logger = logging.getLogger(__name__)

HEALTHZ_PATHS = frozenset({"/healthz", "/healthz/"})

# What psycopg raises (wrapped by Django) when the server is down, restarting,
# refusing connections or dropped the one in use.
DATABASE_DOWN_ERRORS = (OperationalError, InterfaceError)
# Request attribute set when an unhandled database-down error produced its 500.
DOWN_MARK = "_database_unavailable"


class HealthCheckMiddleware:
    """Answer /healthz before any other middleware runs.

    Load balancers probe by IP address and without cookies; answering here skips
    the host check, HTTPS redirect, sessions and authentication, so a probe never
    touches session storage and never fails on an unlisted Host header.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path in HEALTHZ_PATHS and request.method in ("GET", "HEAD"):
            return healthz(request)
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """While the database cannot be reached, answer 503 with ``Retry-After``
    (a page, or JSON for API calls) instead of a bare 500.

    An error raised by the view (or while rendering its response) arrives in
    ``process_exception``, which answers and logs it once. An error raised in a
    middleware below this one (the session read by authentication, a session
    save) has already been turned into a 500 response, and logged, by Django's
    handler around that middleware; Django's ``got_request_exception`` signal,
    sent while that exception is handled, marks the request so the 500 is
    replaced here. Place it above every middleware that may touch the database.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        got_request_exception.connect(
            _note_database_down, dispatch_uid="core.middleware.database_down"
        )

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, DOWN_MARK, False):
            # Django logged the error with its traceback ("Internal Server
            # Error"): the 503 that replaces it is not logged a second time.
            return _logged(database_unavailable(request))
        return response

    def process_exception(self, request, exception):
        if not isinstance(exception, DATABASE_DOWN_ERRORS):
            return None
        logger.error(
            "Database unavailable, answered 503 to %s %s: %s: %s",
            request.method,
            request.path,
            exception.__class__.__name__,
            _first_line(exception),
        )
        return _logged(database_unavailable(request))


def _note_database_down(sender, request=None, **kwargs):
    # Sent from inside Django's exception handling: the exception is current.
    if request is not None and isinstance(sys.exc_info()[1], DATABASE_DOWN_ERRORS):
        setattr(request, DOWN_MARK, True)


def _logged(response):
    # django.utils.log.log_response skips a response marked so; otherwise
    # Django's handler adds a "Service Unavailable: <path>" line for each 503.
    response._has_been_logged = True
    return response


def _first_line(exception: BaseException) -> str:
    text = str(exception).strip()
    return text.splitlines()[0] if text else ""


class BadInputMiddleware:
    """Answer 400 to what no view can use and PostgreSQL cannot even look up.

    - A NUL byte in a query-string or form value: ``text`` cannot hold one, so
      any filter or lookup with it is a ``DataError`` (a 500) wherever it lands,
      Django's admin included.
    - In the admin, a value the view cannot turn into a key (``int("abc")`` for
      the selected rows of an integer-keyed model): ``process_exception`` turns
      the ``ValueError`` / ``ValidationError`` / ``DataError`` Django's admin
      raises for it into a 400. Staff only, and CSRF-protected, but still a
      page that must not answer 500.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # URL-encoded forms only: parsing them caches the body, which views
        # that read request.body themselves (the JSON API) still can; a
        # multipart body would be consumed as a stream.
        if _has_nul(request.GET) or (
            request.method == "POST"
            and request.content_type == "application/x-www-form-urlencoded"
            and _has_nul(request.POST)
        ):
            return _bad_request("A value in the request holds a NUL character.")
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, ValueError | ValidationError | DataError):
            return None
        try:
            admin_prefix = reverse("admin:index")
        except NoReverseMatch:
            return None
        if not request.path.startswith(admin_prefix):
            return None
        logger.warning("Bad admin input on %s: %r", request.path, exception)
        return _bad_request("This request holds a value the admin cannot use.")


def _bad_request(detail: str) -> HttpResponseBadRequest:
    """The branded 400 page with ``detail``. Rendered without the request: this
    middleware answers before sessions and authentication have run."""
    return HttpResponseBadRequest(render_to_string("400.html", {"detail": detail}))


def _has_nul(query) -> bool:
    return any(
        "\x00" in key or any("\x00" in value for value in values)
        for key, values in query.lists()
    )
