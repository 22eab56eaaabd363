import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import User
from core.ids import ID_LENGTH
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_email_is_unique_regardless_of_case():
    User.objects.create_user("Ada@Example.com")

    with pytest.raises(ValidationError) as excinfo:
        User.objects.create_user("ada@example.COM")
    assert "already exists" in str(excinfo.value)
    assert User.objects.count() == 1


def test_database_rejects_case_variant_duplicate_even_without_validation():
    UserFactory(email="grace@example.com")

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="GRACE@example.com")


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "two@@example.com", ""])
def test_invalid_email_is_refused(email):
    with pytest.raises((ValidationError, ValueError)):
        User.objects.create_user(email)
    assert not User.objects.exists()


def test_database_rejects_invalid_email_written_directly():
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="no-at-sign")


def test_email_longer_than_255_characters_is_refused():
    with pytest.raises(ValidationError):
        User.objects.create_user("a" * 250 + "@example.com")


def test_new_user_has_cuid_style_id_no_usable_password_and_free_tier():
    user = User.objects.create_user("new@example.com")

    assert len(user.pk) == ID_LENGTH and user.pk.isalnum() and user.pk[0].isalpha()
    assert not user.has_usable_password()
    assert user.tier == User.Tier.FREE
    assert user.role == User.Role.USER


def test_ids_are_not_sequential():
    ids = [User.objects.create_user(f"u{i}@example.com").pk for i in range(20)]

    assert ids != sorted(ids)
    assert len(set(ids)) == 20


def test_only_admin_role_is_staff():
    assert UserFactory(role=User.Role.ADMIN).is_staff
    assert not UserFactory(role=User.Role.USER).is_staff
    assert not UserFactory(role=User.Role.ADMIN, is_active=False).is_staff


def test_get_by_natural_key_ignores_case():
    user = UserFactory(email="Mixed@Example.com")

    assert User.objects.get_by_natural_key("mixed@example.com") == user
