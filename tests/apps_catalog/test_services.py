from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from apps_catalog import selectors, services
from apps_catalog.models import App, MonetizationModel, Post, Requirement
from tests.accounts.factories import UserFactory
from tests.apps_catalog.factories import (
    AppFactory,
    MonetizationModelFactory,
    RequirementFactory,
)

pytestmark = pytest.mark.django_db


# --- constraints in the database ----------------------------------------------


def test_database_refuses_duplicate_domain_even_without_validation(user):
    AppFactory(owner=user, domain="shop.example.com")
    with pytest.raises(IntegrityError, match="app_domain_unique"):
        App.objects.create(owner=user, name="Other", domain="shop.example.com")


def test_many_apps_may_have_no_domain(user):
    AppFactory(owner=user, domain=None)
    AppFactory(owner=user, domain=None)

    assert App.objects.filter(domain__isnull=True).count() == 2


def test_database_refuses_upper_case_domain_so_uniqueness_ignores_case(user):
    with pytest.raises(IntegrityError, match="app_domain_valid"):
        App.objects.create(owner=user, name="Shout", domain="Shop.Example.com")


def test_database_refuses_subscription_without_interval():
    app = AppFactory()
    with pytest.raises(IntegrityError, match="monetization_interval_subscription_only"):
        MonetizationModel.objects.create(
            app=app, type="SUBSCRIPTION", price=Decimal("5")
        )


def test_database_refuses_interval_on_one_time_purchase():
    app = AppFactory()
    with pytest.raises(IntegrityError, match="monetization_interval_subscription_only"):
        MonetizationModel.objects.create(
            app=app, type="ONE_TIME", price=Decimal("5"), subscription_interval="YEARLY"
        )


def test_database_refuses_negative_price():
    app = AppFactory()
    with pytest.raises(IntegrityError, match="monetization_price_non_negative"):
        MonetizationModel.objects.create(app=app, type="FREEMIUM", price=Decimal("-1"))


def test_database_refuses_one_time_purchase_without_price():
    app = AppFactory()
    with pytest.raises(IntegrityError, match="monetization_price_required"):
        MonetizationModel.objects.create(app=app, type="ONE_TIME")


def test_database_refuses_blank_post_title(user):
    with pytest.raises(IntegrityError, match="post_title_not_blank"):
        Post.objects.create(author=user, title="   ")


def test_requirement_version_starts_at_one():
    assert RequirementFactory().version == 1


def test_features_are_a_postgres_array():
    model = MonetizationModelFactory(features=["a", "b"])

    assert MonetizationModel.objects.filter(features__contains=["b"]).get() == model


# --- app services -------------------------------------------------------------


def test_app_create_normalises_domain_and_starts_as_draft(user):
    app = services.app_create(owner=user, name=" Shop ", domain=" Shop.Example.COM. ")

    assert (app.name, app.domain, app.status) == ("Shop", "shop.example.com", "DRAFT")


def test_app_create_duplicate_domain_is_a_field_error(user, other_user):
    services.app_create(owner=other_user, name="A", domain="shop.example.com")

    with pytest.raises(ValidationError) as exc:
        services.app_create(owner=user, name="B", domain="SHOP.example.com")

    assert exc.value.message_dict == {
        "domain": ["Another app already uses this domain."]
    }
    assert not App.objects.filter(owner=user).exists()


def test_constraint_race_past_validation_becomes_validation_error(user, monkeypatch):
    """Two requests validating at once both pass full_clean; the database
    constraint decides, and the loser gets the same form error, not a 500."""
    services.app_create(owner=user, name="A", domain="shop.example.com")
    monkeypatch.setattr(App, "validate_constraints", lambda self, exclude=None: None)

    with pytest.raises(ValidationError) as exc:
        services.app_create(owner=user, name="B", domain="shop.example.com")

    assert exc.value.message_dict == {
        "domain": ["Another app already uses this domain."]
    }
    # The surrounding transaction is still usable: the savepoint rolled back.
    assert App.objects.filter(owner=user).count() == 1


def test_app_update_by_someone_else_is_refused(user, other_user):
    app = AppFactory(owner=user)

    with pytest.raises(PermissionDenied):
        services.app_update(app=app, actor=other_user, name="Hijacked")

    app.refresh_from_db()
    assert app.name != "Hijacked"


def test_soft_delete_hides_app_and_lowers_parent_fork_count(user, other_user):
    parent = AppFactory(owner=other_user)
    fork = services.app_fork(app=parent, actor=user)
    parent.refresh_from_db()
    assert parent.fork_count == 1

    services.app_delete(app=fork, actor=user)

    parent.refresh_from_db()
    assert parent.fork_count == 0
    assert App.objects.get(pk=fork.pk).status == App.Status.DELETED
    assert not App.objects.visible_to(user).filter(pk=fork.pk).exists()


