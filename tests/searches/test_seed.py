"""Demo and volume search rows for `manage.py seed`."""

import datetime as dt
import random

import pytest
from django.utils import timezone

from core.seeding import HISTORY_DAYS, SeedContext, Timeline, columns_check, seeders
from searches import seed
from searches.models import APIUsage, SavedSearch, SearchHistory
from tests.accounts.factories import UserFactory


@pytest.mark.django_db
def test_demo_gives_each_demo_user_searches_once(admin_user):
    UserFactory()

    first = seed.seed_demo(admin=admin_user, stdout=None)
    second = seed.seed_demo(admin=admin_user, stdout=None)

    assert first == {"saved searches": 6, "search history": 60, "api usage": 20}
    assert second == {"saved searches": 0, "search history": 0, "api usage": 0}
    assert SavedSearch.objects.filter(user=admin_user).count() == 3


def test_demo_users_skip_inactive_and_volume_users(db, admin_user):
    UserFactory(is_active=False)
    UserFactory(
        email="old@volume.example.com",
        created_at=timezone.now() - dt.timedelta(days=90),
    )
    active = UserFactory()

    assert seed._demo_users(admin_user) == [admin_user, active]


def test_keyword_pool_holds_sorted_distinct_keyword_lists():
    pool = seed.keyword_pool(random.Random(2))

    assert len(pool) == seed.KEYWORD_POOL_SIZE
    assert all(1 <= len(keywords) <= 8 for keywords in pool)
    assert all(keywords == sorted(set(keywords)) for keywords in pool)


def test_history_rows_are_coherent_skewed_and_partly_anonymous():
    rng = random.Random(3)
    now = timezone.now()
    users = [f"user{i}" for i in range(100)]
    moments = Timeline(5000, rng=rng, now=now).moments(5000)

    rows = [
        dict(zip(seed.HISTORY_COLUMNS, row, strict=True))
        for row in seed.history_rows(
            moments, users=users, rng=rng, pool=seed.keyword_pool(rng)
        )
    ]

    assert columns_check(SearchHistory, seed.HISTORY_COLUMNS)
    assert len(rows) == 5000
    assert all(r["keyword_count"] == len(r["keywords"]) for r in rows)
    assert all(r["avg_volume"] == r["total_volume"] // r["keyword_count"] for r in rows)
    assert [r["searched_at"] for r in rows] == moments
    anonymous = sum(r["user_id"] is None for r in rows) / 5000
    assert 0.12 < anonymous < 0.18
    providers = {r["provider"] for r in rows}
    assert providers == {"sample", "dataforseo"}
    # rng**3 skew: the first tenth of the users own most signed-in rows.
    signed_in = [r["user_id"] for r in rows if r["user_id"]]
    heavy = sum(int(u[4:]) < 10 for u in signed_in) / len(signed_in)
    assert heavy > 0.4


@pytest.mark.django_db
def test_volume_adds_history_and_a_tenth_as_many_api_calls_in_time_order(user):
    context = SeedContext(
        rng=random.Random(5),
        now=timezone.now(),
        batch_size=64,
        progress=False,
        requested={"searches": 300},
        owners=[user.pk],
    )

    seed.seed_volume(context)

    assert context.result.counts == {"search history": 300, "api usage": 30}
    assert list(context.result.seconds) == ["search history", "api usage"]
    history = SearchHistory.objects.filter(user_agent__endswith="volume-seed")
    assert history.count() == 300
    assert set(history.values_list("user", flat=True)) == {user.pk, None}
    assert APIUsage.objects.filter(user_agent__endswith="volume-seed").count() == 30
    oldest = history.order_by("searched_at").first().searched_at
    assert oldest >= context.now - dt.timedelta(days=HISTORY_DAYS)
    assert columns_check(APIUsage, seed.API_USAGE_COLUMNS)


def test_searches_seeder_needs_owners_and_checks_both_tables():
    seeder = next(s for s in seeders() if s.name == "searches")

    assert seeder.needs_owners
    assert [model for model, _ in seeder.copies] == [SearchHistory, APIUsage]
