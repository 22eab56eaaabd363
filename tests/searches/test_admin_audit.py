"""A saved search's rename and deletion in the admin are audited."""

import pytest
from django.urls import reverse

from core.models import AuditLog
from searches.models import SavedSearch
from tests.searches.factories import SavedSearchFactory

pytestmark = pytest.mark.django_db


def test_rename_records_old_and_new_name(admin_client, admin_user):
    saved = SavedSearchFactory(name="Before")

    admin_client.post(
        reverse("admin:searches_savedsearch_change", args=[saved.pk]),
        {"name": "After"},
    )

    (row,) = AuditLog.objects.filter(target_id=saved.pk)
    assert (row.action, row.actor) == (AuditLog.Action.UPDATED, admin_user)
    assert row.changes == {"name": {"old": "Before", "new": "After"}}


def test_bulk_delete_leaves_a_row_per_search_without_the_results(admin_client):
    searches = SavedSearchFactory.create_batch(2)

    admin_client.post(
        reverse("admin:searches_savedsearch_changelist"),
        {
            "action": "delete_selected",
            "_selected_action": [s.pk for s in searches],
            "post": "yes",
        },
    )

    assert not SavedSearch.objects.exists()
    rows = AuditLog.objects.filter(action=AuditLog.Action.DELETED)
    assert sorted(r.target_id for r in rows) == sorted(s.pk for s in searches)
    for row in rows:
        assert row.changes["name"]["new"] is None
        assert "results" not in row.changes