def test_restore_brings_back_deleted_app_as_draft_and_counts_it_again(user):
    parent = AppFactory()
    fork = services.app_fork(app=parent, actor=user)
    services.app_delete(app=fork, actor=user)

    services.app_restore(app=fork, actor=user)

    parent.refresh_from_db()
    assert (fork.status, parent.fork_count) == (App.Status.DRAFT, 1)


def test_archive_then_restore_makes_app_active_again(user):
    app = AppFactory(owner=user, status=App.Status.ACTIVE)

    services.app_archive(app=app, actor=user)
    assert App.objects.get(pk=app.pk).status == App.Status.ARCHIVED
    services.app_restore(app=app, actor=user)

    assert App.objects.get(pk=app.pk).status == App.Status.ACTIVE


def test_deleting_a_parent_for_good_leaves_forks_standing(user, admin_user):
    parent = AppFactory()
    fork = services.app_fork(app=parent, actor=user)

    services.app_destroy(app=parent, actor=admin_user)

    fork.refresh_from_db()
    assert fork.forked_from_id is None


def test_fork_counts_recompute_repairs_drift(user):
    parent = AppFactory()
    services.app_fork(app=parent, actor=user)
    services.app_fork(app=parent, actor=user)
    App.objects.filter(pk=parent.pk).update(fork_count=7)

    assert services.app_fork_counts_recompute() == 1
    parent.refresh_from_db()
    assert parent.fork_count == 2


# --- forking ------------------------------------------------------------------


def test_fork_copies_every_requirement_and_monetization_model(user, other_user):
    parent = AppFactory(owner=other_user, domain="parent.example.com")
    RequirementFactory(app=parent, description="Login", priority="HIGH")
    RequirementFactory(app=parent, description="Export", status="COMPLETED")
    MonetizationModelFactory(app=parent, subscription=True, features=["Sync"])
    MonetizationModelFactory(app=parent, one_time=True)

    fork = services.app_fork(app=parent, actor=user)

    assert (fork.owner, fork.status, fork.forked_from, fork.domain) == (
        user,
        App.Status.DRAFT,
        parent,
        None,
    )
    assert sorted(
        fork.requirements.values_list("description", "priority", "status", "version")
    ) == [("Export", "MEDIUM", "COMPLETED", 1), ("Login", "HIGH", "PENDING", 1)]
    assert sorted(
        fork.monetization_models.values_list(
            "type", "price", "subscription_interval", "features"
        )
    ) == [
        ("ONE_TIME", Decimal("29.00"), "", ["Core features"]),
        ("SUBSCRIPTION", Decimal("9.99"), "MONTHLY", ["Sync"]),
    ]
    parent.refresh_from_db()
    assert parent.fork_count == 1
    # The parent keeps its own rows.
    assert parent.requirements.count() == 2


def test_fork_failing_half_way_leaves_no_fork_behind(user, monkeypatch):
    parent = AppFactory()
    RequirementFactory(app=parent)
    MonetizationModelFactory(app=parent)

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    # Requirements are copied, then copying monetization models fails.
    monkeypatch.setattr(MonetizationModel.objects, "bulk_create", explode)
    with pytest.raises(RuntimeError):
        services.app_fork(app=parent, actor=user)

    assert not App.objects.filter(owner=user).exists()
    assert Requirement.objects.count() == 1
    parent.refresh_from_db()
    assert parent.fork_count == 0


def test_fork_takes_nine_statements_however_many_rows_it_copies(user, other_user):
    # Visibility check, three INSERTs, two SELECTs, the fork_count UPDATE, and
    # the transaction around them (a savepoint pair here, BEGIN/COMMIT live).
    parent = AppFactory(owner=other_user)
    RequirementFactory.create_batch(5, app=parent)
    MonetizationModelFactory(app=parent, subscription=True)
    MonetizationModelFactory(app=parent, one_time=True)
    MonetizationModelFactory(app=parent)

    with CaptureQueriesContext(connection) as ctx:
        fork = services.app_fork(app=parent, actor=user)

    assert len(ctx.captured_queries) <= 9
    assert not [q for q in ctx.captured_queries if '"_check"' in q["sql"]]
    assert (fork.requirements.count(), fork.monetization_models.count()) == (5, 3)


