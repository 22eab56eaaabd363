from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.embedded_postgres import ensure_server, stop_server


class Command(BaseCommand):
    help = "Start, stop or show the embedded PostgreSQL server (no DATABASE_URL)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["start", "stop", "status"])

    def handle(self, *args, action, **options):
        pgdata = settings.DATABASES["default"].get("PGDATA")
        if not pgdata:
            raise CommandError(
                "DATABASE_URL is set: there is no embedded server to manage."
            )
        if action == "stop":
            stopped = stop_server(pgdata)
            self.stdout.write("Stopped." if stopped else "Not running.")
            return
        server = ensure_server(pgdata)
        self.stdout.write(
            f"Running: data in {server.pgdata}, socket in {server.socket_dir}"
        )
