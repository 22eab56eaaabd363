"""The owner's trash (``deleted_at``) and "a FREE model has no price".

Each constraint is added NOT VALID first, so rows written from then on are
checked while the old ones are fixed; VALIDATE then scans the table without
blocking writes. The index is built concurrently for the same reason.
"""

from django.contrib.postgres.operations import (
    AddConstraintNotValid,
    AddIndexConcurrently,
    ValidateConstraint,
)
from django.db import migrations, models


def free_models_drop_price(apps, schema_editor) -> int:
    """FREE monetization models carry no price (the editor used to keep one
    after a type change, and the app page showed "Free · $9.99")."""
    MonetizationModel = apps.get_model("apps_catalog", "MonetizationModel")
    return MonetizationModel.objects.filter(type="FREE", price__isnull=False).update(
        price=None, subscription_interval=""
    )


def deleted_apps_date(apps, schema_editor) -> int:
    """Apps deleted before the trash existed: their last change is the best
    known deletion date, so recent ones appear in their owner's trash."""
    App = apps.get_model("apps_catalog", "App")
    return App.objects.filter(status="DELETED", deleted_at__isnull=True).update(
        deleted_at=models.F("updated_at")
    )


def fix_rows(apps, schema_editor) -> None:
    free_models_drop_price(apps, schema_editor)
    deleted_apps_date(apps, schema_editor)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("apps_catalog", "0004_app_deleted_at"),
    ]

    operations = [
        AddConstraintNotValid(
            model_name="monetizationmodel",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("type", "FREE"), _negated=True),
                    ("price__isnull", True),
                    _connector="OR",
                ),
                name="monetization_free_no_price",
                violation_error_code="monetization_free_no_price",
                violation_error_message="A free model has no price.",
            ),
        ),
        AddConstraintNotValid(
            model_name="app",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("deleted_at__isnull", True), ("status", "DELETED"), _connector="OR"
                ),
                name="app_deleted_at_only_when_deleted",
            ),
        ),
        migrations.RunPython(fix_rows, migrations.RunPython.noop, atomic=True),
        ValidateConstraint(
            model_name="monetizationmodel", name="monetization_free_no_price"
        ),
        ValidateConstraint(model_name="app", name="app_deleted_at_only_when_deleted"),
        AddIndexConcurrently(
            model_name="app",
            index=models.Index(
                condition=models.Q(("status", "DELETED")),
                fields=["owner", "-deleted_at", "-id"],
                name="app_owner_trash_idx",
            ),
        ),
    ]
