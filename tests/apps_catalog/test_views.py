from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps_catalog import services
from apps_catalog.models import App, MonetizationModel, Post, Requirement
from tests.accounts.factories import UserFactory
from tests.apps_catalog.factories import (
    AppFactory,
    MonetizationModelFactory,
    PostFactory,
    RequirementFactory,
)

pytestmark = pytest.mark.django_db


def _queries(client, url) -> int:
    # Warm-up: the first request of a session records it (allauth usersessions).
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries)


# --- explore ------------------------------------------------------------------


def test_explore_lists_only_active_apps(client):
    AppFactory(name="Public thing", status=App.Status.ACTIVE)
    AppFactory(name="Secret draft", status=App.Status.DRAFT)
    AppFactory(name="Old archived", status=App.Status.ARCHIVED)
    AppFactory(name="Gone deleted", status=App.Status.DELETED)

    content = client.get(reverse("explore")).content.decode()

    assert "Public thing" in content
    assert "Secret draft" not in content
    assert "Old archived" not in content
    assert "Gone deleted" not in content


def test_explore_searches_name_and_description_case_insensitively(client):
    AppFactory(name="Invoice Maker", description="PDFs")
    AppFactory(name="Budget", description="Tracks INVOICES and receipts")
    AppFactory(name="Recipes", description="Cooking")

    content = client.get(reverse("explore"), {"q": "invoice"}).content.decode()

    assert "Invoice Maker" in content
    assert "Budget" in content
    assert "Recipes" not in content


def test_explore_filters_by_monetization_type(client):
    MonetizationModelFactory(app__name="Paid monthly", subscription=True)
    MonetizationModelFactory(app__name="Free forever")

    content = client.get(reverse("explore"), {"type": "SUBSCRIPTION"}).content.decode()

    assert "Paid monthly" in content
    assert "Free forever" not in content


def test_explore_sorts_by_most_forked(client, user):
    AppFactory(name="Newer unforked")
    popular = AppFactory(name="Older popular")
    App.objects.filter(pk=popular.pk).update(fork_count=5)
    AppFactory(name="Newest unforked")

    forks = client.get(reverse("explore"), {"sort": "forks"}).content.decode()
    newest = client.get(reverse("explore")).content.decode()

    assert forks.index("Older popular") < forks.index("Newest unforked")
    assert newest.index("Newest unforked") < newest.index("Older popular")


def test_explore_with_bad_parameters_still_answers(client):
    AppFactory(name="Still listed")

    response = client.get(
        reverse("explore"), {"type": "BOGUS", "sort": "x", "page": "zzz"}
    )

    assert response.status_code == 200
    assert "Still listed" in response.content.decode()


def test_explore_paginates(client):
    for i in range(30):
        AppFactory(name=f"Listed {i:02d}")

    first = client.get(reverse("explore")).content.decode()
    second = client.get(reverse("explore"), {"page": 2}).content.decode()

    assert first.count("Listed ") == 24
    assert second.count("Listed ") == 6
    assert "Page 1" in first and "Next →" in first and "← Previous" not in first
    assert "Page 2" in second and "← Previous" in second and "Next →" not in second
    assert "Apps 25\u201330" in second


def test_explore_past_the_last_page_shows_the_first(client):
    AppFactory(name="Only one")

    content = client.get(reverse("explore"), {"page": 7}).content.decode()

    assert "Only one" in content and "Apps 1\u20131" in content


def test_explore_query_count_is_the_same_for_3_and_30_apps(client):
    def add(n):
        for _ in range(n):
            app = AppFactory()
            MonetizationModelFactory(app=app)
            MonetizationModelFactory(app=app, one_time=True)

    add(3)
    few = _queries(client, reverse("explore"))
    add(27)
    many = _queries(client, reverse("explore"))

    # One query: the page with its owners' names and pricing (no count, no
    # prefetch): selectors.explore_page.
    assert few == many == 1


def test_explore_search_expression_matches_the_trigram_indexes():
    """Django's icontains is UPPER(col::text) LIKE UPPER('%q%'); the GIN indexes
    are on UPPER(col) with gin_trgm_ops, so PostgreSQL can use them."""
    from django.db.models import Q

    AppFactory.create_batch(5)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = App.objects.filter(
        Q(name__icontains="invoice") | Q(description__icontains="invoice")
    ).explain()

    assert "app_name_trgm_idx" in plan
    assert "app_description_trgm_idx" in plan


