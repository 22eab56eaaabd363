"""APIUsage.key_prefix: which API key made a call.

The column has a database default, so adding it to a table of millions of
rows is a catalog change (no rewrite), and bulk COPY loads that leave it out
still work. The partial index holds only rows made with a key and is built
concurrently: writes to the usage table never wait for it.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("searches", "0005_admin_substring_search"),
    ]

    operations = [
        migrations.AddField(
            model_name="apiusage",
            name="key_prefix",
            field=models.CharField(
                blank=True, db_default="", default="", max_length=16
            ),
        ),
        AddIndexConcurrently(
            model_name="apiusage",
            index=models.Index(
                condition=~models.Q(key_prefix=""),
                fields=["key_prefix", "timestamp"],
                name="apiusage_key_time_idx",
            ),
        ),
    ]
