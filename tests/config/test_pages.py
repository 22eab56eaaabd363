import pytest

pytestmark = pytest.mark.django_db


def test_landing_page_renders_for_visitors(client):
    response = client.get("/")

    assert response.status_code == 200
    assert b"Sign in" in response.content
    assert b"/static/vendor/pico/pico.min.css" in response.content


def test_landing_page_shows_signed_in_state(user_client, user):
    response = user_client.get("/")

    assert response.status_code == 200
    assert user.display_name.encode() in response.content
    assert b"Sign out" in response.content


def test_unknown_page_gets_the_friendly_404(client):
    response = client.get("/no/such/page/")

    assert response.status_code == 404
    assert b"Page not found" in response.content


def test_server_error_page_renders_without_context(rf):
    from django.urls import get_resolver

    server_error = get_resolver().resolve_error_handler(500)  # the one in use
    response = server_error(rf.get("/"))

    assert response.status_code == 500
    assert b"Something went wrong" in response.content
