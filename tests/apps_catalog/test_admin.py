import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps_catalog import services
from apps_catalog.models import App, Requirement
from tests.admin_forms import change_form_data
from tests.apps_catalog.factories import (
    AppFactory,
    MonetizationModelFactory,
    PostFactory,
    RequirementFactory,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["app", "requirement", "monetizationmodel", "post"])
def test_admin_changelist_and_change_page_render(admin_client, model):
    post = PostFactory()
    RequirementFactory(app=post.app)
    monetization = MonetizationModelFactory(app=post.app)
    obj = {
        "app": post.app,
        "requirement": post.app.requirements.get(),
        "monetizationmodel": monetization,
        "post": post,
    }[model]
    # What the list's first columns and the change form show of ``obj``.
    shown = {
        "app": post.app.name,
        "requirement": obj.description if model == "requirement" else "",
        "monetizationmodel": post.app.name,
        "post": post.title,
    }[model]

    changelist = admin_client.get(reverse(f"admin:apps_catalog_{model}_changelist"))
    change = admin_client.get(
        reverse(f"admin:apps_catalog_{model}_change", args=[obj.pk])
    )

    assert changelist.status_code == 200
    assert change.status_code == 200
    assert shown in changelist.content.decode()
    assert shown in change.content.decode()


def test_admin_is_for_staff_only(user_client):
    response = user_client.get(reverse("admin:apps_catalog_app_changelist"))

    assert response.status_code == 302


def test_admin_app_changelist_query_count_is_the_same_for_3_and_30(admin_client):
    url = reverse("admin:apps_catalog_app_changelist")

    def count():
        admin_client.get(url)
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(url).status_code == 200
        return len(ctx.captured_queries)

    for _ in range(3):
        services.app_fork(app=AppFactory(), actor=AppFactory().owner)
    few = count()
    for _ in range(27):
        services.app_fork(app=AppFactory(), actor=AppFactory().owner)
    many = count()

    assert few == many


def test_admin_actions_archive_restore_and_soft_delete_through_services(
    admin_client,
):
    parent = AppFactory()
    fork = services.app_fork(app=parent, actor=AppFactory().owner)
    App.objects.filter(pk=fork.pk).update(status=App.Status.ACTIVE)
    url = reverse("admin:apps_catalog_app_changelist")

    def act(action, *apps):
        admin_client.post(
            url, {"action": action, "_selected_action": [a.pk for a in apps]}
        )

    act("archive_apps", fork)
    assert App.objects.get(pk=fork.pk).status == App.Status.ARCHIVED
    act("restore_apps", fork)
    assert App.objects.get(pk=fork.pk).status == App.Status.ACTIVE
    act("soft_delete_apps", fork)
    assert App.objects.get(pk=fork.pk).status == App.Status.DELETED
    # The service kept the parent's fork count right.
    assert App.objects.get(pk=parent.pk).fork_count == 0
    act("restore_apps", fork)
    assert App.objects.get(pk=fork.pk).status == App.Status.DRAFT
    assert App.objects.get(pk=parent.pk).fork_count == 1


def test_admin_sees_deleted_apps(admin_client):
    AppFactory(name="Soft deleted one", status=App.Status.DELETED)

    response = admin_client.get(reverse("admin:apps_catalog_app_changelist"))

    assert "Soft deleted one" in response.content.decode()


def test_admin_requirement_edit_bumps_the_version(admin_client):
    requirement = RequirementFactory(description="Before")

    admin_client.post(
        reverse("admin:apps_catalog_requirement_change", args=[requirement.pk]),
        {
            "app": requirement.app_id,
            "description": "After",
            "priority": "HIGH",
            "status": "PENDING",
        },
    )

    requirement.refresh_from_db()
    assert (requirement.description, requirement.version) == ("After", 2)
    assert Requirement.objects.count() == 1


