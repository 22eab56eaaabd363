"""core.security: the CSP headers, written once per kind of page, are exactly
what django-csp builds for each response."""

import pytest
from csp.constants import HEADER
from csp.middleware import CSPMiddleware
from django.http import HttpResponse
from django.test import RequestFactory

from core import security

pytestmark = pytest.mark.django_db


def _built_by_django_csp(path: str) -> str:
    request = RequestFactory().get(path)
    middleware = security.ContentSecurityPolicyMiddleware(lambda r: HttpResponse())
    # django-csp's own process_response, past this project's shortcut.
    return CSPMiddleware.process_response(middleware, request, HttpResponse())[HEADER]


@pytest.mark.parametrize("path", ["/explore/", "/admin/apps_catalog/app/"])
def test_each_response_gets_the_header_django_csp_builds(client, admin_client, path):
    security._HEADERS.clear()
    browser = admin_client if path.startswith("/admin/") else client
    expected = _built_by_django_csp(path)

    first = browser.get(path)
    admin = path.startswith("/admin/")
    assert set(security._HEADERS) == {admin}  # remembered for this kind of page
    second = browser.get(path)  # from the remembered headers

    assert first[HEADER] == second[HEADER] == expected
    admin_only = "style-src-attr 'unsafe-inline'"
    assert (admin_only in expected) == path.startswith("/admin/")


def test_a_changed_policy_is_not_served_from_memory(client, settings):
    client.get("/explore/")
    policy = {**settings.CONTENT_SECURITY_POLICY}
    directives = {**policy["DIRECTIVES"], "img-src": ["'self'", "example.org"]}
    policy["DIRECTIVES"] = directives

    settings.CONTENT_SECURITY_POLICY = policy

    assert "example.org" in client.get("/explore/")[HEADER]


def test_a_view_with_its_own_policy_keeps_it(rf):
    request = rf.get("/explore/")
    response = HttpResponse()
    response._csp_update = {"img-src": ["cdn.example.org"]}
    middleware = security.ContentSecurityPolicyMiddleware(lambda r: response)
    middleware.process_request(request)

    header = middleware.process_response(request, response)[HEADER]

    assert "cdn.example.org" in header
