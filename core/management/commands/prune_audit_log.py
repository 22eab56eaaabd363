from django.core.management.base import BaseCommand

from core.services import AUDIT_LOG_RETENTION_DAYS, audit_log_prune


class Command(BaseCommand):
    help = "Delete audit log rows older than the seven-year retention."

    def handle(self, *args, **options):
        deleted = audit_log_prune()
        self.stdout.write(
            f"Deleted {deleted} audit rows older than {AUDIT_LOG_RETENTION_DAYS} days."
        )
