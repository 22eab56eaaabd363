"""Odd query strings, ids and form values on every signed-in page: never a 500."""

import itertools

import pytest

from tests.apps_catalog.factories import AppFactory

pytestmark = pytest.mark.django_db

PAGES = [
    "/",
    "/explore/",
    "/apps/",
    "/search/",
    "/search/saved/",
    "/search/history/",
    "/billing/",
    "/pricing/",
    "/account/",
    "/accounts/login/",
    "/accounts/sessions/",
    "/accounts/3rdparty/",
]
ODD_QUERIES = [
    "page=abc",
    "page=-1",
    "page=99999999999999999999",
    "sort=%00",
    "sort=zzz",
    "q=%00",
    "q=" + "x" * 5000,
    "type=NOPE",
    "cursor=%00garbage",
    "cursor=abc",
    "status=NOPE&priority=%00",
    "keywords=%00",
]


def test_odd_query_strings_and_form_values_never_reach_a_500(user_client, user):
    app = AppFactory(owner=user)
    pages = [
        *PAGES,
        f"/apps/{app.pk}/",
        f"/apps/{app.pk}/requirements/",
        f"/apps/{app.pk}/posts/",
        f"/apps/{app.pk}/monetization/",
        f"/apps/{app.pk}/edit/",
    ]
    errors = []
    for page, query in itertools.product(pages, ODD_QUERIES):
        status = user_client.get(f"{page}?{query}").status_code
        if status >= 500:
            errors.append(("GET", page, query, status))
    for page in pages:
        form = {"keywords": "\x00", "name": "\x00", "page": "x", "email": "\x00"}
        status = user_client.post(page, form).status_code
        if status >= 500:
            errors.append(("POST", page, status))

    assert errors == []


@pytest.mark.parametrize(
    "path",
    ["/apps/%00/", "/search/saved/%00/", "/search/history/%00/", "/search/saved/x/"],
)
def test_malformed_ids_in_urls_are_404(user_client, path):
    assert user_client.get(path).status_code == 404
