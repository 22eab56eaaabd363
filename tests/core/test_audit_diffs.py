"""Field diffs in the audit trail: how they are computed (core.services), how
staff read them in the admin (core.audit, AuditLogAdmin), and feature flag
edits recorded with old and new values."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.audit import changes_summary
from core.models import AuditLog, FeatureFlag
from core.services import (
    SECRET_CHANGED,
    audit_log_changes,
    field_changes,
    model_snapshot,
)
from tests.accounts.factories import UserFactory
from tests.admin_forms import change_form_data
from tests.core.factories import AuditLogFactory, FeatureFlagFactory

AUDIT_LOG = reverse("admin:ops_auditlog_changelist")


# --- the diff -------------------------------------------------------------------


def test_field_changes_keeps_only_what_differs_as_old_and_new():
    before = {"tier": "FREE", "name": "Ada", "count": 1}
    after = {"tier": "PRO", "name": "Ada", "count": 2}

    assert field_changes(before, after) == {
        "tier": {"old": "FREE", "new": "PRO"},
        "count": {"old": 1, "new": 2},
    }


def test_a_created_or_deleted_row_has_none_on_the_missing_side():
    assert field_changes({}, {"name": "New", "blank": None}) == {
        "name": {"old": None, "new": "New"}
    }
    assert field_changes({"name": "Gone"}, {}) == {"name": {"old": "Gone", "new": None}}


def test_secret_fields_are_recorded_as_changed_never_with_values():
    before = {"password": "pbkdf2$old", "totp_secret": "AAA", "token_hash": "h1"}
    after = {"password": "pbkdf2$new", "totp_secret": "BBB", "token_hash": "h2"}

    changes = field_changes(before, after)
    named = field_changes({"pin": "1234"}, {"pin": "9999"}, secret_fields=("pin",))

    assert changes == dict.fromkeys(before, SECRET_CHANGED)
    assert named == {"pin": SECRET_CHANGED}
    # Unchanged secrets are not mentioned at all.
    assert field_changes({"password": "x"}, {"password": "x"}) == {}


def test_values_are_stored_as_json():
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

    changes = field_changes(
        {"price": Decimal("9.99"), "at": None}, {"price": Decimal("19.99"), "at": when}
    )

    assert changes == {
        "price": {"old": "9.99", "new": "19.99"},
        "at": {"old": None, "new": "2026-01-02T03:04:05Z"},
    }


@pytest.mark.django_db
def test_model_snapshot_names_foreign_keys_and_leaves_out_the_key_and_auto_dates(
    admin_user,
):
    flag = FeatureFlagFactory(key="snap", created_by=admin_user, rollout_percent=5)

    snapshot = model_snapshot(flag)

    assert snapshot["created_by"] == admin_user.pk
    assert snapshot["rollout_percent"] == 5
    assert "id" not in snapshot and "updated_at" not in snapshot
    assert model_snapshot(flag, fields={"key"}) == {"key": "snap"}


@pytest.mark.django_db
def test_audit_log_changes_writes_nothing_when_nothing_changed(admin_user):
    flag = FeatureFlagFactory()

    same = audit_log_changes(
        action=AuditLog.Action.UPDATED,
        actor=admin_user,
        target=flag,
        before={"enabled": True},
        after={"enabled": True},
    )

    assert same is None
    assert not AuditLog.objects.exists()


# --- feature flags --------------------------------------------------------------


@pytest.mark.django_db
def test_feature_flag_edit_records_old_and_new(admin_client, admin_user):
    flag = FeatureFlagFactory(key="beta", enabled=True, rollout_percent=10)
    allowed = UserFactory()
    url = reverse("admin:ops_featureflag_change", args=[flag.pk])
    data = change_form_data(admin_client, url)
    data.pop("enabled")
    data.update(rollout_percent="50", allowed_users=[allowed.pk])

    assert admin_client.post(url, data).status_code == 302

    (row,) = AuditLog.objects.filter(action=AuditLog.Action.FLAG_CHANGED)
    assert (row.actor, row.target_id) == (admin_user, flag.pk)
    assert row.changes == {
        "enabled": {"old": True, "new": False},
        "rollout_percent": {"old": 10, "new": 50},
        "allowed_users": {"old": [], "new": [allowed.pk]},
    }


@pytest.mark.django_db
def test_feature_flag_saved_unchanged_records_nothing(admin_client):
    flag = FeatureFlagFactory(key="calm")
    url = reverse("admin:ops_featureflag_change", args=[flag.pk])

    admin_client.post(url, change_form_data(admin_client, url))

    assert not AuditLog.objects.exists()


# --- reading the trail ------------------------------------------------------------


def test_summary_reads_as_field_old_arrow_new():
    assert (
        changes_summary(
            {
                "tier": {"old": "FREE", "new": "PRO"},
                "domain": {"old": None, "new": ""},
                "password": SECRET_CHANGED,
            }
        )
        == "tier: FREE → PRO; domain: — → (empty); password: (changed)"
    )
    # Rows written before the diffs: [old, new] pairs and plain facts.
    assert changes_summary({"role": ["USER", "ADMIN"], "by": "staff"}) == (
        "role: USER → ADMIN; by: staff"
    )
    many = {f"f{i}": {"old": i, "new": i + 1} for i in range(6)}
    assert changes_summary(many).endswith("; +2 more")


@pytest.mark.django_db
def test_audit_log_list_shows_a_short_diff_without_loading_the_json(admin_client):
    long_text = "x" * 5000
    AuditLogFactory(changes={"tier": {"old": "FREE", "new": "PRO"}})
    AuditLogFactory(changes={"description": {"old": long_text, "new": "short"}})
    AuditLogFactory(changes={"role": ["USER", "ADMIN"]})
    admin_client.get(AUDIT_LOG)

    with CaptureQueriesContext(connection) as ctx:
        response = admin_client.get(AUDIT_LOG)

    html = response.content.decode()
    assert "tier: FREE → PRO" in html
    assert "role: USER → ADMIN" in html
    assert "description: " + "x" * 39 + "… → short" in html
    # The page's rows never select the changes column, and the diffs' one
    # query sends only the cut values.
    rows_sql = [
        q["sql"] for q in ctx.captured_queries if 'FROM "ops_auditlog"' in q["sql"]
    ]
    assert not any('"ops_auditlog"."changes" FROM' in sql for sql in rows_sql)
    assert sum("jsonb_each" in sql for sql in rows_sql) == 1


@pytest.mark.django_db
def test_audit_log_list_queries_do_not_grow_with_diffs(admin_client):
    def count():
        with CaptureQueriesContext(connection) as ctx:
            admin_client.get(AUDIT_LOG)
        return len(ctx.captured_queries)

    AuditLogFactory(changes={"a": {"old": 1, "new": 2}})
    admin_client.get(AUDIT_LOG)
    few = count()
    for i in range(30):
        AuditLogFactory(changes={f"f{i}": {"old": i, "new": i + 1}})

    assert count() == few


@pytest.mark.django_db
def test_audit_log_page_shows_each_field_old_and_new(admin_client):
    row = AuditLogFactory(
        changes={
            "tier": {"old": "FREE", "new": "PRO"},
            "password": SECRET_CHANGED,
            "note": {"old": "<b>", "new": None},
        }
    )

    response = admin_client.get(reverse("admin:ops_auditlog_change", args=[row.pk]))

    html = response.content.decode()
    assert 'class="audit-diff"' in html
    assert '<th scope="row">tier</th>' in html
    assert ">FREE</td>" in html and ">PRO</td>" in html
    assert ">(changed)</td>" in html
    assert "&lt;b&gt;" in html and "<b>" not in html.split("audit-diff", 1)[1]
    # The raw JSON field is not shown besides the table.
    assert "id_changes" not in html


@pytest.mark.django_db
def test_feature_flag_row_reads_in_the_list(admin_client):
    flag = FeatureFlag.objects.create(key="visible", rollout_percent=1)
    AuditLogFactory(
        action=AuditLog.Action.FLAG_CHANGED,
        target_type="ops.FeatureFlag",
        target_id=flag.pk,
        changes={"rollout_percent": {"old": 1, "new": 100}},
    )

    html = admin_client.get(AUDIT_LOG).content.decode()

    assert "rollout_percent: 1 → 100" in html
