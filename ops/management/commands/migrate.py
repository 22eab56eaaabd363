from django.core.management import call_command
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, connections

DIRECT_ALIAS = "direct"


class Command(migrate.Command):
    """Django's migrate, run through DIRECT_URL when one is configured.

    Schema changes need a real session (advisory locks, DDL in transactions),
    which a transaction-pooling PgBouncer does not give; DIRECT_URL bypasses it.
    Afterwards the database cache table is created, so a fresh database is
    usable without a separate `createcachetable` step.
    """

    def handle(self, *args, **options):
        if options["database"] == DEFAULT_DB_ALIAS and DIRECT_ALIAS in connections:
            options["database"] = DIRECT_ALIAS
            if options["verbosity"] >= 1:
                self.stdout.write("Using DIRECT_URL for migrations.")
        super().handle(*args, **options)
        call_command("createcachetable", database=options["database"], verbosity=0)
