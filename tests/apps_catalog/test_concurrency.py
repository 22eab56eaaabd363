"""Status changes racing on one app: the parent's fork count moves once."""

import pytest
from django.core.exceptions import ValidationError

from apps_catalog import services
from apps_catalog.models import App
from core.models import AuditLog
from tests.accounts.factories import UserFactory
from tests.apps_catalog.factories import AppFactory
from tests.concurrency import run_at_once

pytestmark = pytest.mark.django_db(transaction=True)


def _parent_with_fork():
    owner = UserFactory()
    parent = AppFactory()
    fork = services.app_fork(app=parent, actor=owner)
    services.app_fork(app=parent, actor=UserFactory())  # a second, untouched fork
    return parent, fork, owner


def test_five_concurrent_deletes_of_one_fork_lower_the_parent_count_once():
    parent, fork, owner = _parent_with_fork()
    # Each request loaded the app (still DRAFT) before any of them wrote.
    loaded = [App.objects.get(pk=fork.pk) for _ in range(5)]

    run_at_once(5, lambda i: services.app_delete(app=loaded[i], actor=owner))

    parent.refresh_from_db()
    assert parent.fork_count == 1
    assert App.objects.get(pk=fork.pk).status == App.Status.DELETED
    deletions = AuditLog.objects.filter(
        action=AuditLog.Action.DELETED, target_id=fork.pk
    )
    assert deletions.count() == 1


def test_five_concurrent_restores_of_one_fork_raise_the_parent_count_once():
    parent, fork, owner = _parent_with_fork()
    services.app_delete(app=fork, actor=owner)
    loaded = [App.objects.get(pk=fork.pk) for _ in range(5)]

    run_at_once(5, lambda i: services.app_restore(app=loaded[i], actor=owner))

    parent.refresh_from_db()
    assert parent.fork_count == 2
    assert App.objects.get(pk=fork.pk).status == App.Status.DRAFT


def test_an_edit_loaded_before_a_delete_does_not_bring_the_app_back():
    parent, fork, owner = _parent_with_fork()
    stale = App.objects.get(pk=fork.pk)  # the edit page loaded it
    services.app_delete(app=App.objects.get(pk=fork.pk), actor=owner)

    with pytest.raises(ValidationError) as exc:
        services.app_update(
            app=stale, actor=owner, name="Back", status=App.Status.ACTIVE
        )

    assert "delete and restore" in str(exc.value)
    parent.refresh_from_db()
    assert parent.fork_count == 1
    assert App.objects.get(pk=fork.pk).status == App.Status.DELETED
