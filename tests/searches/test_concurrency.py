import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import User
from searches.models import SearchHistory
from searches.services import AnonymousLimitExceeded, QuotaExceeded, search_run


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_searches_with_five_keywords_left_run_exactly_five():
    user = User.objects.create_user(
        "racer@example.com",
        keyword_searches_this_month=295,
        monthly_reset_at=timezone.now() + dt.timedelta(days=5),
    )
    barrier = threading.Barrier(20)
    outcomes = []
    lock = threading.Lock()

    def worker(i):
        try:
            barrier.wait()
            try:
                search_run(user=user, keywords=f"keyword {i}", ip_address="10.0.0.1")
                result = "ok"
            except QuotaExceeded:
                result = "refused"
            with lock:
                outcomes.append(result)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

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
    barrier = threading.Barrier(10)

    def worker(i):
        try:
            barrier.wait()
            search_run(user=user, keywords=f"kw {i}, other {i}", ip_address="10.0.0.1")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    user.refresh_from_db()
    # One search reset the month; the other nine added to it.
    assert user.keyword_searches_this_month == 20
    assert user.monthly_reset_at > timezone.now()


@pytest.mark.django_db(transaction=True)
def test_concurrent_anonymous_searches_never_exceed_the_daily_allowance(settings):
    settings.KEYWORD_ANON_SEARCHES_PER_DAY = 3
    barrier = threading.Barrier(12)
    outcomes = []
    lock = threading.Lock()

    def worker(i):
        try:
            barrier.wait()
            try:
                search_run(user=None, keywords=f"kw {i}", ip_address="10.9.9.9")
                result = "ok"
            except AnonymousLimitExceeded:
                result = "refused"
            with lock:
                outcomes.append(result)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["ok"] * 3 + ["refused"] * 9
    assert SearchHistory.objects.filter(user=None).count() == 3
