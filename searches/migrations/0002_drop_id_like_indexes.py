"""Drop the varchar_pattern_ops copies of the id indexes on the two log tables.

Django adds a second ``*_like`` index to every varchar primary key for LIKE
'prefix%' queries. Nothing searches ids by prefix, and on tables of tens of
millions of rows the copy costs as much disk as the primary key itself (47 MB
per million history rows, measured) and slows every insert.
"""

from django.db import migrations

LIKE_INDEXES = {
    "searches_searchhistory": "searches_searchhistory_id_1e1cdb58_like",
    "searches_apiusage": "searches_apiusage_id_ede6e4c0_like",
}


class Migration(migrations.Migration):
    dependencies = [("searches", "0001_initial")]

    operations = [
        migrations.RunSQL(
            sql=f'DROP INDEX IF EXISTS "{index}"',
            reverse_sql=(
                f'CREATE INDEX IF NOT EXISTS "{index}" ON "{table}" '
                '("id" varchar_pattern_ops)'
            ),
        )
        for table, index in LIKE_INDEXES.items()
    ]
