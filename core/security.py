"""Security headers on every response: Content-Security-Policy and
Permissions-Policy (settings "Security headers"; README "Security headers")."""

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.urls import NoReverseMatch, reverse


def _admin_prefix() -> str | None:
    try:
        return reverse("admin:index")
    except NoReverseMatch:
        return None


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware with ``CONTENT_SECURITY_POLICY_ADMIN_UPDATE`` added
    to the policy of the Django admin's pages, and of no other page.

    The admin is a URL prefix rather than views this project writes, so
    django-csp's per-view decorators cannot reach it; ``get_policy_parts`` is the
    extension point django-csp documents for such cases.
    """

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
