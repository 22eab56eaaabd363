"""Security headers on every response: Content-Security-Policy and
Permissions-Policy (settings "Security headers"; README "Security headers")."""

from functools import cache

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from django.conf import settings
from django.core.signals import setting_changed
from django.urls import NoReverseMatch, get_urlconf, reverse


def _admin_prefix() -> str | None:
    return _admin_prefix_of(get_urlconf() or settings.ROOT_URLCONF)


@cache
def _admin_prefix_of(urlconf: str) -> str | None:
    try:
        return reverse("admin:index", urlconf=urlconf)
    except NoReverseMatch:
        return None


# The headers django-csp wrote for a site page and for an admin page. Every
# response carries them, and building them (policy parts, then the header
# text, twice: enforced and report-only) was a tenth of a webhook delivery's
# Python; the project uses no nonce and no per-view policy, so they are the
# same every time. A response or request that does use one (a third-party
# view's decorator, ``request.csp_nonce``) is built by django-csp as before.
_HEADERS: dict[bool, dict[str, str]] = {}
_RESPONSE_POLICY_ATTRS = tuple(
    f"_csp_{kind}{suffix}"
    for kind in ("config", "update", "replace", "exempt")
    for suffix in ("", "_ro")
)
_POLICY_SETTINGS = frozenset(
    {
        "CONTENT_SECURITY_POLICY",
        "CONTENT_SECURITY_POLICY_REPORT_ONLY",
        "CONTENT_SECURITY_POLICY_ADMIN_UPDATE",
        "ROOT_URLCONF",
        "DEBUG",
    }
)


def _policy_setting_changed(*, setting, **kwargs) -> None:
    if setting in _POLICY_SETTINGS:
        _HEADERS.clear()
        _admin_prefix_of.cache_clear()


setting_changed.connect(_policy_setting_changed, dispatch_uid="core.security.csp")


def _excludes_paths() -> bool:
    return any(
        (getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES")
        for name in ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY")
    )


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware with ``CONTENT_SECURITY_POLICY_ADMIN_UPDATE`` added
    to the policy of the Django admin's pages, and of no other page.

    The admin is a URL prefix rather than views this project writes, so
    django-csp's per-view decorators cannot reach it; ``get_policy_parts`` is the
    extension point django-csp documents for such cases.
    """

    def process_response(self, request, response):
        if (
            settings.DEBUG
            or getattr(request, "_csp_nonce", None) is not None
            or HEADER in response
            or HEADER_REPORT_ONLY in response
            or any(hasattr(response, name) for name in _RESPONSE_POLICY_ATTRS)
            or _excludes_paths()
        ):
            return super().process_response(request, response)
        prefix = _admin_prefix()
        admin = bool(prefix and request.path_info.startswith(prefix))
        headers = _HEADERS.get(admin)
        if headers is None:
            response = super().process_response(request, response)
            _HEADERS[admin] = {
                name: response[name]
                for name in (HEADER, HEADER_REPORT_ONLY)
                if name in response
            }
            return response
        for name, value in headers.items():
            response[name] = value
        # As django-csp does once the header is written: a nonce asked for
        # later could not be in it.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response

    def get_policy_parts(self, request, response, report_only=False):
        parts = super().get_policy_parts(request, response, report_only=report_only)
        extra = getattr(settings, "CONTENT_SECURITY_POLICY_ADMIN_UPDATE", None)
        prefix = _admin_prefix() if extra else None
        if prefix and request.path_info.startswith(prefix):
            update = {key: list(value) for key, value in (parts.update or {}).items()}
            for directive, sources in extra.items():
                update[directive] = [*update.get(directive, []), *sources]
            parts.update = update
        return parts


def permissions_policy_header(policy: dict[str, list[str]]) -> str:
    """``{"camera": [], "usb": ["self"]}`` as ``camera=(), usb=(self)``: the
    header's structured-field syntax, with origins quoted and ``self``/``*`` not."""
    items = []
    for feature, allowlist in policy.items():
        members = " ".join(
            origin if origin in ("self", "*") else f'"{origin}"' for origin in allowlist
        )
        items.append(f"{feature}=({members})")
    return ", ".join(items)


class PermissionsPolicyMiddleware:
    """Send ``PERMISSIONS_POLICY`` as the Permissions-Policy header unless the
    view set one of its own."""

    def __init__(self, get_response):
        self.get_response = get_response
        policy = getattr(settings, "PERMISSIONS_POLICY", None) or {}
        self.header = permissions_policy_header(policy) if policy else ""

    def __call__(self, request):
        response = self.get_response(request)
        if self.header and "Permissions-Policy" not in response:
            response["Permissions-Policy"] = self.header
        return response