def test_explore_most_forked_is_served_by_an_index():
    from apps_catalog.selectors import apps_explore

    AppFactory.create_batch(5)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = apps_explore(sort="forks")[:24].explain()

    # The index hands rows over in page order: no sort step above it.
    assert "app_status_forks_idx" in plan
    assert "Sort" not in plan


# --- landing ------------------------------------------------------------------


def test_landing_page_shows_recent_active_apps_only(client):
    AppFactory(name="Fresh public app")
    AppFactory(name="Hidden draft app", status=App.Status.DRAFT)

    content = client.get("/").content.decode()

    assert "Fresh public app" in content
    assert "Hidden draft app" not in content


def test_landing_page_query_count_is_the_same_for_3_and_30_apps(client):
    AppFactory.create_batch(3)
    few = _queries(client, "/")
    AppFactory.create_batch(27)
    many = _queries(client, "/")

    assert few == many


# --- my apps ------------------------------------------------------------------


def test_my_apps_requires_sign_in(client):
    response = client.get(reverse("my_apps"))

    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_my_apps_lists_own_apps_but_not_deleted_or_others(user_client, user):
    AppFactory(owner=user, name="My draft", status=App.Status.DRAFT)
    AppFactory(owner=user, name="My archived", status=App.Status.ARCHIVED)
    AppFactory(owner=user, name="My deleted", status=App.Status.DELETED)
    AppFactory(name="Not mine")

    content = user_client.get(reverse("my_apps")).content.decode()

    assert "My draft" in content and "My archived" in content
    assert "My deleted" not in content and "Not mine" not in content


def test_my_apps_query_count_is_the_same_for_3_and_30_apps(user_client, user):
    parent = AppFactory()

    def add(n):
        for _ in range(n):
            services.app_fork(app=parent, actor=user)

    add(3)
    few = _queries(user_client, reverse("my_apps"))
    add(27)
    many = _queries(user_client, reverse("my_apps"))

    assert few == many


# --- app page -----------------------------------------------------------------


def test_app_page_shows_owner_monetization_fork_count_and_tree(client, user):
    app = AppFactory(name="Habit Tracker", owner__name="Ada Builder")
    MonetizationModelFactory(app=app, subscription=True, features=["Cloud sync"])
    fork = services.app_fork(app=app, actor=user)
    services.app_update(app=fork, actor=user, name="Habits for Teams", status="ACTIVE")

    content = client.get(reverse("app_detail", args=[app.pk])).content.decode()

    assert "Ada Builder" in content
    assert "Subscription" in content and "$9.99 / monthly" in content
    assert "Cloud sync" in content
    assert "1 fork" in content
    assert "Habits for Teams" in content


def test_app_page_shows_edit_controls_to_the_owner_only(client, user, other_client):
    app = AppFactory(owner=user)
    client.force_login(user)
    edit_url = reverse("app_edit", args=[app.pk])

    assert edit_url in client.get(app.get_absolute_url()).content.decode()
    assert edit_url not in other_client.get(app.get_absolute_url()).content.decode()


def test_app_page_query_count_is_the_same_for_3_and_30_related_rows(client):
    app = AppFactory()

    def add(n):
        for _ in range(n):
            MonetizationModelFactory(app=app)
            PostFactory(app=app)
            services.app_fork(app=app, actor=UserFactory())
            fork = App.objects.filter(forked_from=app).latest("created_at")
            App.objects.filter(pk=fork.pk).update(status=App.Status.ACTIVE)

    add(3)
    few = _queries(client, app.get_absolute_url())
    add(27)
    many = _queries(client, app.get_absolute_url())

    # The app with its owner's name and pricing, the fork tree with its
    # owners' names, the posts: selectors.app_for_page and app_fork_tree.
    assert few == many == 3


def test_app_page_reads_no_email_nor_password_of_anyone(client):
    owner = UserFactory(name="", first_name="Ada", last_name="Lovelace")
    app = AppFactory(owner=owner)
    PostFactory(app=app, author=owner, published=True)
    fork = services.app_fork(app=app, actor=UserFactory(name="Forker"))
    App.objects.filter(pk=fork.pk).update(status=App.Status.ACTIVE)

    with CaptureQueriesContext(connection) as ctx:
        content = client.get(app.get_absolute_url()).content.decode()

    sql = " ".join(q["sql"] for q in ctx.captured_queries)
    assert '"email"' not in sql and '"password"' not in sql
    assert "by Ada Lovelace" in content and "by Forker" in content


