from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS, connections
from django.template.defaultfilters import filesizeformat

from core.monitoring import database_report


class Command(BaseCommand):
    help = (
        "Print the database report (same numbers as the admin dashboard): "
        "connections, slowest statements, table and index sizes, index usage."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, choices=list(connections)
        )

    def handle(self, *args, database, **options):
        report = database_report(database)
        out = self.stdout.write
        out(
            f"Database {report.database} (PostgreSQL {report.server_version}): "
            f"{filesizeformat(report.database_size)}"
        )
        out("")
        out(f"Connections ({report.connections_total} of {report.max_connections}):")
        for row in report.connections:
            out(f"  {row['state']:<30} {row['count']:>6}")
        out("")
        out("Slowest statements (mean time):")
        if not report.statements_available:
            out(f"  {report.statements_note}")
        for row in report.statements:
            query = " ".join(row["query"].split())[:100]
            out(f"  {row['mean_ms']:>10.2f} ms  {row['calls']:>8} calls  {query}")
        out("")
        out("Tables (largest first; rows are estimates):")
        for row in report.tables:
            rows = row["estimated_rows"]
            rows = "?" if rows is None else rows
            out(
                f"  {row['name']:<40} {filesizeformat(row['total_bytes']):>10}"
                f"  ~{rows:>10} rows  "
                f"{'#' * max(1, round(row['bar_pct'] / 5))}"
            )
        out("")
        out("Indexes (largest first):")
        for row in report.indexes:
            out(
                f"  {row['name']:<50} {filesizeformat(row['bytes']):>10}"
                f"  {row['scans']:>10} scans"
            )
        out("")
        out("Unused indexes (never scanned, not enforcing a constraint):")
        if not report.unused_indexes:
            out("  none")
        for row in report.unused_indexes:
            out(
                f"  {row['table']}.{row['name']:<50} {filesizeformat(row['bytes']):>10}"
            )
