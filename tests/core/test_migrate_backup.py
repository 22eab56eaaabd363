"""`migrate` backs up first when it has migrations to run (the release step)."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from core.backups import PRE_MIGRATE_DIR, backup_name, backups_in, manifest_path

pytestmark = pytest.mark.django_db(transaction=True)

# core's (label "ops") newest migration only changes choices: cheap both ways.
APP, PREVIOUS = "ops", "0008_admin_substring_search"


def _pre_migrate(backup_dir):
    folder = backup_dir / PRE_MIGRATE_DIR
    if not folder.exists():
        return []
    return [p for _, p in backups_in(folder, connection.settings_dict["NAME"])]


def test_pending_migrations_take_a_backup_apart_from_the_rotation(backup_dir, settings):
    prefix = connection.settings_dict["NAME"]
    out = StringIO()
    try:
        # Nothing pending: nothing taken.
        call_command("migrate", stdout=out)
        assert _pre_migrate(backup_dir) == []
        # --no-backup: nothing taken, though a migration is unapplied.
        call_command("migrate", APP, PREVIOUS, "--no-backup", stdout=out)
        assert _pre_migrate(backup_dir) == []

        # Eleven older pre-migration backups: the new one makes twelve, the
        # newest BACKUP_PRE_MIGRATE_KEEP (10) stay.
        folder = backup_dir / PRE_MIGRATE_DIR
        folder.mkdir(parents=True)
        old = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        for day in range(11):
            (folder / backup_name(prefix, old + dt.timedelta(days=day))).write_bytes(
                b"x"
            )

        call_command("migrate", stdout=out)
    finally:
        call_command("migrate", "--no-backup", stdout=StringIO())

    taken = _pre_migrate(backup_dir)
    assert len(taken) == settings.BACKUP_PRE_MIGRATE_KEEP
    newest = taken[0]
    assert newest.stat().st_size > 1000
    assert manifest_path(newest).is_file()
    assert "pre-migration backup" in out.getvalue()
    # Not part of the daily/weekly/monthly rotation.
    assert backups_in(backup_dir, prefix) == []
