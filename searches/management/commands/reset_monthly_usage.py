from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from searches.services import usage_reset_monthly


class Command(BaseCommand):
    help = "Zero the monthly keyword counter of users whose reset date has passed."

    def handle(self, *args, **options):
        try:
            count = usage_reset_monthly()
        except DatabaseError as exc:
            raise CommandError(f"Resetting monthly usage failed: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Reset the monthly keyword usage of {count} "
                f"user{'s' if count != 1 else ''}."
            )
        )
