"""accounts.middleware.UserSessionActivityMiddleware: activity written at most once
per interval per browser, and at once when the browser's IP or user agent changes."""

import pytest
from allauth.usersessions.models import UserSession
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.middleware import ACTIVITY_KEY

pytestmark = pytest.mark.django_db


def _usersession_writes(client, path="/account/", **extra):
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path, **extra).status_code == 200
    return [
        q["sql"]
        for q in captured.captured_queries
        if "usersessions_usersession" in q["sql"] and q["sql"].startswith("UPDATE")
    ]


def test_activity_is_written_once_per_interval(user, settings):
    client = Client(HTTP_USER_AGENT="Firefox", REMOTE_ADDR="10.0.0.1")
    client.force_login(user)
    client.get("/account/")
    assert UserSession.objects.filter(user=user).count() == 1
    first_seen = UserSession.objects.get(user=user).last_seen_at

    assert _usersession_writes(client) == []
    assert UserSession.objects.get(user=user).last_seen_at == first_seen

    # Past the interval the row is written again.
    session = client.session
    session[ACTIVITY_KEY] = [0, *session[ACTIVITY_KEY][1:]]
    session.save()
    assert len(_usersession_writes(client)) == 1
    assert UserSession.objects.get(user=user).last_seen_at > first_seen


def test_a_new_ip_or_user_agent_is_recorded_at_once(user):
    client = Client(HTTP_USER_AGENT="Firefox", REMOTE_ADDR="10.0.0.1")
    client.force_login(user)
    client.get("/account/")

    assert len(_usersession_writes(client, REMOTE_ADDR="10.0.0.9")) == 1
    assert UserSession.objects.get(user=user).ip == "10.0.0.9"
    assert len(_usersession_writes(client, HTTP_USER_AGENT="Chrome")) == 1
    assert UserSession.objects.get(user=user).user_agent == "Chrome"
