"""Demo and volume users for `manage.py seed`."""

import random
from collections import Counter

import pytest
from allauth.account.models import EmailAddress
from django.utils import timezone

from accounts import seed
from accounts.models import User
from core.seeding import SeedContext, columns_check, seeders
from tests.accounts.factories import UserFactory


@pytest.mark.django_db
def test_demo_users_are_created_once_and_the_admin_email_is_verified(admin_user):
    first = seed.seed_demo(admin=admin_user, stdout=None)
    second = seed.seed_demo(admin=admin_user, stdout=None)

    assert first == {"demo users": len(seed.DEMO_USERS)}
    assert second == {"demo users": 0}
    assert User.objects.filter(email__startswith="demo-").count() == len(
        seed.DEMO_USERS
    )
    admin_user.refresh_from_db()
    assert admin_user.email_verified_at is not None
    assert EmailAddress.objects.get(user=admin_user).verified


def test_user_rows_fill_every_column_with_tiers_in_proportion():
    now = timezone.now()
    rows = seed.user_rows(2000, rng=random.Random(4), now=now)

    assert columns_check(User, seed.USER_COLUMNS) == seed.USER_COLUMNS
    assert {len(row) for row in rows} == {len(seed.USER_COLUMNS)}
    named = [dict(zip(seed.USER_COLUMNS, row, strict=True)) for row in rows]
    tiers = Counter(row["tier"] for row in named)
    assert 0.62 < tiers["FREE"] / 2000 < 0.78
    assert 0.05 < tiers["ENTERPRISE"] / 2000 < 0.15
    assert all(row["email"].endswith("@volume.example.com") for row in named)
    assert all(row["created_at"] <= now for row in named)
    # Paid tiers carry a subscription, free ones none.
    assert all(
        bool(row["stripe_subscription_id"]) == (row["tier"] != "FREE") for row in named
    )


@pytest.mark.django_db
def test_volume_adds_users_and_hands_them_on_as_owners():
    context = SeedContext(
        rng=random.Random(1),
        now=timezone.now(),
        batch_size=7,
        progress=False,
        requested={"users": 20},
    )

    seed.seed_volume(context)

    assert context.result.counts == {"users": 20}
    assert "users" in context.result.seconds
    assert len(context.owners) == 20
    assert set(context.owners) == set(
        User.objects.filter(email__endswith="@volume.example.com").values_list(
            "id", flat=True
        )
    )


@pytest.mark.django_db
def test_volume_without_new_users_falls_back_to_existing_active_users():
    active = [UserFactory(), UserFactory()]
    UserFactory(is_active=False)
    context = SeedContext(
        rng=random.Random(1), now=timezone.now(), progress=False, requested={}
    )

    seed.seed_volume(context)

    assert context.result.counts == {"users": 0}
    assert context.owners == [u.pk for u in active]


def test_accounts_seeder_comes_first_and_checks_the_user_columns():
    first = seeders()[0]

    assert first.name == "accounts"
    assert first.volume is seed.seed_volume
    assert first.copies == ((User, seed.USER_COLUMNS),)
    assert not first.needs_owners
