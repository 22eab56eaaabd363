from django.db import migrations, models

# Statuses under which the current period was paid for or is on trial.
PAID_STATUSES = ["active", "trialing", "past_due"]


def paid_until_fill(apps, schema_editor):
    """Best knowledge before invoice.paid was tracked: the period end Stripe
    last reported. A past_due user's may be the unpaid period's end (the bug
    this field fixes); their next invoice.paid or renewal corrects it."""
    User = apps.get_model("accounts", "User")
    # The migration's own connection (DIRECT_URL when set), not the default
    # alias: through a pooler that would wait on this migration's own locks.
    User.objects.using(schema_editor.connection.alias).filter(
        subscription_status__in=PAID_STATUSES, subscription_ends_at__isnull=False
    ).update(paid_until=models.F("subscription_ends_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_user_drop_deleted_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="billing_action_url",
            field=models.URLField(blank=True, max_length=2048),
        ),
        migrations.AddField(
            model_name="user",
            name="paid_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="user",
            name="subscription_cancels_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(paid_until_fill, migrations.RunPython.noop),
    ]
