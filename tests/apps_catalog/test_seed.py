import io

import pytest

from apps_catalog import seed
from apps_catalog.models import App, MonetizationModel, Post, Requirement
from apps_catalog.selectors import app_fork_tree_nodes

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