def test_app_page_shows_pricing_as_before(client):
    app = AppFactory()
    MonetizationModelFactory(app=app, type="FREE", price=None)
    MonetizationModelFactory(
        app=app,
        type="SUBSCRIPTION",
        price=Decimal("10.00"),
        subscription_interval="MONTHLY",
        features=["Sync", "<b>Export</b>"],
    )

    content = client.get(app.get_absolute_url()).content.decode()

    assert "<strong>Free</strong>" in content
    assert "<strong>Subscription</strong> · $10.00 / monthly" in content
    assert "<li>&lt;b&gt;Export&lt;/b&gt;</li>" in content


# --- privacy: 404 on someone else's draft -------------------------------------


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("app_detail", "get"),
        ("app_edit", "get"),
        ("app_edit", "post"),
        ("app_fork", "get"),
        ("app_fork", "post"),
        ("app_delete", "get"),
        ("app_delete", "post"),
        ("app_archive", "post"),
        ("app_restore", "post"),
        ("requirement_board", "get"),
        ("requirement_board", "post"),
        ("monetization_editor", "get"),
        ("post_list", "get"),
        ("post_list", "post"),
    ],
)
def test_another_users_draft_answers_404(other_client, user, name, method):
    draft = AppFactory(owner=user, status=App.Status.DRAFT, name="Private idea")

    response = getattr(other_client, method)(
        reverse(name, args=[draft.pk]), {"name": "Stolen", "description": "x"}
    )

    assert response.status_code == 404
    draft.refresh_from_db()
    assert (draft.name, draft.status) == ("Private idea", App.Status.DRAFT)
    assert App.objects.count() == 1


@pytest.mark.parametrize(
    "name",
    [
        "app_edit",
        "app_delete",
        "app_archive",
        "monetization_editor",
        "requirement_board",
        "post_list",
    ],
)
def test_another_users_active_app_cannot_be_edited(other_client, user, name):
    app = AppFactory(owner=user, name="Public")

    response = other_client.post(
        reverse(name, args=[app.pk]),
        {"name": "Defaced", "description": "x", "title": "x", "type": "FREE"},
    )

    assert response.status_code == 404
    app.refresh_from_db()
    assert (app.name, app.status) == ("Public", App.Status.ACTIVE)
    assert not (
        app.requirements.exists()
        or app.posts.exists()
        or app.monetization_models.exists()
    )


def test_requirement_edit_of_another_users_app_answers_404(other_client, user):
    requirement = RequirementFactory(app__owner=user, description="Original")

    response = other_client.post(
        reverse("requirement_edit", args=[requirement.app_id, requirement.pk]),
        {
            "description": "Changed",
            "priority": "LOW",
            "status": "PENDING",
            "version": 1,
        },
    )

    assert response.status_code == 404
    requirement.refresh_from_db()
    assert requirement.description == "Original"


# --- app forms ----------------------------------------------------------------


def test_create_app_with_foreign_owner_id_still_belongs_to_the_signed_in_user(
    user_client, user, other_user
):
    response = user_client.post(
        reverse("app_create"),
        {"name": "Mine", "status": "DRAFT", "owner": other_user.pk, "fork_count": 99},
    )

    app = App.objects.get(name="Mine")
    assert response.status_code == 302
    assert (app.owner, app.fork_count) == (user, 0)
    assert not App.objects.filter(owner=other_user).exists()


def test_edit_app_with_foreign_owner_id_changes_nothing_but_allowed_fields(
    user_client, user, other_user
):
    app = AppFactory(owner=user, name="Before")

    user_client.post(
        reverse("app_edit", args=[app.pk]),
        {"name": "After", "status": "ACTIVE", "owner": other_user.pk},
    )

    app.refresh_from_db()
    assert (app.name, app.owner) == ("After", user)


def test_duplicate_domain_is_a_form_error_and_writes_nothing(user_client, user):
    AppFactory(domain="taken.example.com")

    response = user_client.post(
        reverse("app_create"),
        {"name": "Copycat", "status": "DRAFT", "domain": "TAKEN.example.com"},
    )

    assert response.status_code == 200
    assert "Another app already uses this domain." in response.content.decode()
    assert not App.objects.filter(owner=user).exists()


