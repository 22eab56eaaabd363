from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from core.maintenance import MaintenanceError, vacuum_analyze


class Command(BaseCommand):
    help = "VACUUM (ANALYZE) every table, or the given ones; prints timings."

    def add_arguments(self, parser):
        parser.add_argument("tables", nargs="*", help="table names (default: all)")
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, choices=list(connections)
        )

    def handle(self, *args, tables, database, **options):
        try:
            results = vacuum_analyze(tables=tables or None, using=database)
        except MaintenanceError as exc:
            raise CommandError(str(exc)) from exc
        failed = [r for r in results if r.error]
        for r in results:
            status = f"FAILED: {r.error}" if r.error else "ok"
            self.stdout.write(f"  {r.table:<50} {r.seconds * 1000:>9.1f} ms  {status}")
        total = sum(r.seconds for r in results)
        self.stdout.write(f"{len(results)} tables in {total:.2f} s.")
        if failed:
            raise CommandError(f"{len(failed)} table(s) failed.")
        self.stdout.write(self.style.SUCCESS("Vacuum complete."))
