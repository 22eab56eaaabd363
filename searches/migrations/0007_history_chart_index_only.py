from django.contrib.postgres.operations import (
    AddIndexConcurrently,
    RemoveIndexConcurrently,
)
from django.db import migrations, models


class Migration(migrations.Migration):
    # searchhist_user_time_idx gains keyword_count (INCLUDE) so the history
    # chart reads the index alone. Built under a temporary name without locking
    # writes, then swapped in: the history page keeps an index all along.
    atomic = False

    dependencies = [
        ("searches", "0006_apiusage_key_prefix"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="searchhistory",
            index=models.Index(
                fields=["user", "-searched_at", "-id"],
                include=["keyword_count"],
                name="searchhist_user_time_kw_idx",
            ),
        ),
        RemoveIndexConcurrently(
            model_name="searchhistory",
            name="searchhist_user_time_idx",
        ),
        migrations.RenameIndex(
            model_name="searchhistory",
            new_name="searchhist_user_time_idx",
            old_name="searchhist_user_time_kw_idx",
        ),
    ]
