"""Staff edits of users in the admin go through accounts.services and leave one
audit row each, with the old and new value of every changed field."""

import json

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialApp
from allauth.usersessions.models import UserSession
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from accounts import services
from accounts.models import MagicLink, User
from core.models import AuditLog
from tests.accounts.factories import UserFactory
from tests.accounts.test_sessions_and_admin import sign_in
from tests.admin_forms import change_form_data

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:accounts_user_changelist")
NEW_USER = {
    "role": "USER",
    "tier": "FREE",
    "is_active": "on",
    "keyword_searches_this_month": 0,
    "keyword_searches_total": 0,
}


def _change_url(user) -> str:
    return reverse("admin:accounts_user_change", args=[user.pk])


def _save(admin_client, user, **changes):
    url = _change_url(user)
    data = change_form_data(admin_client, url)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return admin_client.post(url, data)


STAFF_EDITS = [
    AuditLog.Action.UPDATED,
    AuditLog.Action.ROLE_CHANGED,
    AuditLog.Action.USER_DEACTIVATED,
]


def _rows(user):
    """The staff-edit rows about ``user`` (not their sign-ins)."""
    return list(
        AuditLog.objects.filter(
            target_type="accounts.User", target_id=user.pk, action__in=STAFF_EDITS
        )
    )


def test_tier_change_leaves_one_row_with_actor_target_and_old_and_new(
    admin_client, admin_user
):
    target = UserFactory(tier="FREE")

    response = _save(admin_client, target, tier="PRO")

    assert response.status_code == 302
    target.refresh_from_db()
    assert target.tier == "PRO"
    (row,) = _rows(target)
    assert row.action == AuditLog.Action.UPDATED
    assert (row.actor, row.actor_email) == (admin_user, admin_user.email)
    assert (row.target_id, row.target_repr) == (target.pk, target.email)
    assert row.changes == {"tier": {"old": "FREE", "new": "PRO"}}


def test_role_change_is_a_role_changed_row_with_old_and_new(admin_client):
    target = UserFactory()

    _save(admin_client, target, role="ADMIN")

    (row,) = _rows(target)
    assert row.action == AuditLog.Action.ROLE_CHANGED
    assert row.changes == {"role": {"old": "USER", "new": "ADMIN"}}
    assert User.objects.get(pk=target.pk).role == "ADMIN"


def test_deactivation_signs_out_and_records_old_and_new(admin_client):
    target = UserFactory()
    browser = sign_in(target)

    _save(admin_client, target, is_active=None)  # the box unchecked

    (row,) = _rows(target)
    assert row.action == AuditLog.Action.USER_DEACTIVATED
    assert row.changes == {"is_active": {"old": True, "new": False}}
    assert not UserSession.objects.filter(user=target).exists()
    assert browser.get("/account/").status_code == 302


def test_reactivation_records_old_and_new(admin_client):
    target = UserFactory(is_active=False)

    _save(admin_client, target, is_active="on")

    (row,) = _rows(target)
    assert row.action == AuditLog.Action.UPDATED
    assert row.changes == {"is_active": {"old": False, "new": True}}


def test_several_fields_in_one_save_are_one_row(admin_client):
    target = UserFactory(tier="FREE", name="Ada", stripe_customer_id="")

    _save(admin_client, target, tier="ENTERPRISE", name="Ada L", role="ADMIN")

    (row,) = _rows(target)
    assert row.action == AuditLog.Action.ROLE_CHANGED
    assert row.changes == {
        "name": {"old": "Ada", "new": "Ada L"},
        "role": {"old": "USER", "new": "ADMIN"},
        "tier": {"old": "FREE", "new": "ENTERPRISE"},
    }


def test_saving_without_a_change_records_nothing(admin_client):
    target = UserFactory()

    response = _save(admin_client, target)

    assert response.status_code == 302
    assert _rows(target) == []


def test_demoting_the_last_admin_changes_nothing_and_records_nothing(
    admin_client, admin_user
):
    response = _save(admin_client, admin_user, role="USER", tier="PRO")

    assert response.status_code == 200
    assert "only active admin" in str(response.context["adminform"].form.errors)
    admin_user.refresh_from_db()
    assert (admin_user.role, admin_user.tier) == ("ADMIN", "FREE")
    assert _rows(admin_user) == []


def test_the_service_refuses_the_last_admin_even_past_the_form(admin_user):
    """The form's check ran on a stale page: the service's own check, under
    lock, still refuses and the other changes of that save are not kept."""
    staff = UserFactory(role="ADMIN")
    User.objects.filter(pk=staff.pk).update(is_active=False)
    staff.is_active = True  # what the acting request loaded

    with pytest.raises(ValidationError, match="only active admin"):
        services.user_update_by_staff(
            user=admin_user,
            actor=admin_user,
            changes={"role": "USER", "tier": "PRO"},
        )

    admin_user.refresh_from_db()
    assert (admin_user.role, admin_user.tier) == ("ADMIN", "FREE")
    assert not AuditLog.objects.exists()


def test_only_staff_may_use_the_staff_update(user, other_user):
    with pytest.raises(PermissionDenied):
        services.user_update_by_staff(
            user=other_user, actor=user, changes={"tier": "PRO"}
        )
    with pytest.raises(ValidationError, match="password"):
        services.user_update_by_staff(
            user=other_user,
            actor=UserFactory(role="ADMIN"),
            changes={"password": "x"},
        )


