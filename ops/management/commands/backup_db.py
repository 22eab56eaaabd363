from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat

from ops.backups import BackupError, backup_create


class Command(BaseCommand):
    help = (
        "pg_dump (custom format) the database into BACKUP_DIR, then apply retention "
        "(30 daily, 12 weekly, 12 monthly)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-prune", action="store_true", help="Keep every older backup."
        )

    def handle(self, *args, no_prune, **options):
        try:
            result = backup_create(prune=not no_prune)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Backed up {result.tables} tables to {result.path} "
            f"({filesizeformat(result.size)}, {result.seconds:.1f} s)."
        )
        for path in result.pruned:
            self.stdout.write(f"  pruned {path.name}")
        self.stdout.write(self.style.SUCCESS("Backup complete."))
