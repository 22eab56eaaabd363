from core.views import healthz

HEALTHZ_PATHS = frozenset({"/healthz", "/healthz/"})


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