def test_make_admin_and_make_user_leave_a_row_per_changed_user(admin_client):
    targets = UserFactory.create_batch(3)
    already = UserFactory(role="ADMIN")

    admin_client.post(
        CHANGELIST,
        {
            "action": "make_admin",
            "_selected_action": [u.pk for u in [*targets, already]],
        },
    )
    admin_client.post(
        CHANGELIST, {"action": "make_user", "_selected_action": [targets[0].pk]}
    )

    rows = AuditLog.objects.filter(action=AuditLog.Action.ROLE_CHANGED)
    promoted = rows.filter(changes__role__new="ADMIN")
    assert sorted(promoted.values_list("target_id", flat=True)) == sorted(
        u.pk for u in targets
    )
    assert all(r.changes == {"role": {"old": "USER", "new": "ADMIN"}} for r in promoted)
    (demoted,) = rows.filter(changes__role__new="USER")
    assert demoted.target_id == targets[0].pk
    assert demoted.changes == {"role": {"old": "ADMIN", "new": "USER"}}
    assert not rows.filter(target_id=already.pk).exists()


def test_deactivate_action_leaves_a_row_per_user(admin_client):
    targets = UserFactory.create_batch(2)
    UserFactory(is_active=False)

    admin_client.post(
        CHANGELIST,
        {"action": "deactivate_users", "_selected_action": [u.pk for u in targets]},
    )

    rows = AuditLog.objects.filter(action=AuditLog.Action.USER_DEACTIVATED)
    assert sorted(r.target_id for r in rows) == sorted(u.pk for u in targets)
    assert all(r.changes == {"is_active": {"old": True, "new": False}} for r in rows)


def test_secrets_never_reach_the_audit_trail(admin_client, admin_user):
    """The password hash and the TOTP secret are not form fields and never
    appear in a row, whatever staff change."""
    target = UserFactory(tier="FREE")
    admin_client.post(
        reverse("admin:accounts_user_add"),
        {**NEW_USER, "email": "new-by-staff@example.com"},
    )
    _save(admin_client, target, tier="PRO", stripe_customer_id="cus_123")

    dumped = json.dumps(list(AuditLog.objects.values_list("changes", flat=True)))
    secret = Authenticator.objects.get(user=admin_user).data["secret"]
    assert secret not in dumped
    assert target.password not in dumped
    assert "password" not in dumped
    # A Stripe id is not a secret: support needs to see it.
    (row,) = _rows(target)
    assert row.changes["stripe_customer_id"] == {"old": "", "new": "cus_123"}


def test_a_user_added_in_the_admin_is_recorded_with_its_values(
    admin_client, admin_user
):
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {**NEW_USER, "email": "added@example.com", "tier": "PRO"},
    )

    assert response.status_code == 302
    added = User.objects.get(email="added@example.com")
    (row,) = _rows(added)
    assert row.actor == admin_user
    assert row.changes["email"] == {"old": None, "new": "added@example.com"}
    assert row.changes["tier"] == {"old": None, "new": "PRO"}


# --- allauth's rows, which have no service of their own ---------------------------


def test_marking_an_address_verified_is_audited(admin_client, admin_user):
    target = UserFactory()
    address = EmailAddress.objects.create(
        user=target, email=target.email, verified=False, primary=True
    )

    admin_client.post(
        reverse("admin:account_emailaddress_changelist"),
        {"action": "make_verified", "_selected_action": [address.pk]},
    )

    (row,) = AuditLog.objects.filter(target_type="account.EmailAddress")
    assert row.actor == admin_user
    assert row.changes == {"verified": {"old": False, "new": True}}


def test_a_provider_secret_change_is_recorded_without_its_values(admin_client):
    app = SocialApp.objects.create(
        provider="github", name="GitHub", client_id="id-1", secret="old-secret"
    )
    url = reverse("admin:socialaccount_socialapp_change", args=[app.pk])
    data = change_form_data(admin_client, url)
    data.update(secret="new-secret", client_id="id-2")

    assert admin_client.post(url, data).status_code == 302

    (row,) = AuditLog.objects.filter(target_type="socialaccount.SocialApp")
    assert row.changes == {
        "client_id": {"old": "id-1", "new": "id-2"},
        "secret": "(changed)",
    }
    assert "secret" not in json.dumps(row.changes).replace('"secret"', "")


def test_ending_a_session_in_the_admin_signs_that_browser_out_and_is_audited(
    admin_client, admin_user
):
    target = UserFactory()
    browser = sign_in(target)
    session = UserSession.objects.get(user=target)

    admin_client.post(
        reverse("admin:usersessions_usersession_delete", args=[session.pk]),
        {"post": "yes"},
    )

    assert not UserSession.objects.filter(pk=session.pk).exists()
    # Not only the list's row: the browser holding the session is signed out.
    assert browser.get("/account/").status_code == 302
    (row,) = AuditLog.objects.filter(action=AuditLog.Action.SESSION_REVOKED)
    assert (row.actor_id, row.target_id) == (admin_user.pk, target.pk)
    assert row.changes["by"] == "staff"
    assert session.session_key not in json.dumps(row.changes)


def test_deleting_a_magic_link_is_audited(admin_client):
    target = UserFactory()
    sign_in(target)
    link = MagicLink.objects.get(email=target.email)

    admin_client.post(
        reverse("admin:accounts_magiclink_delete", args=[link.pk]), {"post": "yes"}
    )

    (gone_link,) = AuditLog.objects.filter(
        action=AuditLog.Action.DELETED, target_type="accounts.MagicLink"
    )
    assert gone_link.changes["token_hash"] == "(changed)"
    assert gone_link.changes["email"] == {"old": target.email, "new": None}
