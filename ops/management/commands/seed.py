from django.core.management.base import BaseCommand, CommandError

from core.seeding import VolumeError, volume_count_parse
from ops.seed import database_is_empty, seed_demo, seed_volume


class Command(BaseCommand):
    help = (
        "Create the ADMIN_EMAIL staff user and demo data (idempotent: a second run "
        "adds nothing); --users/--apps/--searches add that many rows on top, "
        "through COPY."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when the database already has users (used by `make run`).",
        )
        # Parsed by volume_count_parse so a bad value gets a readable error.
        parser.add_argument("--users", default="0", help="Add N users.")
        parser.add_argument(
            "--apps", default="0", help="Add N apps (with requirements, monetization)."
        )
        parser.add_argument(
            "--searches",
            default="0",
            help="Add N search-history rows (and N/10 API usage rows).",
        )
        parser.add_argument(
            "--batch-size", default="100000", help="Rows per COPY (default 100000)."
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="No progress bars."
        )

    def handle(self, *args, if_empty, **options):
        try:
            volume = {
                name: volume_count_parse(options[name], name=name)
                for name in ("users", "apps", "searches")
            }
            batch_size = volume_count_parse(options["batch_size"], name="batch-size")
        except VolumeError as exc:
            raise CommandError(str(exc)) from exc
        if batch_size == 0:
            raise CommandError("--batch-size must be at least 1.")

        if if_empty and not database_is_empty():
            self.stdout.write("Database already has data; not seeding.")
        else:
            summary = seed_demo(stdout=self.stdout)
            for label, count in summary.items():
                self.stdout.write(f"  {label}: {count}")
            self.stdout.write(self.style.SUCCESS("Seed complete."))

        if any(volume.values()):
            try:
                result = seed_volume(
                    **volume,
                    batch_size=batch_size,
                    progress=not options["no_progress"],
                )
            except VolumeError as exc:
                raise CommandError(str(exc)) from exc
            for label, count in result.counts.items():
                self.stdout.write(f"  added {label}: {count}")
            for label, seconds in result.seconds.items():
                self.stdout.write(f"  {label}: {seconds:.1f} s")
            self.stdout.write(self.style.SUCCESS("Volume added."))
