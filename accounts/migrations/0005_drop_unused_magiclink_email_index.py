from django.contrib.postgres.operations import RemoveIndexConcurrently
from django.db import migrations


class Migration(migrations.Migration):
    # Nothing queries links by lower(email) (the admin searches by
    # magiclink_email_prefix_idx); the index only cost a write per link.
    # Dropped without locking the table.
    atomic = False

    dependencies = [
        ("accounts", "0004_admin_indexes"),
    ]

    operations = [
        RemoveIndexConcurrently(
            model_name="magiclink",
            name="magiclink_email_created_idx",
        ),
    ]