def test_admin_hard_delete_keeps_forks_and_counts(admin_client):
    parent = AppFactory()
    fork = services.app_fork(app=parent, actor=AppFactory().owner)

    admin_client.post(
        reverse("admin:apps_catalog_app_delete", args=[fork.pk]), {"post": "yes"}
    )

    assert not App.objects.filter(pk=fork.pk).exists()
    assert App.objects.get(pk=parent.pk).fork_count == 0


def test_admin_change_form_changes_status_only_through_the_service(admin_client):
    """Status goes through app_update_by_staff (the parent's fork count
    follows); the parent itself stays read-only."""
    parent = AppFactory()
    fork = services.app_fork(app=parent, actor=AppFactory().owner)
    other = AppFactory()

    admin_client.post(
        reverse("admin:apps_catalog_app_change", args=[fork.pk]),
        {
            "name": "Renamed by staff",
            "description": "",
            "owner": fork.owner_id,
            "status": "DELETED",
            "forked_from": other.pk,
            "domain": "",
            "requirements-TOTAL_FORMS": 0,
            "requirements-INITIAL_FORMS": 0,
            "monetization_models-TOTAL_FORMS": 0,
            "monetization_models-INITIAL_FORMS": 0,
        },
    )

    fork.refresh_from_db()
    assert (fork.name, fork.status, fork.forked_from_id) == (
        "Renamed by staff",
        App.Status.DELETED,
        parent.pk,
    )
    assert fork.deleted_at is not None
    assert App.objects.get(pk=parent.pk).fork_count == 0


def _requirement_form(admin_client, requirement):
    """The change form's fields as the page gives them (loaded_version included)."""
    url = reverse("admin:apps_catalog_requirement_change", args=[requirement.pk])
    return url, change_form_data(admin_client, url)


def test_admin_requirement_edit_made_on_a_stale_page_is_refused(admin_client):
    requirement = RequirementFactory(description="Before", priority="LOW")
    url, data = _requirement_form(admin_client, requirement)
    assert data["loaded_version"] == "1"
    # The owner edits while staff have the page open.
    services.requirement_update(
        requirement=requirement,
        actor=requirement.app.owner,
        expected_version=1,
        description="Owner's edit",
        priority="HIGH",
    )
    data["description"] = "Staff's edit"

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert services.STALE_REQUIREMENT_MESSAGE in response.content.decode()
    requirement.refresh_from_db()
    assert (requirement.description, requirement.version) == ("Owner's edit", 2)


def test_admin_requirement_edit_losing_the_race_at_save_is_refused_not_500(
    admin_client, monkeypatch
):
    # Another edit commits between the form's check and the write.
    requirement = RequirementFactory(description="Before")
    url, data = _requirement_form(admin_client, requirement)
    data["description"] = "Staff's edit"
    write = services._requirement_write

    def racing_write(*, requirement, **kwargs):
        Requirement.objects.filter(pk=requirement.pk).update(version=7)
        return write(requirement=requirement, **kwargs)

    monkeypatch.setattr(services, "_requirement_write", racing_write)

    response = admin_client.post(url, data, follow=True)

    assert response.status_code == 200
    assert services.STALE_REQUIREMENT_MESSAGE in response.content.decode()
    requirement.refresh_from_db()
    assert requirement.description == "Before"


def test_admin_inline_requirement_edit_made_on_a_stale_page_is_refused(admin_client):
    requirement = RequirementFactory(description="Before")
    url = reverse("admin:apps_catalog_app_change", args=[requirement.app_id])
    data = change_form_data(admin_client, url)
    Requirement.objects.filter(pk=requirement.pk).update(
        description="Owner's edit", version=2
    )
    data["requirements-0-description"] = "Staff's edit"

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert services.STALE_REQUIREMENT_MESSAGE in response.content.decode()
    requirement.refresh_from_db()
    assert (requirement.description, requirement.version) == ("Owner's edit", 2)
