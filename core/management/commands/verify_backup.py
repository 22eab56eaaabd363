from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.backups import BackupError, backup_verify


class Command(BaseCommand):
    help = (
        "Restore a backup into a scratch database and compare every table's row "
        "count and checksum, and the sequences, with the source; exit non-zero on "
        "any difference or restore error."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "file",
            type=Path,
            help="A backup file (encrypted *.age ones are decrypted), or s3:NAME for "
            "a copy in BACKUP_STORAGE_URL.",
        )
        parser.add_argument(
            "--manifest",
            type=Path,
            help="Manifest to compare with (default: FILE.manifest.json when present, "
            "else the live database).",
        )

    def handle(self, *args, file, manifest, **options):
        try:
            result = backup_verify(path=file, manifest=manifest)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Compared with {result.compared_with or 'nothing'}.")
        for problem in result.problems:
            self.stdout.write(self.style.ERROR(f"  {problem}"))
        if not result.ok:
            raise CommandError(f"Backup {file} FAILED verification.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Backup {file} verified: {result.tables} tables, {result.rows} rows "
                f"match ({result.seconds:.1f} s)."
            )
        )
