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
