import io
import random
from collections import Counter

import pytest
from django.db.models import Count, F, Q
from django.utils import timezone

from apps_catalog import seed
from apps_catalog.models import App, MonetizationModel, Post, Requirement
from apps_catalog.selectors import app_fork_tree_nodes
from core.seeding import SeedContext, columns_check, seeders

pytestmark = pytest.mark.django_db


def test_seed_creates_forks_several_levels_deep_and_every_monetization_type(
    admin_user,
):
    counts = seed.seed_demo(admin=admin_user, stdout=io.StringIO())

    root = App.objects.get(domain="habits.example.com")
    depths = [node.tree_depth for node in app_fork_tree_nodes(app=root)]
    assert max(depths) >= 3
    assert set(MonetizationModel.objects.values_list("type", flat=True)) == set(
        MonetizationModel.Type.values
    )
    assert {"DRAFT", "ACTIVE", "ARCHIVED"} <= set(
        App.objects.values_list("status", flat=True)
    )
    assert Requirement.objects.exists() and Post.objects.exists()
    assert counts["apps"] == App.objects.count()
    assert counts["requirements"] == Requirement.objects.count()
    assert counts["monetization models"] == MonetizationModel.objects.count()
    assert root.fork_count == 2


def test_seed_is_idempotent(admin_user):
    seed.seed_demo(admin=admin_user, stdout=None)
    before = (
        App.objects.count(),
        Requirement.objects.count(),
        MonetizationModel.objects.count(),
        Post.objects.count(),
    )

    counts = seed.seed_demo(admin=admin_user, stdout=None)

    assert set(counts.values()) == {0}
    assert before == (
        App.objects.count(),
        Requirement.objects.count(),
        MonetizationModel.objects.count(),
        Post.objects.count(),
    )


def test_every_catalog_page_renders_for_seeded_owners_and_visitors(client, admin_user):
    from django.urls import reverse

    seed.seed_demo(admin=admin_user, stdout=None)

    for app in App.objects.exclude(status=App.Status.DELETED).select_related("owner"):
        client.force_login(app.owner)
        urls = [
            reverse(name, args=[app.pk])
            for name in (
                "app_detail",
                "app_edit",
                "app_archive",
                "app_delete",
                "app_fork",
                "requirement_board",
                "monetization_editor",
                "post_list",
            )
        ]
        urls += [
            reverse("requirement_edit", args=[app.pk, r.pk])
            for r in app.requirements.all()
        ]
        urls += [
            reverse("monetization_edit", args=[app.pk, m.pk])
            for m in app.monetization_models.all()
        ]
        urls += [reverse("post_edit", args=[app.pk, p.pk]) for p in app.posts.all()]
        for url in [*urls, reverse("my_apps"), reverse("explore"), "/"]:
            assert client.get(url).status_code == 200, url
        client.logout()
        expected = 200 if app.status == App.Status.ACTIVE else 404
        assert client.get(app.get_absolute_url()).status_code == expected


# ---------------------------------------------------------------------------
# Volume


def _named(columns, rows):
    return [dict(zip(columns, row, strict=True)) for row in rows]


def test_app_rows_form_fork_chains_with_fork_counts_of_live_forks():
    owners = ["owner1", "owner2"]
    rows = _named(
        seed.APP_COLUMNS,
        seed.app_rows(2000, owners=owners, rng=random.Random(6), now=timezone.now()),
    )

    by_id = {row["id"]: row for row in rows}
    forks = [row for row in rows if row["forked_from_id"]]
    assert 0.15 < len(forks) / len(rows) < 0.25
    assert any(by_id[row["forked_from_id"]]["forked_from_id"] for row in forks)
    live = Counter(row["forked_from_id"] for row in forks if row["status"] != "DELETED")
    assert all(row["fork_count"] == live[row["id"]] for row in rows)
    # A fork is never older than the app it was forked from.
    assert all(
        row["created_at"] >= by_id[row["forked_from_id"]]["created_at"] for row in forks
    )
    assert {row["owner_id"] for row in rows} == set(owners)
    assert {row["status"] for row in rows} == {"ACTIVE", "DRAFT", "ARCHIVED", "DELETED"}


def test_app_children_rows_follow_the_monetization_constraints():
    rng = random.Random(7)
    apps = seed.app_rows(1000, owners=["o"], rng=rng, now=timezone.now())

    requirements, monetization = seed.app_children_rows(apps, rng=rng)

    with_requirements = {row[1] for row in requirements}
    assert 0.25 < len(with_requirements) / len(apps) < 0.35
    models = _named(seed.MONETIZATION_COLUMNS, monetization)
    assert 0.45 < len(models) / len(apps) < 0.55
    assert {m["type"] for m in models} == set(MonetizationModel.Type.values)
    for m in models:
        priced = m["type"] in ("ONE_TIME", "SUBSCRIPTION")
        assert (m["price"] is not None) == priced
        assert bool(m["subscription_interval"]) == (m["type"] == "SUBSCRIPTION")


@pytest.mark.django_db
def test_volume_copies_apps_with_children_and_right_fork_counts(user, other_user):
    context = SeedContext(
        rng=random.Random(8),
        now=timezone.now(),
        batch_size=90,
        progress=False,
        requested={"apps": 250},
        owners=[user.pk, other_user.pk],
    )

    seed.seed_volume(context)

    counts = context.result.counts
    assert list(counts) == ["apps", "requirements", "monetization models"]
    assert counts["apps"] == App.objects.count() == 250
    assert counts["requirements"] == Requirement.objects.count() > 0
    assert counts["monetization models"] == MonetizationModel.objects.count() > 0
    assert set(App.objects.values_list("owner", flat=True)) == {user.pk, other_user.pk}
    wrong = App.objects.annotate(
        live=Count("forks", filter=~Q(forks__status="DELETED"))
    ).exclude(fork_count=F("live"))
    assert not wrong.exists()
    assert list(context.result.seconds) == ["apps"]


def test_catalog_seeder_needs_owners_and_checks_its_three_tables():
    seeder = next(s for s in seeders() if s.name == "apps_catalog")

    assert seeder.needs_owners and seeder.volume is seed.seed_volume
    for model, columns in seeder.copies:
        columns_check(model, columns)
    assert [model for model, _ in seeder.copies] == [
        App,
        Requirement,
        MonetizationModel,
    ]
