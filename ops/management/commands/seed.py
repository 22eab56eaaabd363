from django.core.management.base import BaseCommand

from ops.seed import database_is_empty, seed_demo


class Command(BaseCommand):
    help = (
        "Create the ADMIN_EMAIL staff user and demo data. Idempotent: a second run "
        "adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when the database already has users (used by `make run`).",
        )

    def handle(self, *args, if_empty, **options):
        if if_empty and not database_is_empty():
            self.stdout.write("Database already has data; not seeding.")
            return
        summary = seed_demo(stdout=self.stdout)
        for label, count in summary.items():
            self.stdout.write(f"  {label}: {count}")
        self.stdout.write(self.style.SUCCESS("Seed complete."))