def test_fork_violating_a_constraint_shows_its_message_and_leaves_nothing(
    user, other_user, monkeypatch
):
    # Whitespace passes the field checks; app_name_not_blank refuses it in the
    # INSERT, and the error lands on the name field as a form would show it.
    parent = AppFactory(owner=other_user)
    RequirementFactory(app=parent)
    monkeypatch.setattr(services, "_fork_name", lambda name: "   ")

    with pytest.raises(ValidationError) as excinfo:
        services.app_fork(app=parent, actor=user)

    assert excinfo.value.message_dict == {"name": ["An app needs a name."]}
    assert not App.objects.filter(owner=user).exists()
    assert Requirement.objects.count() == 1
    parent.refresh_from_db()
    assert parent.fork_count == 0


def test_fork_field_errors_are_still_reported_before_the_insert(
    user, other_user, monkeypatch
):
    parent = AppFactory(owner=other_user)
    monkeypatch.setattr(services, "_fork_name", lambda name: "x" * 300)

    with pytest.raises(ValidationError) as excinfo:
        services.app_fork(app=parent, actor=user)

    assert list(excinfo.value.message_dict) == ["name"]
    assert not App.objects.filter(owner=user).exists()


def test_fork_of_someone_elses_draft_is_impossible(user, other_user):
    draft = AppFactory(owner=other_user, status=App.Status.DRAFT)

    with pytest.raises(PermissionDenied):
        services.app_fork(app=draft, actor=user)

    assert not App.objects.filter(owner=user).exists()


def test_owner_may_fork_own_draft(user):
    draft = AppFactory(owner=user, status=App.Status.DRAFT)

    assert services.app_fork(app=draft, actor=user).forked_from == draft


# --- fork tree ----------------------------------------------------------------


def _fork_published(app, actor=None):
    actor = actor or UserFactory()
    fork = services.app_fork(app=app, actor=actor)
    return services.app_update(
        app=fork, actor=actor, name=fork.name, status=App.Status.ACTIVE
    )


def _chain(length):
    apps = [AppFactory()]
    for _ in range(length - 1):
        apps.append(_fork_published(apps[-1]))
    return apps


def test_fork_tree_returns_ancestors_and_descendants_in_one_query(user):
    root, child, grandchild, great = _chain(4)
    sibling = services.app_fork(app=root, actor=user)  # not in child's tree
    nephew = services.app_fork(app=grandchild, actor=user)
    unrelated = AppFactory()

    with CaptureQueriesContext(connection) as ctx:
        nodes = selectors.app_fork_tree_nodes(app=child)
        depths = {node.pk: node.tree_depth for node in nodes}

    assert len(ctx.captured_queries) == 1
    assert "WITH RECURSIVE" in ctx.captured_queries[0]["sql"]
    assert depths == {
        root.pk: -1,
        child.pk: 0,
        grandchild.pk: 1,
        great.pk: 2,
        nephew.pk: 2,
    }
    assert sibling.pk not in depths and unrelated.pk not in depths


def test_fork_tree_query_count_does_not_grow_with_the_tree(
    django_assert_num_queries, user
):
    small = _chain(3)
    big = _chain(3)
    for _ in range(20):
        _fork_published(big[1])

    for apps in (small, big):
        with django_assert_num_queries(1):  # the CTE, owners' names included
            tree = selectors.app_fork_tree(app=apps[1], viewer=user)
            names = [n.app.owner_name for n in tree.root.children]
        assert names


def test_fork_tree_hides_private_nodes_without_losing_their_children(user, other_user):
    root = AppFactory()
    private = services.app_fork(app=root, actor=other_user)  # a DRAFT
    public = services.app_fork(app=private, actor=other_user)
    services.app_update(app=public, actor=other_user, name="Public", status="ACTIVE")

    tree = selectors.app_fork_tree(app=root, viewer=user)

    (private_node,) = tree.root.children
    assert not private_node.visible
    assert [(n.app.pk, n.visible) for n in private_node.children] == [(public.pk, True)]


# --- requirements: optimistic versioning --------------------------------------


def test_requirement_update_increments_version(user):
    requirement = RequirementFactory(app=AppFactory(owner=user))

    services.requirement_update(
        requirement=requirement,
        actor=user,
        expected_version=1,
        description="Sign in with email",
        priority="HIGH",
    )

    requirement.refresh_from_db()
    assert (requirement.version, requirement.description) == (2, "Sign in with email")


def test_stale_requirement_edit_is_refused_and_newer_text_survives(user):
    requirement = RequirementFactory(app=AppFactory(owner=user), description="v1")
    # Two editors load version 1; the first saves.
    first = Requirement.objects.get(pk=requirement.pk)
    second = Requirement.objects.get(pk=requirement.pk)
    services.requirement_update(
        requirement=first,
        actor=user,
        expected_version=1,
        description="newer text",
        priority="HIGH",
    )

    with pytest.raises(ValidationError) as exc:
        services.requirement_update(
            requirement=second,
            actor=user,
            expected_version=1,
            description="stale text",
            priority="LOW",
        )

    assert exc.value.messages == [services.STALE_REQUIREMENT_MESSAGE]
    requirement.refresh_from_db()
    assert (requirement.description, requirement.priority, requirement.version) == (
        "newer text",
        "HIGH",
        2,
    )