def test_duplicate_domain_on_edit_is_a_form_error(user_client, user):
    AppFactory(domain="taken.example.com")
    app = AppFactory(owner=user, name="Mine", domain="mine.example.com")

    response = user_client.post(
        reverse("app_edit", args=[app.pk]),
        {"name": "Renamed", "status": "ACTIVE", "domain": "taken.example.com"},
    )

    assert "Another app already uses this domain." in response.content.decode()
    app.refresh_from_db()
    assert (app.name, app.domain) == ("Mine", "mine.example.com")


def test_invalid_domain_and_blank_name_are_form_errors(user_client, user):
    response = user_client.post(
        reverse("app_create"), {"name": "  ", "status": "DRAFT", "domain": "not a host"}
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert "This field is required." in content
    assert "Enter a host name such as myapp.example.com." in content
    assert not App.objects.exists()


def test_create_app_cannot_choose_deleted_status(user_client):
    response = user_client.post(
        reverse("app_create"), {"name": "Sneaky", "status": "DELETED"}
    )

    assert response.status_code == 200
    assert not App.objects.exists()


def test_archive_restore_and_delete_need_post_and_confirm(user_client, user):
    app = AppFactory(owner=user)

    confirm = user_client.get(reverse("app_archive", args=[app.pk]))
    assert confirm.status_code == 200 and "Archive" in confirm.content.decode()
    assert App.objects.get(pk=app.pk).status == App.Status.ACTIVE

    user_client.post(reverse("app_archive", args=[app.pk]))
    assert App.objects.get(pk=app.pk).status == App.Status.ARCHIVED
    user_client.post(reverse("app_restore", args=[app.pk]))
    assert App.objects.get(pk=app.pk).status == App.Status.ACTIVE
    response = user_client.post(reverse("app_delete", args=[app.pk]))
    assert response["Location"] == reverse("my_apps")
    assert App.objects.get(pk=app.pk).status == App.Status.DELETED
    # Soft-deleted: gone from every page, for the owner too.
    assert user_client.get(app.get_absolute_url()).status_code == 404


def test_fork_button_creates_a_draft_copy_for_the_signed_in_user(
    other_client, other_user
):
    app = AppFactory()
    RequirementFactory(app=app)

    response = other_client.post(reverse("app_fork", args=[app.pk]))

    fork = App.objects.get(owner=other_user)
    assert response["Location"] == fork.get_absolute_url()
    assert (fork.status, fork.forked_from_id, fork.requirements.count()) == (
        App.Status.DRAFT,
        app.pk,
        1,
    )


def test_fork_needs_sign_in(client):
    app = AppFactory()

    response = client.post(reverse("app_fork", args=[app.pk]))

    assert response.status_code == 302
    assert App.objects.count() == 1


def test_forms_are_csrf_protected(user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post(reverse("app_create"), {"name": "x", "status": "DRAFT"})

    assert response.status_code == 403
    assert not App.objects.exists()


# --- requirements board -------------------------------------------------------


def test_board_filters_by_status_and_priority(user_client, user):
    app = AppFactory(owner=user)
    RequirementFactory(app=app, description="Urgent open", priority="CRITICAL")
    RequirementFactory(app=app, description="Low open", priority="LOW")
    RequirementFactory(
        app=app, description="Urgent done", priority="CRITICAL", status="COMPLETED"
    )
    url = reverse("requirement_board", args=[app.pk])

    content = user_client.get(
        url, {"status": "PENDING", "priority": "CRITICAL"}
    ).content.decode()

    assert "Urgent open" in content
    assert "Low open" not in content and "Urgent done" not in content


def test_board_adds_a_requirement(user_client, user):
    app = AppFactory(owner=user)

    user_client.post(
        reverse("requirement_board", args=[app.pk]),
        {"description": "Dark mode", "priority": "LOW", "status": "PENDING"},
    )

    assert app.requirements.get().description == "Dark mode"


def test_board_is_read_only_for_visitors_of_an_active_app(other_client, user):
    app = AppFactory(owner=user)
    RequirementFactory(app=app, description="Visible requirement")

    content = other_client.get(
        reverse("requirement_board", args=[app.pk])
    ).content.decode()

    assert "Visible requirement" in content
    assert "Add a requirement" not in content


def test_stale_requirement_edit_in_the_page_is_refused_and_keeps_both_texts(
    user_client, user
):
    requirement = RequirementFactory(app__owner=user, description="Original")
    url = reverse("requirement_edit", args=[requirement.app_id, requirement.pk])
    # Someone else saves first (version 1 → 2).
    services.requirement_update(
        requirement=Requirement.objects.get(pk=requirement.pk),
        actor=user,
        expected_version=1,
        description="Newer text from the other tab",
        priority="HIGH",
    )

    response = user_client.post(
        url,
        {
            "description": "My stale text",
            "priority": "LOW",
            "status": "PENDING",
            "version": 1,
        },
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert "changed by someone else; reload and try again" in content
    assert "My stale text" in content  # the user's text is not lost
    assert "Newer text from the other tab" in content
    requirement.refresh_from_db()
    assert (requirement.description, requirement.version) == (
        "Newer text from the other tab",
        2,
    )


def test_requirement_edit_with_current_version_saves(user_client, user):
    requirement = RequirementFactory(app__owner=user)

    user_client.post(
        reverse("requirement_edit", args=[requirement.app_id, requirement.pk]),
        {
            "description": "Better",
            "priority": "HIGH",
            "status": "PENDING",
            "version": 1,
        },
    )

    requirement.refresh_from_db()
    assert (requirement.description, requirement.version) == ("Better", 2)


def test_requirement_status_change_from_the_board(user_client, user):
    requirement = RequirementFactory(app__owner=user)

    moved = user_client.post(
        reverse("requirement_status", args=[requirement.app_id, requirement.pk]),
        {"status": "IN_PROGRESS", "version": 1, "next": "https://evil.example/"},
    )
    # An off-site "next" is ignored.
    assert moved["Location"] == reverse("requirement_board", args=[requirement.app_id])
    stale = user_client.post(
        reverse("requirement_status", args=[requirement.app_id, requirement.pk]),
        {"status": "REJECTED", "version": 1},
        follow=True,
    )

    requirement.refresh_from_db()
    assert (requirement.status, requirement.version) == ("IN_PROGRESS", 2)
    assert "changed by someone else" in stale.content.decode()


def test_requirement_board_query_count_is_the_same_for_3_and_30(user_client, user):
    app = AppFactory(owner=user)
    url = reverse("requirement_board", args=[app.pk])

    RequirementFactory.create_batch(3, app=app)
    few = _queries(user_client, url)
    RequirementFactory.create_batch(27, app=app)
    many = _queries(user_client, url)

    assert few == many


# --- monetization editor ------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"type": "SUBSCRIPTION", "price": "5"},
            "Subscriptions need a billing interval; other types have none.",
        ),
        ({"type": "ONE_TIME", "price": "-3"}, "The price cannot be negative."),
        (
            {"type": "ONE_TIME"},
            "One-time purchases and subscriptions need a price.",
        ),
    ],
)
def test_monetization_rule_violations_are_form_errors(user_client, user, data, message):
    app = AppFactory(owner=user)

    response = user_client.post(reverse("monetization_editor", args=[app.pk]), data)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not MonetizationModel.objects.exists()


