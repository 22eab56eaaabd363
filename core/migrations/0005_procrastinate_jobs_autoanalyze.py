from django.db import migrations

# Procrastinate's fetch query plans well only with fresh statistics on its jobs
# table: analysed while the queue was nearly empty, it scans every queued job on
# each fetch (1.25 s a fetch with 2,000 mails queued, measured by make bench;
# procrastinate#1242), so a backlog after a mail outage would drain at about a
# job a second. The default trigger (10 % of the table changed) can take weeks
# on a table holding a month of finished jobs: analyse after every 1,000 changes.
TUNE = """
ALTER TABLE procrastinate_jobs SET (
    autovacuum_analyze_scale_factor = 0.0,
    autovacuum_analyze_threshold = 1000,
    autovacuum_vacuum_scale_factor = 0.02
)
"""
RESET = """
ALTER TABLE procrastinate_jobs RESET (
    autovacuum_analyze_scale_factor,
    autovacuum_analyze_threshold,
    autovacuum_vacuum_scale_factor
)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0004_auditlog_actions"),
        ("procrastinate", "0041_post_retry_failed_job"),
    ]

    operations = [migrations.RunSQL(TUNE, RESET)]
