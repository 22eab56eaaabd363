import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.exceptions import AmbiguityError
from django.db.migrations.executor import MigrationExecutor

from core.backups import PRE_MIGRATE_DIR, BackupError, backup_create, backup_dir
from core.routers import DIRECT_ALIAS


class Command(migrate.Command):
    """Django's migrate, run through DIRECT_URL when one is configured.

    Schema changes need a real session (advisory locks, DDL in transactions),
    which a transaction-pooling PgBouncer does not give; DIRECT_URL bypasses it.
    When migrations are about to be applied (or unapplied), a backup is taken
    first into BACKUP_DIR/pre-migrate/ (the newest BACKUP_PRE_MIGRATE_KEEP are
    kept, apart from the daily rotation); a failed backup stops the migration.
    Afterwards the database cache table is created, so a fresh database is
    usable without a separate `createcachetable` step.
    """

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--no-backup",
            action="store_true",
            help="Do not take the pre-migration backup.",
        )

    def handle(self, *args, **options):
        if options["database"] == DEFAULT_DB_ALIAS and self._direct_reaches_default():
            options["database"] = DIRECT_ALIAS
            if options["verbosity"] >= 1:
                self.stdout.write("Using DIRECT_URL for migrations.")
        if not options["no_backup"]:
            self._backup_if_pending(options)
        super().handle(*args, **options)
        call_command("createcachetable", database=options["database"], verbosity=0)

    def _backup_if_pending(self, options) -> None:
        # Only when the schema is about to change: not for --plan/--check/--fake,
        # nor while the test runner builds its database (its migrate must stay
        # fast, and the database is empty anyway).
        if (
            options["plan"]
            or options["check_unapplied"]
            or options["fake"]
            or options["fake_initial"]
            or options["prune"]
            or _creating_test_database()
        ):
            return
        alias = options["database"]
        pending = _pending_migrations(
            alias, options.get("app_label"), options.get("migration_name")
        )
        if not pending:
            return
        if options["verbosity"] >= 1:
            self.stdout.write(
                f"{pending} migration(s) to run: taking a pre-migration backup…"
            )
        try:
            result = backup_create(
                using=alias,
                directory=backup_dir() / PRE_MIGRATE_DIR,
                keep_last=settings.BACKUP_PRE_MIGRATE_KEEP,
            )
        except BackupError as exc:
            raise CommandError(
                f"Pre-migration backup failed, nothing migrated: {exc} "
                "(migrate --no-backup skips the backup)."
            ) from exc
        if options["verbosity"] >= 1:
            self.stdout.write(
                f"Pre-migration backup {result.path} ({result.size} bytes, "
                f"{result.seconds:.1f} s)."
            )

    @staticmethod
    def _direct_reaches_default() -> bool:
        # While the test runner creates its database, "default" already names
        # the test database but "direct" still names the real one: migrating
        # through it then would change the real database and leave the test
        # one empty.
        if DIRECT_ALIAS not in connections:
            return False
        direct = connections[DIRECT_ALIAS].settings_dict["NAME"]
        return direct == connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]


def _pending_migrations(alias: str, app_label: str | None, name: str | None) -> int:
    """How many migrations migrate would apply or unapply (its own targets).

    0 for a database with no migration applied yet: it holds nothing to lose.
    Bad arguments give 0 here; Django's migrate then reports them.
    """
    connection = connections[alias]
    connection.prepare_database()
    executor = MigrationExecutor(connection)
    if not executor.loader.applied_migrations:
        return 0
    graph = executor.loader.graph
    try:
        if app_label and name:
            if name == "zero":
                targets = [(app_label, None)]
            else:
                migration = executor.loader.get_migration_by_prefix(app_label, name)
                targets = [(app_label, migration.name)]
        elif app_label:
            targets = [key for key in graph.leaf_nodes() if key[0] == app_label]
        else:
            targets = graph.leaf_nodes()
        return len(executor.migration_plan(targets))
    except (AmbiguityError, KeyError, LookupError):
        return 0


def _creating_test_database() -> bool:
    """Whether Django's test runner is creating its database (migrate inside)."""
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "create_test_db" and "django" in code.co_filename:
            return True
        frame = frame.f_back
    return False