def test_monetization_feature_longer_than_255_is_a_form_error(user_client, user):
    app = AppFactory(owner=user)

    response = user_client.post(
        reverse("monetization_editor", args=[app.pk]),
        {"type": "FREE", "features": "Fine\n" + "x" * 256},
    )

    assert response.status_code == 200
    assert "Keep each feature under 255 characters." in response.content.decode()
    assert not MonetizationModel.objects.exists()


def test_monetization_editor_adds_edits_and_deletes(user_client, user):
    app = AppFactory(owner=user)
    url = reverse("monetization_editor", args=[app.pk])

    user_client.post(
        url,
        {
            "type": "SUBSCRIPTION",
            "price": "9.50",
            "subscription_interval": "YEARLY",
            "features": "Sync\nExport\nSync",
        },
    )
    model = MonetizationModel.objects.get()
    assert (model.price, model.features) == (Decimal("9.50"), ["Sync", "Export"])

    user_client.post(
        reverse("monetization_edit", args=[app.pk, model.pk]),
        {"type": "FREEMIUM", "features": "Basic"},
    )
    model.refresh_from_db()
    assert (model.type, model.subscription_interval) == ("FREEMIUM", "")

    user_client.post(reverse("monetization_delete", args=[app.pk, model.pk]))
    assert not MonetizationModel.objects.exists()


