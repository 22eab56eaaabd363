from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.backups import BackupError, backup_restore


class Command(BaseCommand):
    help = (
        "Restore a backup_db file (pg_restore, one transaction, stops at the first "
        "error). Into the configured database by default."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--yes", action="store_true", help="Confirm: the restore writes data."
        )
        parser.add_argument(
            "--clean",
            "--force",
            dest="clean",
            action="store_true",
            help="Drop the dump's objects first (needed for a non-empty database).",
        )
        parser.add_argument(
            "--database-name",
            help="Restore into this database (created if missing) instead.",
        )

    def handle(self, *args, file, yes, clean, database_name, **options):
        try:
            result = backup_restore(
                path=file, confirm=yes, clean=clean, database_name=database_name
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        created = " (created)" if result.created else ""
        self.stdout.write(
            f"Restored {file} into {result.database}{created} in "
            f"{result.seconds:.1f} s."
        )
        self.stdout.write(self.style.SUCCESS("Restore complete."))
