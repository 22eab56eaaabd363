from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("apps_catalog", "0003_admin_indexes"),
    ]

    operations = [
        # Nullable without a default: a catalog change only, no table rewrite.
        migrations.AddField(
            model_name="app",
            name="deleted_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
