"""`manage.py seed`: the staff user and every app's demo, then COPY-based volume
on top, through the registered seeders."""

import dataclasses
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, F, Q

from accounts.models import User
from apps_catalog.models import App, MonetizationModel, Requirement
from core import seeding
from core.seeding import SeedContext, VolumeError, seeder_register
from ops.seed import admin_user_ensure, database_is_empty, seed_demo, seed_volume
from searches.models import APIUsage, SavedSearch, SearchHistory


def _counts():
    return {
        "users": User.objects.count(),
        "apps": App.objects.count(),
        "requirements": Requirement.objects.count(),
        "monetization": MonetizationModel.objects.count(),
        "history": SearchHistory.objects.count(),
        "api": APIUsage.objects.count(),
    }


@pytest.fixture
def registry(monkeypatch):
    """An empty registry for the test (discovery counted as done)."""
    monkeypatch.setattr(seeding, "_registry", {})
    monkeypatch.setattr(seeding, "_discovered", True)
    return seeding._registry


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

    # Running the volume again adds it again; the demo part still adds nothing,
    # though the back-dated volume users are now the oldest.
    saved = SavedSearch.objects.count()
    call_command("seed", "--searches=10", "--no-progress", stdout=StringIO())
    assert SearchHistory.objects.count() == after["history"] + 10
    assert APIUsage.objects.count() == after["api"] + 1
    assert SavedSearch.objects.count() == saved
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


@pytest.mark.django_db(transaction=True)
def test_volume_reports_counts_and_seconds_in_seeder_order():
    result = seed_volume(users=5, apps=5, searches=20, progress=False, seed=3)

    assert list(result.counts) == [
        "users",
        "apps",
        "requirements",
        "monetization models",
        "search history",
        "api usage",
    ]
    assert list(result.seconds) == ["users", "apps", "search history", "api usage"]
    assert result.counts["api usage"] == 2


@pytest.mark.django_db(transaction=True)
def test_volume_without_any_user_is_refused_before_writing():
    with pytest.raises(VolumeError, match="no users to own apps or searches"):
        seed_volume(apps=5, searches=5, progress=False)

    assert not App.objects.exists() and not SearchHistory.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_stale_column_list_fails_before_any_table_is_written(monkeypatch):
    searches = next(s for s in seeding.seeders() if s.name == "searches")
    stale = dataclasses.replace(
        searches,
        copies=((SearchHistory, ("id", "keywords")), *searches.copies[1:]),
    )
    monkeypatch.setitem(seeding._registry, "searches", stale)

    with pytest.raises(RuntimeError, match="columns for searches_searchhistory"):
        seed_volume(users=5, apps=5, progress=False)

    assert not User.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_volume_runs_registered_seeders_in_order_with_one_context(registry):
    calls = []

    def owners_volume(context: SeedContext):
        calls.append(("owners", dict(context.requested)))
        context.owners = ["u1"]

    def rows_volume(context: SeedContext):
        calls.append(("rows", list(context.owners)))
        context.result.counts["rows"] = context.requested["apps"]

    seeder_register(name="rows", order=2, volume=rows_volume, needs_owners=True)
    seeder_register(name="owners", order=1, volume=owners_volume)

    result = seed_volume(apps=4, progress=False)

    assert calls == [
        ("owners", {"users": 0, "apps": 4, "searches": 0}),
        ("rows", ["u1"]),
    ]
    assert result.counts == {"rows": 4}


@pytest.mark.django_db(transaction=True)
def test_a_seeder_needing_owners_is_not_run_without_them(registry):
    ran = []
    seeder_register(name="owners", order=1, volume=lambda context: None)
    seeder_register(
        name="rows", order=2, volume=lambda context: ran.append(1), needs_owners=True
    )

    with pytest.raises(VolumeError, match="add --users"):
        seed_volume(searches=3, progress=False)
    assert ran == []

    seed_volume(users=3, progress=False)  # nothing asked of the owned rows
    assert ran == [1]


@pytest.mark.django_db
def test_seed_demo_runs_every_apps_demo_in_order(settings):
    settings.ADMIN_EMAIL = "staff@example.com"
    summary = seed_demo(stdout=None)

    labels = list(summary)
    assert labels[:2] == ["admin", "demo users"]
    assert labels.index("apps") < labels.index("search history")
    assert labels.index("search history") < labels.index("webhook events")
    assert labels[-2:] == ["feature flags", "system metrics"]
    assert User.objects.get(email="staff@example.com").role == User.Role.ADMIN


@pytest.mark.django_db
def test_admin_user_ensure_promotes_an_existing_user(settings, user):
    settings.ADMIN_EMAIL = user.email.upper()

    assert database_is_empty() is False
    assert admin_user_ensure() == user
    user.refresh_from_db()
    assert user.role == User.Role.ADMIN


@pytest.mark.django_db
def test_seed_command_includes_core_demo_rows():
    out = StringIO()
    call_command("seed", stdout=out)

    assert "feature flags: 3" in out.getvalue()
    assert "Seed complete." in out.getvalue()


@pytest.mark.django_db
def test_if_empty_does_not_seed_a_database_with_users(user):
    out = StringIO()
    call_command("seed", "--if-empty", stdout=out)

    assert "Database already has data; not seeding." in out.getvalue()
    assert User.objects.count() == 1


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
