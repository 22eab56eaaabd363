from django.core.management.base import BaseCommand, CommandError

from core.health import health_report
from core.services import health_metrics_record


class Command(BaseCommand):
    help = (
        "Check the database (round trip, version, connections), the cache, the "
        "job queue and the read replica's lag; exit non-zero unless all is well. "
        "Records the response time as a metric."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-record",
            action="store_true",
            help="Do not store the response time and connections in SystemMetric.",
        )

    def handle(self, *args, no_record, **options):
        report = health_report()
        db = report["database"]
        if db["connected"]:
            conns = db["connections"]
            self.stdout.write(
                f"Database: connected in {db['response_time_ms']} ms "
                f"(PostgreSQL {db['server_version']}, "
                f"{conns['used']}/{conns['max']} connections)"
            )
            cache = report["cache"]
            if cache["ok"]:
                self.stdout.write(f"Cache: ok in {cache['response_time_ms']} ms")
            else:
                self.stdout.write(f"Cache: FAILED ({cache.get('error', 'no echo')})")
            if not no_record:
                health_metrics_record(
                    database=db, source="db_health", replica=report.get("replica")
                )
        else:
            self.stdout.write(
                f"Database: UNREACHABLE after {db['response_time_ms']} ms "
                f"({db.get('error', 'error')})"
            )
        archiver = db.get("archiver")
        if archiver:
            self.stdout.write(_archiver_line(archiver))
        replica = report.get("replica")
        if replica:
            self.stdout.write(_replica_line(replica))
        for warning in report["warnings"]:
            self.stdout.write(self.style.WARNING(f"Warning: {warning}"))
        queue = report.get("queue") or {}
        if queue:
            self.stdout.write(f"Job queue: {queue.get('status', '?')}")
        if report["status"] == "degraded":
            # Pages are served, but something needs looking at (the warnings).
            raise CommandError("Degraded.")
        if report["status"] != "ok":
            raise CommandError("Unhealthy.")
        self.stdout.write(self.style.SUCCESS("Healthy."))


def _replica_line(replica: dict) -> str:
    if not replica["connected"]:
        error = replica.get("error", "error")
        return f"Replica: UNREACHABLE ({error}); reads use the primary"
    seconds = replica["lag_seconds"]
    seconds = "unknown" if seconds is None else f"{seconds:.1f} s"
    state = "" if replica["in_recovery"] else ", not in recovery"
    if replica["replay_paused"]:
        state += ", replay paused"
    return (
        f"Replica: lag {seconds}, {replica['lag_bytes']} bytes{state} "
        f"(limit {replica['max_lag_seconds']:g} s); reads use the {replica['reads']}"
    )


def _archiver_line(archiver: dict) -> str:
    state = "FAILING" if archiver["failing"] else "ok"
    last = archiver["last_archived_wal"]
    done = (
        f"last archived {last} at {archiver['last_archived_at']}"
        if last
        else ("nothing archived yet")
    )
    return f"WAL archiving: {state}, {done}"
