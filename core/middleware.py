import logging
import sys

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError

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
