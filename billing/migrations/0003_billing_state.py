from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # The index is built without locking writes: the inbox may hold millions
    # of rows. Adding a column with a constant default rewrites nothing.
    atomic = False

    dependencies = [
        ("billing", "0002_admin_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookevent",
            name="needs_attention",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="webhookevent",
            name="note",
            field=models.TextField(blank=True),
        ),
        AddIndexConcurrently(
            model_name="webhookevent",
            index=models.Index(
                condition=models.Q(("status__in", ["PROCESSED", "IGNORED"]))
                & ~models.Q(("payload", {})),
                fields=["created_at"],
                name="webhookevent_payload_kept_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="webhookevent",
            index=models.Index(
                condition=models.Q(("needs_attention", True)),
                fields=["-created_at"],
                name="webhookevent_attention_idx",
            ),
        ),
    ]
