from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from core.maintenance import MaintenanceError, vacuum_analyze


@pytest.mark.django_db(transaction=True)
def test_vacuum_analyze_named_table_updates_statistics():
    out = StringIO()

    call_command("vacuum_analyze", "ops_featureflag", stdout=out)

    assert "public.ops_featureflag" in out.getvalue()
    assert "Vacuum complete." in out.getvalue()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT last_vacuum IS NOT NULL, last_analyze IS NOT NULL"
            " FROM pg_stat_user_tables WHERE relname = 'ops_featureflag'"
        )
        assert cursor.fetchone() == (True, True)


@pytest.mark.django_db(transaction=True)
def test_vacuum_analyze_all_tables_prints_timings():
    results = vacuum_analyze()

    assert len(results) > 10
    assert all(not r.error for r in results)
    assert all(r.seconds >= 0 for r in results)


@pytest.mark.django_db(transaction=True)
def test_unknown_table_exits_non_zero():
    with pytest.raises(CommandError, match="No such table: nope"):
        call_command("vacuum_analyze", "nope", stdout=StringIO())


@pytest.mark.django_db
def test_vacuum_inside_a_transaction_is_refused():
    # pytest-django's `db` wraps the test in a transaction.
    with pytest.raises(MaintenanceError, match="transaction"):
        vacuum_analyze(tables=["ops_featureflag"])


@pytest.mark.parametrize("command", ["vacuum_analyze", "db_report"])
def test_unknown_database_alias_is_a_clear_error(command):
    with pytest.raises(CommandError, match="invalid choice: 'nope'"):
        call_command(command, "--database", "nope", stdout=StringIO())
