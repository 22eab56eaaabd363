from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.backups import BackupError, backup_restore


class Command(BaseCommand):
    help = (
        "Restore a backup_db file (pg_restore, one transaction, stops at the first "
        "error). Into the configured database by default."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "file",
            type=Path,
            nargs="?",
            help="A backup_db file (not with --point-in-time).",
        )
        parser.add_argument(
            "--point-in-time",
            metavar="TIME",
            help="Recover the database as it was at TIME (ISO 8601, e.g. "
            "2026-11-27T14:03:00Z, or 'latest' for all the WAL there is) from a "
            "base backup + archived WAL (core.pitr) into --database-name NAME, or "
            "a whole cluster into --data-dir.",
        )
        parser.add_argument(
            "--from-storage",
            action="store_true",
            help="With --point-in-time: take the base backup and the WAL from "
            "BACKUP_STORAGE_URL (shipped off-site every minute), for when this "
            "machine's copies are lost.",
        )
        parser.add_argument(
            "--data-dir",
            type=Path,
            help="With --point-in-time: leave the whole recovered cluster (stopped) "
            "in this empty directory, to replace a lost primary.",
        )
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
        parser.add_argument(
            "--no-manifest",
            action="store_true",
            help="Restore a file that has no manifest (its checksum is then "
            "not checked). FILE may also be s3:NAME, a copy in BACKUP_STORAGE_URL.",
        )

    def handle(self, *args, file, yes, clean, database_name, **options):
        if options.get("point_in_time"):
            if file is not None:
                raise CommandError("Give either a backup FILE or --point-in-time.")
            return self._point_in_time(
                options["point_in_time"],
                yes,
                database_name,
                options.get("data_dir"),
                from_storage=options.get("from_storage", False),
            )
        if options.get("from_storage"):
            raise CommandError(
                "--from-storage goes with --point-in-time; a dump from the store "
                "is restored as s3:NAME."
            )
        if file is None:
            raise CommandError("Give a backup FILE, or --point-in-time TIME.")
        try:
            result = backup_restore(
                path=file,
                confirm=yes,
                clean=clean,
                database_name=database_name,
                no_manifest=options["no_manifest"],
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        created = " (created)" if result.created else ""
        self.stdout.write(
            f"Restored {file} into {result.database}{created} in "
            f"{result.seconds:.1f} s."
        )
        self.stdout.write(self.style.SUCCESS("Restore complete."))

    def _point_in_time(self, when, yes, database_name, data_dir, *, from_storage):
        from core.pitr import pitr_restore

        try:
            result = pitr_restore(
                target_time=when,
                confirm=yes,
                database_name=database_name,
                data_dir=data_dir,
                from_storage=from_storage,
                progress=self.stdout.write,
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        recovered = (
            result.recovered_to.isoformat(timespec="milliseconds")
            if result.recovered_to
            else "no transaction replayed after the base backup"
        )
        target = (
            "the end of the WAL" if result.latest else result.target_time.isoformat()
        )
        self.stdout.write(
            f"Recovered to {target} from base backup "
            f"{result.base_backup}; last transaction replayed: {recovered}; "
            f"{result.seconds:.1f} s."
        )
        where = result.database or result.data_dir
        self.stdout.write(
            self.style.SUCCESS(f"Point-in-time restore complete: {where}.")
        )
