from django.core.management.base import BaseCommand, CommandError

from accounts.services import cleanup_expired


class Command(BaseCommand):
    help = (
        "Delete expired magic links (and used ones older than a day), expired "
        "sessions and allauth user sessions whose session is gone."
    )

    def handle(self, *args, **options):
        try:
            counts = cleanup_expired()
        except Exception as exc:  # any failure must give a non-zero exit
            raise CommandError(f"cleanup_expired failed: {exc}") from exc
        for label, count in counts.items():
            self.stdout.write(f"{label}: {count} deleted")
        self.stdout.write(self.style.SUCCESS(f"Done: {sum(counts.values())} rows."))
