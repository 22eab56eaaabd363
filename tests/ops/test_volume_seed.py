"""`seed --users/--apps/--searches`: COPY-based volume on top of the demo data."""

import datetime as dt
import random
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, F, Q
from django.utils import timezone

from accounts.models import User
from apps_catalog.models import App, MonetizationModel, Requirement
from ops.volume_seed import (
    HISTORY_DAYS,
    Timeline,
    VolumeError,
    seed_volume,
    volume_count_parse,
)
from searches.models import APIUsage, SearchHistory


def _counts():
    return {
        "users": User.objects.count(),
        "apps": App.objects.count(),
        "requirements": Requirement.objects.count(),
        "monetization": MonetizationModel.objects.count(),
        "history": SearchHistory.objects.count(),
        "api": APIUsage.objects.count(),
    }


@pytest.mark.django_db(transaction=True)
def test_volume_adds_exact_counts_on_top_of_idempotent_demo():
    call_command("seed", stdout=StringIO())
    demo = _counts()
    call_command("seed", stdout=StringIO())
    assert _counts() == demo  # the demo part adds nothing the second time

    out = StringIO()
    call_command(
        "seed",
        "--users=40",
        "--apps=300",
        "--searches=1000",
        "--batch-size=128",
        "--no-progress",
        stdout=out,
    )
    after = _counts()
    assert after["users"] == demo["users"] + 40
    assert after["apps"] == demo["apps"] + 300
    assert after["history"] == demo["history"] + 1000
    assert after["api"] == demo["api"] + 100
    assert after["requirements"] > demo["requirements"]
    assert after["monetization"] > demo["monetization"]
    assert "added search history: 1000" in out.getvalue()

    # Running the volume again adds it again; the demo part still adds nothing.
    call_command("seed", "--searches=10", "--no-progress", stdout=StringIO())
    assert SearchHistory.objects.count() == after["history"] + 10
    assert User.objects.count() == after["users"]


@pytest.mark.django_db(transaction=True)
def test_volume_rows_are_coherent():
    call_command("seed", stdout=StringIO())
    seed_volume(users=30, apps=400, searches=600, batch_size=150, progress=False)

    volume_users = User.objects.filter(email__endswith="@volume.example.com")
    assert set(volume_users.values_list("tier", flat=True)) <= {
        "FREE",
        "PRO",
        "ENTERPRISE",
    }
    # Foreign keys are enforced by the database; check no orphan slipped in.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM apps_catalog_app a "
            "LEFT JOIN accounts_user u ON u.id = a.owner_id WHERE u.id IS NULL"
        )
        assert cursor.fetchone()[0] == 0
    volume_user_ids = set(volume_users.values_list("id", flat=True))
    assert (
        set(
            App.objects.filter(name__regex=r" [a-z][a-z0-9]{5}$").values_list(
                "owner_id", flat=True
            )
        )
        <= volume_user_ids
    )

    # Fork chains exist and every stored fork_count matches the live forks.
    assert App.objects.filter(forked_from__forked_from__isnull=False).exists()
    wrong = App.objects.annotate(
        live=Count("forks", filter=~Q(forks__status="DELETED"))
    ).exclude(fork_count=F("live"))
    assert not wrong.exists()

    history = SearchHistory.objects.filter(user_agent__endswith="volume-seed")
    assert history.count() == 600
    assert history.filter(user__isnull=True).exists()
    assert history.filter(user__isnull=False).exists()
    assert history.filter(provider="dataforseo").exists()
    assert all(
        len(h.keywords) == h.keyword_count
        for h in history.only("keywords", "keyword_count")
    )
    span = history.order_by("searched_at").values_list("searched_at", flat=True)
    assert (span.last() - span.first()).days > 30


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "", True, "100000001", 10**20])
def test_bad_numbers_are_refused(value):
    with pytest.raises(VolumeError):
        volume_count_parse(value, name="users")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["--users=-5"], "cannot be negative"),
        (["--apps=ten"], "must be a whole number"),
        (["--searches=2.5"], "must be a whole number"),
        (["--batch-size=0"], "at least 1"),
        (["--searches=99999999999999999999"], "more than this command adds"),
    ],
)
def test_command_refuses_bad_numbers(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("seed", *args, stdout=StringIO())
    assert not SearchHistory.objects.exists()


def test_timeline_hands_out_consecutive_slices_oldest_first():
    now = timezone.now()
    timeline = Timeline(10, rng=random.Random(1), now=now)

    first, second = timeline.moments(4), timeline.moments(6)

    assert first == sorted(first) and second == sorted(second)
    assert max(first) <= min(second)  # the second batch is newer throughout
    assert min(first) >= now - dt.timedelta(days=HISTORY_DAYS)
    assert max(second) <= now
