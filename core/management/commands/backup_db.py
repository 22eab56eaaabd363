from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat

from core.backups import BackupError, backup_create


class Command(BaseCommand):
    help = (
        "pg_dump (custom format) the database into BACKUP_DIR, then apply retention "
        "(30 daily, 12 weekly, 12 monthly)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-prune", action="store_true", help="Keep every older backup."
        )
        parser.add_argument(
            "--verify",
            action="store_true",
            help="Verify the new backup (as verify_backup) before pruning older ones.",
        )

    def handle(self, *args, no_prune, verify, **options):
        try:
            result = backup_create(prune=not no_prune, verify=verify)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Backed up {result.tables} tables to {result.path} "
            f"({filesizeformat(result.size)}, {result.seconds:.1f} s)."
        )
        if result.verification is not None:
            self.stdout.write(
                f"Verified: {result.verification.tables} tables, "
                f"{result.verification.rows} rows match."
            )
        for path in result.pruned:
            self.stdout.write(f"  pruned {path.name}")
        self.stdout.write(self.style.SUCCESS("Backup complete."))
