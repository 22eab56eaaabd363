import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import User
from searches.models import SearchHistory
from searches.services import AnonymousLimitExceeded, QuotaExceeded, search_run
from tests.concurrency import run_at_once


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_searches_with_five_keywords_left_run_exactly_five():
    user = User.objects.create_user(
        "racer@example.com",
        keyword_searches_this_month=295,
        monthly_reset_at=timezone.now() + dt.timedelta(days=5),
    )

    def search(i):
        try:
            search_run(user=user, keywords=f"keyword {i}", ip_address="10.0.0.1")
        except QuotaExceeded:
            return "refused"
        return "ok"

    outcomes = run_at_once(20, search)

    assert sorted(outcomes) == ["ok"] * 5 + ["refused"] * 15
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 300
    assert SearchHistory.objects.filter(user=user).count() == 5


@pytest.mark.django_db(transaction=True)
def test_concurrent_searches_across_the_month_boundary_reset_once():
    user = User.objects.create_user(
        "boundary@example.com",
        keyword_searches_this_month=300,
        monthly_reset_at=timezone.now() - dt.timedelta(seconds=1),
    )
    run_at_once(
        10,
        lambda i: search_run(
            user=user, keywords=f"kw {i}, other {i}", ip_address="10.0.0.1"
        ),
    )

    user.refresh_from_db()
    # One search reset the month; the other nine added to it.
    assert user.keyword_searches_this_month == 20
    assert user.monthly_reset_at > timezone.now()


@pytest.mark.django_db(transaction=True)
def test_concurrent_anonymous_searches_never_exceed_the_daily_allowance(settings):
    settings.KEYWORD_ANON_SEARCHES_PER_DAY = 3

    def search(i):
        try:
            search_run(user=None, keywords=f"kw {i}", ip_address="10.9.9.9")
        except AnonymousLimitExceeded:
            return "refused"
        return "ok"

    outcomes = run_at_once(12, search)

    assert sorted(outcomes) == ["ok"] * 3 + ["refused"] * 9
    assert SearchHistory.objects.filter(user=None).count() == 3
