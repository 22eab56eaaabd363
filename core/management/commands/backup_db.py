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
        parser.add_argument(
            "--base",
            action="store_true",
            help="A physical base backup of the embedded cluster for point-in-time "
            "restore (pg_basebackup + pg_verifybackup, into BACKUP_DIR/base/); keeps "
            "the last BASE_BACKUP_KEEP and the archived WAL they need.",
        )

        parser.add_argument(
            "--ship-wal",
            action="store_true",
            help="Encrypt the archived WAL at rest (BACKUP_ENCRYPTION_KEY) and upload "
            "what is not yet off-site to BACKUP_STORAGE_URL; the job queue does it "
            "every minute.",
        )

    def handle(self, *args, no_prune, verify, **options):
        if options.get("ship_wal"):
            return self._ship_wal()
        if options.get("base"):
            return self._base(prune=not no_prune)
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

    def _base(self, *, prune):
        from core.pitr import base_backup_create

        try:
            result = base_backup_create(prune=prune, progress=self.stdout.write)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        backup = result.backup
        self.stdout.write(
            f"Base backup {backup.path} ({filesizeformat(backup.bytes)}, "
            f"{result.seconds:.1f} s), verified with pg_verifybackup; WAL from "
            f"{backup.start_wal}."
        )
        if result.published:
            self.stdout.write("  encrypted/uploaded as configured (BACKUP_STORAGE_URL)")
        for path in result.pruned:
            self.stdout.write(f"  pruned base backup {path.name}")
        if result.offsite_pruned is not None:
            for folder in result.offsite_pruned.base_backups:
                self.stdout.write(f"  pruned off-site base backup {folder}")
            if result.offsite_pruned.wal_files:
                self.stdout.write(
                    f"  pruned {result.offsite_pruned.wal_files} off-site WAL file(s)"
                )
        if result.wal_pruned:
            self.stdout.write(f"  pruned {result.wal_pruned} archived WAL file(s)")
        self.stdout.write(self.style.SUCCESS("Base backup complete."))

    def _ship_wal(self):
        from core.pitr_offsite import wal_ship

        try:
            result = wal_ship()
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        if result.encrypted:
            self.stdout.write(
                f"Encrypted {result.encrypted} archived WAL file(s) at rest."
            )
        if result.skipped:
            raise CommandError(f"Nothing shipped: {result.skipped}.")
        if result.shipped:
            self.stdout.write(
                f"Shipped {len(result.shipped)} WAL file(s) off-site, up to "
                f"{result.shipped[-1]}."
            )
        else:
            self.stdout.write("Every archived WAL file is already off-site.")
        self.stdout.write(self.style.SUCCESS("WAL shipping complete."))
