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
            nargs="?",
            help="A backup file (encrypted *.age ones are decrypted), or s3:NAME for "
            "a copy in BACKUP_STORAGE_URL.",
        )
        parser.add_argument(
            "--point-in-time",
            action="store_true",
            help="Instead of a file: the restore drill. Recover the database to the "
            "end of the archived WAL into a scratch database, read every row, "
            "compare its tables and migrations with the live database, drop it.",
        )
        parser.add_argument(
            "--from-storage",
            action="store_true",
            help="With --point-in-time: from the base backup and WAL in "
            "BACKUP_STORAGE_URL, as after the loss of this machine.",
        )
        parser.add_argument(
            "--manifest",
            type=Path,
            help="Manifest to compare with (default: FILE.manifest.json when present, "
            "else the live database).",
        )

    def handle(self, *args, file, manifest, **options):
        if options["point_in_time"]:
            if file is not None:
                raise CommandError("Give either a backup FILE or --point-in-time.")
            return self._point_in_time(from_storage=options["from_storage"])
        if file is None:
            raise CommandError("Give a backup FILE, or --point-in-time.")
        if options["from_storage"]:
            raise CommandError(
                "--from-storage goes with --point-in-time; a file in the store "
                "is given as s3:NAME."
            )
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

    def _point_in_time(self, *, from_storage):
        from core.pitr import pitr_verify

        try:
            result = pitr_verify(from_storage=from_storage, progress=self.stdout.write)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        for problem in result.problems:
            self.stdout.write(self.style.ERROR(f"  {problem}"))
        if not result.ok:
            raise CommandError("Point-in-time restore drill FAILED.")
        recovered = (
            result.recovered_to.isoformat(timespec="seconds")
            if result.recovered_to
            else "no transaction after the base backup"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Point-in-time restore drill ({result.source}) passed: "
                f"{result.tables} tables, {result.rows} rows readable, last "
                f"transaction {recovered}; {result.seconds:.1f} s."
            )
        )
