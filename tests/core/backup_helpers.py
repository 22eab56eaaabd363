"""Helpers of the backup and point-in-time tests (fixtures are in conftest)."""

import datetime as dt
import json
import time
from io import StringIO
from pathlib import Path

from django.core.management import call_command

from core import pitr
from core.backups import database_fingerprint, target_for

BUCKET = "launchpad-backups"
AWS_SECRET = "moto-secret-never-logged"


def fingerprint(dbname=None):
    with target_for().connect(dbname) as conn:
        return database_fingerprint(conn)


def fake_base_backup(when: dt.datetime, start_wal: str) -> Path:
    """A base backup's record without the copy: enough for the window and
    retention, and seconds cheaper than pg_basebackup of the shared cluster."""
    path = pitr.base_backups_dir() / when.strftime(pitr.TIMESTAMP_FORMAT)
    path.mkdir()
    info = {
        "started_at": when.isoformat(),
        "finished_at": (when + dt.timedelta(seconds=5)).isoformat(),
        "start_wal": start_wal,
        "timeline": 1,
        "bytes": 0,
    }
    pitr.info_path(path).write_text(json.dumps(info))
    return path


def base_backup_take() -> pitr.BaseBackup:
    """A real base backup of the shared cluster (``backup_db --base``)."""
    # --no-prune: the live archive is the developer's; never prune it here.
    call_command("backup_db", "--base", "--no-prune", stdout=StringIO())
    return pitr.base_backups()[-1]


def point_in_time_restore(scratch_databases, when, *options, prefix="pitr"):
    """``restore_db --point-in-time WHEN [options]`` into a new scratch
    database (dropped after the test); returns (its name, the output)."""
    name = f"{prefix}_{time.time_ns()}"
    scratch_databases.append(name)
    out = StringIO()
    call_command(
        "restore_db",
        "--point-in-time",
        when,
        *options,
        "--database-name",
        name,
        "--yes",
        stdout=out,
    )
    return name, out.getvalue()
