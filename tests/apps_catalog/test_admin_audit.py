"""Staff edits of the catalog in the admin (change forms, inlines, actions,
deletes) go through apps_catalog.services and leave an audit row each, with
old and new values; fork counts stay right."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from apps_catalog import services
from apps_catalog.models import App, MonetizationModel, Post, Requirement
from core.models import AuditLog
from tests.admin_forms import change_form_data
from tests.apps_catalog.factories import (
    AppFactory,
    MonetizationModelFactory,
    PostFactory,
    RequirementFactory,
)

pytestmark = pytest.mark.django_db

APPS = reverse("admin:apps_catalog_app_changelist")


def _rows(obj, **filters):
    return list(
        AuditLog.objects.filter(
            target_type=obj._meta.label, target_id=obj.pk, **filters
        ).order_by("created_at")
    )


def _app_url(app) -> str:
    return reverse("admin:apps_catalog_app_change", args=[app.pk])


def _save_app(admin_client, app, **changes):
    url = _app_url(app)
    data = change_form_data(admin_client, url)
    data.update(changes)
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    return response


def test_app_status_change_records_old_and_new(admin_client, admin_user):
    app = AppFactory(status=App.Status.ACTIVE)

    _save_app(admin_client, app, status="ARCHIVED")

    (row,) = _rows(app)
    assert row.action == AuditLog.Action.UPDATED
    assert (row.actor, row.target_repr) == (admin_user, app.name)
    assert row.changes == {"status": {"old": "ACTIVE", "new": "ARCHIVED"}}
    assert App.objects.get(pk=app.pk).status == App.Status.ARCHIVED


def test_deleting_and_restoring_a_fork_by_status_keeps_fork_counts(admin_client):
    parent = AppFactory()
    fork = services.app_fork(app=parent, actor=AppFactory().owner)

    _save_app(admin_client, fork, status="DELETED")
    assert App.objects.get(pk=parent.pk).fork_count == 0
    _save_app(admin_client, fork, status="ACTIVE")
    assert App.objects.get(pk=parent.pk).fork_count == 1

    deleted, restored = _rows(fork)
    assert deleted.action == AuditLog.Action.UPDATED
    assert deleted.changes["status"] == {"old": "DRAFT", "new": "DELETED"}
    assert deleted.changes["deleted_at"]["old"] is None
    assert deleted.changes["deleted_at"]["new"]
    assert restored.changes["status"] == {"old": "DELETED", "new": "ACTIVE"}
    assert restored.changes["deleted_at"]["new"] is None
    assert App.objects.get(pk=fork.pk).deleted_at is None


def test_app_details_edit_records_only_the_changed_fields(admin_client):
    app = AppFactory(name="Old name", description="Same", domain=None)

    _save_app(admin_client, app, name="New name", domain="new.example.com")

    (row,) = _rows(app)
    assert row.changes == {
        "name": {"old": "Old name", "new": "New name"},
        "domain": {"old": None, "new": "new.example.com"},
    }


def test_app_owner_change_records_the_ids(admin_client):
    app = AppFactory()
    new_owner = AppFactory().owner
    old_owner = app.owner_id

    _save_app(admin_client, app, owner=new_owner.pk)

    (row,) = _rows(app)
    assert row.changes == {"owner": {"old": old_owner, "new": new_owner.pk}}


def test_saving_an_app_unchanged_records_nothing(admin_client):
    app = AppFactory()
    RequirementFactory(app=app)
    MonetizationModelFactory(app=app)

    _save_app(admin_client, app)

    assert not AuditLog.objects.exists()


def test_inline_requirement_edit_is_versioned_and_audited(admin_client):
    app = AppFactory()
    requirement = RequirementFactory(app=app, description="Before", priority="LOW")
    url = _app_url(app)
    data = change_form_data(admin_client, url)
    data["requirements-0-description"] = "After"
    data["requirements-0-priority"] = "HIGH"

    assert admin_client.post(url, data).status_code == 302

    requirement.refresh_from_db()
    assert (requirement.description, requirement.version) == ("After", 2)
    (row,) = _rows(requirement)
    assert row.changes == {
        "description": {"old": "Before", "new": "After"},
        "priority": {"old": "LOW", "new": "HIGH"},
        "version": {"old": 1, "new": 2},
    }
    assert _rows(app) == []


def test_inline_add_and_delete_are_audited(admin_client):
    app = AppFactory()
    gone = RequirementFactory(app=app, description="Remove me")
    url = _app_url(app)
    data = change_form_data(admin_client, url)
    data["requirements-0-DELETE"] = "on"
    data.update(
        {
            "requirements-TOTAL_FORMS": "2",
            "requirements-1-app": app.pk,
            "requirements-1-description": "Added by staff",
            "requirements-1-priority": "MEDIUM",
            "requirements-1-status": "PENDING",
        }
    )

    assert admin_client.post(url, data).status_code == 302

    (deleted,) = _rows(gone)
    assert deleted.action == AuditLog.Action.DELETED
    assert deleted.changes["description"] == {"old": "Remove me", "new": None}
    added = Requirement.objects.get(app=app)
    (created,) = _rows(added)
    assert created.changes["description"] == {"old": None, "new": "Added by staff"}
    assert created.changes["app"] == {"old": None, "new": app.pk}


def test_inline_monetization_edit_is_audited(admin_client):
    app = AppFactory()
    model = MonetizationModelFactory(app=app, one_time=True)
    url = _app_url(app)
    data = change_form_data(admin_client, url)
    data["monetization_models-0-price"] = "35.00"

    assert admin_client.post(url, data).status_code == 302

    assert MonetizationModel.objects.get(pk=model.pk).price == Decimal("35.00")
    (row,) = _rows(model)
    assert row.changes == {"price": {"old": "29.00", "new": "35.00"}}


def test_requirement_and_post_admin_edits_are_audited(admin_client):
    requirement = RequirementFactory(status="PENDING")
    post = PostFactory(title="Old title", published=True)

    url = reverse("admin:apps_catalog_requirement_change", args=[requirement.pk])
    admin_client.post(
        url, {**change_form_data(admin_client, url), "status": "COMPLETED"}
    )
    post_url = reverse("admin:apps_catalog_post_change", args=[post.pk])
    data = change_form_data(admin_client, post_url)
    data["title"] = "New title"
    data.pop("published")
    admin_client.post(post_url, data)

    (row,) = _rows(requirement)
    assert row.changes["status"] == {"old": "PENDING", "new": "COMPLETED"}
    (row,) = _rows(post)
    assert row.changes == {
        "title": {"old": "Old title", "new": "New title"},
        "published": {"old": True, "new": False},
    }


def test_post_delete_keeps_its_values_in_the_trail(admin_client):
    post = PostFactory(title="Spam")

    admin_client.post(
        reverse("admin:apps_catalog_post_delete", args=[post.pk]), {"post": "yes"}
    )

    assert not Post.objects.filter(pk=post.pk).exists()
    (row,) = _rows(post)
    assert row.action == AuditLog.Action.DELETED
    assert row.changes["title"] == {"old": "Spam", "new": None}


def test_bulk_app_actions_leave_a_row_per_app(admin_client):
    parent = AppFactory()
    fork = services.app_fork(app=parent, actor=AppFactory().owner)
    apps = [*AppFactory.create_batch(2, status=App.Status.ACTIVE), fork]

    admin_client.post(
        APPS, {"action": "soft_delete_apps", "_selected_action": [a.pk for a in apps]}
    )

    for app in apps:
        (row,) = _rows(app)
        assert row.action == AuditLog.Action.DELETED
        assert row.changes["status"]["new"] == "DELETED"
    assert _rows(fork)[0].changes["status"]["old"] == "DRAFT"
    assert App.objects.get(pk=parent.pk).fork_count == 0

    admin_client.post(
        APPS, {"action": "restore_apps", "_selected_action": [a.pk for a in apps]}
    )

    for app in apps:
        _, row = _rows(app)
        assert row.changes["status"] == {"old": "DELETED", "new": "DRAFT"}
    assert App.objects.get(pk=parent.pk).fork_count == 1


def test_hard_delete_keeps_the_apps_values(admin_client):
    app = AppFactory(name="Gone for good")

    admin_client.post(
        reverse("admin:apps_catalog_app_delete", args=[app.pk]), {"post": "yes"}
    )

    (row,) = _rows(app)
    assert row.action == AuditLog.Action.DELETED
    assert row.changes["name"] == {"old": "Gone for good", "new": None}


def test_staff_edit_other_peoples_apps_only_through_the_staff_path(admin_user):
    """A page an ADMIN opens as a user (the public editor) is the owner's path:
    staff rights apply only where the admin asks for them."""
    app = AppFactory()

    with pytest.raises(PermissionDenied):
        services.app_update(app=app, actor=admin_user, name="Hijacked")
    with pytest.raises(PermissionDenied):
        services.app_archive(app=app, actor=admin_user)
    with pytest.raises(PermissionDenied):
        services.app_update_by_staff(
            app=app, actor=app.owner, changes={"name": "Owner via staff path"}
        )

    services.app_archive(app=app, actor=admin_user, by_staff=True)
    assert App.objects.get(pk=app.pk).status == App.Status.ARCHIVED


def test_recomputing_fork_counts_records_each_corrected_app(admin_client):
    parent = AppFactory()
    services.app_fork(app=parent, actor=AppFactory().owner)
    fine = AppFactory()
    App.objects.filter(pk=parent.pk).update(fork_count=7)

    admin_client.post(
        APPS, {"action": "recompute_fork_counts", "_selected_action": [fine.pk]}
    )

    assert App.objects.get(pk=parent.pk).fork_count == 1
    (row,) = AuditLog.objects.all()
    assert row.target_id == parent.pk
    assert row.changes == {"fork_count": {"old": 7, "new": 1}}