def test_status_change_is_a_versioned_edit(user):
    requirement = RequirementFactory(app=AppFactory(owner=user))

    services.requirement_set_status(
        requirement=requirement, actor=user, status="COMPLETED", expected_version=1
    )
    with pytest.raises(ValidationError):
        services.requirement_set_status(
            requirement=requirement, actor=user, status="REJECTED", expected_version=1
        )

    requirement.refresh_from_db()
    assert (requirement.status, requirement.version) == ("COMPLETED", 2)


def test_blank_requirement_is_refused(user):
    with pytest.raises(ValidationError) as exc:
        services.requirement_create(
            app=AppFactory(owner=user), actor=user, description=" "
        )

    assert "description" in exc.value.message_dict


# --- monetization -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"type": "SUBSCRIPTION", "price": Decimal("5")},
            "subscription_interval",
            "Subscriptions need a billing interval",
        ),
        (
            {"type": "FREE", "subscription_interval": "MONTHLY"},
            "subscription_interval",
            "other types have none",
        ),
        ({"type": "ONE_TIME", "price": Decimal("-1")}, "price", "negative"),
        ({"type": "ONE_TIME"}, "price", "need a price"),
    ],
)
def test_monetization_rules_are_field_errors_and_write_nothing(
    user, fields, field, message
):
    app = AppFactory(owner=user)

    with pytest.raises(ValidationError) as exc:
        services.monetization_create(app=app, actor=user, **fields)

    assert message in " ".join(exc.value.message_dict[field])
    assert not MonetizationModel.objects.exists()


def test_monetization_features_are_trimmed_and_deduplicated(user):
    model = services.monetization_create(
        app=AppFactory(owner=user),
        actor=user,
        type="FREEMIUM",
        features=[" Sync ", "", "Sync", "Export"],
    )

    assert model.features == ["Sync", "Export"]


def test_monetization_update_and_delete_by_owner_only(user, other_user):
    model = MonetizationModelFactory(app=AppFactory(owner=user))

    with pytest.raises(PermissionDenied):
        services.monetization_delete(model=model, actor=other_user)
    services.monetization_update(
        model=model, actor=user, type="ONE_TIME", price=Decimal("3.50")
    )
    model.refresh_from_db()
    assert (model.type, model.price) == ("ONE_TIME", Decimal("3.50"))
    services.monetization_delete(model=model, actor=user)
    assert not MonetizationModel.objects.exists()


# --- posts --------------------------------------------------------------------


def test_post_on_someone_elses_app_is_refused(user, other_user):
    with pytest.raises(PermissionDenied):
        services.post_create(author=user, app=AppFactory(owner=other_user), title="Hi")

    assert not Post.objects.exists()


def test_post_title_must_not_be_blank_or_too_long(user):
    with pytest.raises(ValidationError) as exc:
        services.post_create(author=user, title="  ")
    assert "title" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.post_create(author=user, title="x" * 256)
    assert "title" in exc.value.message_dict
    assert not Post.objects.exists()


def test_post_update_and_delete_by_author(user, other_user):
    post = services.post_create(author=user, title="Hello", published=False)

    with pytest.raises(PermissionDenied):
        services.post_update(post=post, actor=other_user, title="Mine now")
    services.post_update(post=post, actor=user, title="Hello again", published=True)
    post.refresh_from_db()
    assert (post.title, post.published) == ("Hello again", True)
    services.post_delete(post=post, actor=user)
    assert not Post.objects.exists()


def test_fork_tree_shows_only_the_nearest_descendants_of_a_huge_tree():
    root = AppFactory()
    children = [_fork_published(root) for _ in range(3)]
    for child in children:
        _fork_published(child)

    nodes = selectors.app_fork_tree_nodes(app=root, limit=3)

    # The root plus the first level only: the walk stopped at the limit.
    assert sorted(node.tree_depth for node in nodes) == [0, 1, 1, 1]


def test_fork_counts_release_before_a_user_is_deleted(user, other_user):
    parent = AppFactory(owner=other_user)
    services.app_fork(app=parent, actor=user)
    services.app_fork(app=parent, actor=user)
    services.app_fork(app=parent, actor=other_user)

    assert services.app_fork_counts_release(user=user) == 1
    user.delete()

    parent.refresh_from_db()
    assert parent.fork_count == 1
    assert services.app_fork_counts_recompute() == 0