def test_monetization_editor_query_count_is_the_same_for_3_and_30(user_client, user):
    app = AppFactory(owner=user)
    url = reverse("monetization_editor", args=[app.pk])

    MonetizationModelFactory.create_batch(3, app=app)
    few = _queries(user_client, url)
    MonetizationModelFactory.create_batch(27, app=app)
    many = _queries(user_client, url)

    assert few == many


# --- posts --------------------------------------------------------------------


def test_owner_posts_on_an_app_and_visitors_see_only_published(
    user_client, user, other_client
):
    app = AppFactory(owner=user)
    url = reverse("post_list", args=[app.pk])

    user_client.post(url, {"title": "Launch day", "content": "Hi", "published": "on"})
    user_client.post(url, {"title": "Secret plan", "content": "Shh"})

    assert Post.objects.filter(app=app, author=user).count() == 2
    visitor = other_client.get(url).content.decode()
    assert "Launch day" in visitor and "Secret plan" not in visitor
    assert "Secret plan" in user_client.get(url).content.decode()


def test_blank_post_title_is_a_form_error(user_client, user):
    app = AppFactory(owner=user)

    response = user_client.post(reverse("post_list", args=[app.pk]), {"title": " "})

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not Post.objects.exists()


def test_post_edit_and_delete(user_client, user):
    post = PostFactory(app__owner=user, title="Old")

    user_client.post(
        reverse("post_edit", args=[post.app_id, post.pk]),
        {"title": "New", "content": "", "published": "on"},
    )
    post.refresh_from_db()
    assert post.title == "New"
    user_client.post(reverse("post_delete", args=[post.app_id, post.pk]))
    assert not Post.objects.exists()


def test_post_list_query_count_is_the_same_for_3_and_30(client):
    app = AppFactory()
    url = reverse("post_list", args=[app.pk])

    PostFactory.create_batch(3, app=app)
    few = _queries(client, url)
    PostFactory.create_batch(27, app=app)
    many = _queries(client, url)

    assert few == many


def test_explore_never_counts_the_catalog(client):
    AppFactory.create_batch(30)

    with CaptureQueriesContext(connection) as ctx:
        content = client.get(reverse("explore")).content.decode()

    assert not any("COUNT(" in q["sql"] for q in ctx.captured_queries)
    assert "LIMIT 25" in ctx.captured_queries[-1]["sql"]  # a page and one more
    assert "Next →" in content


# --- privacy: children of apps the viewer may not edit or see -----------------


@pytest.mark.parametrize(
    "status", [App.Status.DRAFT, App.Status.ARCHIVED, App.Status.DELETED]
)
@pytest.mark.parametrize("name", ["app_detail", "requirement_board", "post_list"])
def test_another_users_hidden_app_and_its_pages_answer_404(
    other_client, user, status, name
):
    app = AppFactory(owner=user, status=status, name="Hidden idea")
    RequirementFactory(app=app, description="Hidden requirement")
    PostFactory(app=app, title="Hidden post")

    response = other_client.get(reverse(name, args=[app.pk]))

    assert response.status_code == 404
    assert "Hidden" not in response.content.decode()


@pytest.mark.parametrize(
    ("status", "owner_sees"),
    [
        (App.Status.DRAFT, True),
        (App.Status.ARCHIVED, True),
        (App.Status.DELETED, False),
    ],
)
def test_owner_sees_own_draft_and_archived_app_but_not_deleted(
    user_client, user, status, owner_sees
):
    app = AppFactory(owner=user, status=status, name="Own idea")

    response = user_client.get(reverse("app_detail", args=[app.pk]))

    assert response.status_code == (200 if owner_sees else 404)
    assert ("Own idea" in response.content.decode()) is owner_sees


def _child_urls(app, requirement, model, post):
    return [
        ("requirement_edit", [app.pk, requirement.pk]),
        ("requirement_status", [app.pk, requirement.pk]),
        ("requirement_delete", [app.pk, requirement.pk]),
        ("monetization_edit", [app.pk, model.pk]),
        ("monetization_delete", [app.pk, model.pk]),
        ("post_edit", [app.pk, post.pk]),
        ("post_delete", [app.pk, post.pk]),
    ]


