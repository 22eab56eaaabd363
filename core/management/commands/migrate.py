from django.core.management import call_command
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, connections

from core.routers import DIRECT_ALIAS


class Command(migrate.Command):
    """Django's migrate, run through DIRECT_URL when one is configured.

    Schema changes need a real session (advisory locks, DDL in transactions),
    which a transaction-pooling PgBouncer does not give; DIRECT_URL bypasses it.
    Afterwards the database cache table is created, so a fresh database is
    usable without a separate `createcachetable` step.
    """

    def handle(self, *args, **options):
        if options["database"] == DEFAULT_DB_ALIAS and self._direct_reaches_default():
            options["database"] = DIRECT_ALIAS
            if options["verbosity"] >= 1:
                self.stdout.write("Using DIRECT_URL for migrations.")
        super().handle(*args, **options)
        call_command("createcachetable", database=options["database"], verbosity=0)

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
