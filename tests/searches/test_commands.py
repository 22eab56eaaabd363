import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError
from django.utils import timezone

from tests.accounts.factories import UserFactory


@pytest.mark.django_db
def test_reset_monthly_usage_resets_due_users_and_prints_a_summary(capsys):
    now = timezone.now()
    due = [
        UserFactory(
            keyword_searches_this_month=10, monthly_reset_at=now - dt.timedelta(days=1)
        )
        for _ in range(2)
    ]
    later = UserFactory(
        keyword_searches_this_month=10, monthly_reset_at=now + dt.timedelta(days=1)
    )
    call_command("reset_monthly_usage")
    assert "Reset the monthly keyword usage of 2 users." in capsys.readouterr().out
    for user in due:
        user.refresh_from_db()
        assert user.keyword_searches_this_month == 0
        assert user.monthly_reset_at > now
    later.refresh_from_db()
    assert later.keyword_searches_this_month == 10


@pytest.mark.django_db
def test_reset_monthly_usage_fails_loudly(monkeypatch):
    def broken(**kwargs):
        raise DatabaseError("database is down")

    monkeypatch.setattr(
        "searches.management.commands.reset_monthly_usage.usage_reset_monthly", broken
    )
    with pytest.raises(CommandError, match="database is down"):
        call_command("reset_monthly_usage")