@pytest.mark.parametrize(
    "status",
    [App.Status.ACTIVE, App.Status.DRAFT, App.Status.ARCHIVED, App.Status.DELETED],
)
def test_children_of_another_users_app_cannot_be_edited_or_deleted(
    other_client, user, status
):
    app = AppFactory(owner=user, status=status)
    requirement = RequirementFactory(app=app, description="Original")
    model = MonetizationModelFactory(app=app)
    post = PostFactory(app=app, title="Original")
    data = {
        "description": "Changed",
        "priority": "LOW",
        "status": "REJECTED",
        "version": 1,
        "type": "ONE_TIME",
        "price": "1",
        "title": "Changed",
    }

    for name, args in _child_urls(app, requirement, model, post):
        assert other_client.get(reverse(name, args=args)).status_code in (404, 405)
        response = other_client.post(reverse(name, args=args), data)
        assert response.status_code == 404, name

    requirement.refresh_from_db()
    model.refresh_from_db()
    post.refresh_from_db()
    assert (requirement.description, requirement.status, requirement.version) == (
        "Original",
        "PENDING",
        1,
    )
    assert (model.type, model.price) == ("FREE", None)
    assert post.title == "Original"


def test_a_child_reached_through_another_app_of_the_owner_answers_404(
    user_client, user, other_user
):
    """The child must belong to the app in the URL, not just to any app of the
    signed-in user."""
    mine = AppFactory(owner=user)
    theirs = AppFactory(owner=other_user)
    requirement = RequirementFactory(app=theirs, description="Original")
    model = MonetizationModelFactory(app=theirs)
    post = PostFactory(app=theirs, title="Original")

    for name, args in _child_urls(theirs, requirement, model, post):
        args = [mine.pk, args[1]]
        response = user_client.post(
            reverse(name, args=args),
            {
                "description": "x",
                "priority": "LOW",
                "status": "PENDING",
                "version": 1,
                "type": "FREE",
                "title": "x",
            },
        )
        assert response.status_code == 404, name

    assert Requirement.objects.filter(pk=requirement.pk, version=1).exists()
    assert MonetizationModel.objects.filter(pk=model.pk).exists()
    assert Post.objects.filter(pk=post.pk, title="Original").exists()


def test_app_page_shows_visitors_only_published_posts(user_client, user, other_client):
    app = AppFactory(owner=user)
    PostFactory(app=app, title="Public news")
    PostFactory(app=app, title="Secret roadmap", published=False)

    visitor = other_client.get(app.get_absolute_url()).content.decode()
    owner = user_client.get(app.get_absolute_url()).content.decode()

    assert "Public news" in visitor and "Secret roadmap" not in visitor
    assert "Public news" in owner and "Secret roadmap" in owner


@pytest.mark.parametrize(
    "status", [App.Status.DRAFT, App.Status.ARCHIVED, App.Status.DELETED]
)
def test_fork_tree_and_my_apps_hide_the_names_of_other_users_hidden_apps(
    user_client, user, other_user, status
):
    parent = AppFactory(owner=other_user, name="Their parent")
    mine = services.app_fork(app=parent, actor=user)
    services.app_update(app=mine, actor=user, name="My fork", status="ACTIVE")
    child = services.app_fork(app=mine, actor=other_user)
    services.app_update(app=child, actor=other_user, name="Their child")
    App.objects.filter(pk__in=[parent.pk, child.pk]).update(status=status)
    label = "a deleted app" if status == App.Status.DELETED else "a private app"

    page = user_client.get(mine.get_absolute_url()).content.decode()
    listing = user_client.get(reverse("my_apps")).content.decode()

    assert "Their parent" not in page and "Their child" not in page
    assert page.count(label) == 2
    assert "Their parent" not in listing and label in listing


@pytest.mark.parametrize(
    "path",
    [
        "/apps/NOT-AN-ID/",
        "/apps/" + "a" * 300 + "/requirements/",
        "/apps/a_b/posts/",
        "/apps/abc/monetization/x/edit/",
    ],
)
def test_malformed_app_ids_are_404_at_routing_without_a_lookup(user_client, path):
    with CaptureQueriesContext(connection) as ctx:
        response = user_client.get(path)

    assert response.status_code == 404
    assert not any("apps_catalog" in q["sql"] for q in ctx.captured_queries)
