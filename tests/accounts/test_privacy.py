"""Privacy: nobody but its owner and staff sees a user's email address; the
public identity is a display name, asked once after the first sign-in; account
deletion leaves no IP address or user agent on the rows it keeps."""

from urllib.parse import quote

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import PUBLIC_NAME_FALLBACK, User
from apps_catalog import services as catalog_services
from searches.models import APIUsage, SearchHistory
from tests.accounts.factories import UserFactory
from tests.accounts.helpers import last_link, request_link
from tests.apps_catalog.factories import AppFactory, PostFactory
from tests.searches.factories import APIUsageFactory, SearchHistoryFactory

pytestmark = pytest.mark.django_db

SECRET_LOCAL_PART = "zephyrine.quillfeather"


@pytest.fixture
def nameless():
    """An owner who never typed a name: the pages had only their email."""
    return UserFactory(email=f"{SECRET_LOCAL_PART}@example.com", name="")


def _public_pages(nameless) -> list[str]:
    app = AppFactory(owner=nameless, name="Quiet Garden")
    PostFactory(app=app, author=nameless, title="Launch notes")
    fork = catalog_services.app_fork(app=app, actor=nameless)
    catalog_services.app_update(
        app=fork, actor=nameless, name="Quiet Garden Two", status="ACTIVE"
    )
    return [
        "/",
        reverse("explore"),
        reverse("app_detail", args=[app.pk]),
        reverse("app_detail", args=[fork.pk]),
        reverse("post_list", args=[app.pk]),
    ]


@pytest.mark.parametrize("viewer", ["anonymous", "other user"])
def test_public_pages_never_show_an_unnamed_owners_email(nameless, viewer):
    client = Client()
    if viewer == "other user":
        client.force_login(UserFactory())

    for url in _public_pages(nameless):
        content = client.get(url).content.decode()

        assert "Quiet Garden" in content, url
        assert SECRET_LOCAL_PART not in content, url
        assert PUBLIC_NAME_FALLBACK in content, url


def test_public_pages_show_the_display_name_instead(client, nameless):
    nameless.name = "Zed Q."
    nameless.save()

    for url in _public_pages(nameless):
        content = client.get(url).content.decode()

        assert "Zed Q." in content, url
        assert SECRET_LOCAL_PART not in content, url


def test_public_name_is_the_name_then_first_and_last_then_a_neutral_fallback():
    user = User(email="ada.lovelace@example.com")
    assert user.public_name == PUBLIC_NAME_FALLBACK
    assert "ada" not in user.public_name.lower()

    user.first_name, user.last_name = "Ada", "Lovelace"
    assert user.public_name == "Ada Lovelace"

    user.name = "Countess"
    assert user.public_name == "Countess"


def test_own_menu_still_shows_the_email_to_its_owner(client, nameless):
    client.force_login(nameless)

    assert SECRET_LOCAL_PART in client.get("/").content.decode()


def test_explore_never_loads_the_owners_email(client, nameless):
    AppFactory(owner=nameless)

    with CaptureQueriesContext(connection) as ctx:
        client.get(reverse("explore"))

    owner_queries = [
        q["sql"] for q in ctx.captured_queries if "accounts_user" in q["sql"]
    ]
    assert owner_queries
    assert not any('"email"' in sql for sql in owner_queries)


# --- the display name, asked once ---------------------------------------------------


def _sign_up(client, email, next_url=""):
    path = "/accounts/login/" + (f"?next={quote(next_url)}" if next_url else "")
    request_link(client, email, path=path)
    return client.post(last_link(to=email))


def test_magic_link_sign_up_asks_for_a_display_name_then_goes_on(client):
    response = _sign_up(client, "new.person@example.com", next_url="/apps/")

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_name')}?next=%2Fapps%2F"
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert b"What should we call you?" in page.content
    assert b'href="/apps/"' in page.content  # skip goes straight on

    saved = client.post(reverse("account_name"), {"name": "Nia", "next": "/apps/"})

    assert saved.status_code == 302 and saved["Location"] == "/apps/"
    assert User.objects.get(email="new.person@example.com").name == "Nia"


def test_the_name_is_asked_only_after_the_sign_in_that_made_the_account(client):
    _sign_up(client, "skipper@example.com")
    client.logout()

    request_link(client, "skipper@example.com")
    response = client.post(last_link(to="skipper@example.com"))

    assert response["Location"] == "/"
    assert User.objects.get(email="skipper@example.com").name == ""


def test_name_page_refuses_an_email_address_as_name(user_client, user):
    response = user_client.post(
        reverse("account_name"), {"name": f"me {user.email}", "next": "/"}
    )

    assert response.status_code == 400
    assert b"not an email address" in response.content
    user.refresh_from_db()
    assert user.email not in user.name


def test_name_page_keeps_next_on_this_site(user_client):
    response = user_client.post(
        reverse("account_name"), {"name": "Nia", "next": "https://evil.example/"}
    )

    assert response["Location"] == "/"


def test_account_page_edits_the_display_name(user_client, user):
    user.name = ""
    user.first_name = user.last_name = ""
    user.save()

    page = user_client.get("/account/").content.decode()
    assert "Display name" in page
    assert PUBLIC_NAME_FALLBACK in page  # others see you as …

    response = user_client.post(
        "/account/profile/",
        {"name": "Grace H.", "first_name": "", "last_name": "", "image": ""},
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.public_name == "Grace H."


# --- deletion keeps statistics, not addresses --------------------------------------


def test_account_deletion_scrubs_ip_and_user_agent_from_the_rows_it_keeps(
    user_client, user, other_user
):
    SearchHistoryFactory.create_batch(
        2, user=user, ip_address="203.0.113.7", user_agent="Firefox/1"
    )
    APIUsageFactory(user=user, ip_address="203.0.113.7", user_agent="curl/8")
    theirs = SearchHistoryFactory(user=other_user, ip_address="198.51.100.1")
    their_call = APIUsageFactory(user=other_user, ip_address="198.51.100.1")

    response = user_client.post("/account/delete/", {"confirm_email": user.email})

    assert response.status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()
    kept = list(SearchHistory.objects.exclude(pk=theirs.pk))
    assert len(kept) == 2
    assert all(
        (row.user_id, row.ip_address, row.user_agent) == (None, None, "")
        for row in kept
    )
    call = APIUsage.objects.exclude(pk=their_call.pk).get()
    assert (call.user_id, call.ip_address, call.user_agent) == (None, None, "")
    theirs.refresh_from_db()
    their_call.refresh_from_db()
    assert theirs.ip_address == "198.51.100.1" and theirs.user_id == other_user.pk
    assert their_call.ip_address == "198.51.100.1"


def test_anonymising_takes_one_update_per_table(user):
    from searches.services import user_activity_anonymise

    SearchHistoryFactory.create_batch(3, user=user)
    APIUsageFactory.create_batch(3, user=user)

    with CaptureQueriesContext(connection) as ctx:
        counts = user_activity_anonymise(user=user)

    assert counts == {"search history": 3, "api usage": 3}
    assert len(ctx.captured_queries) == 2
