from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections


@pytest.fixture
def direct_alias(django_db_setup, django_db_blocker):
    connections.settings["direct"] = {**connections.settings["default"]}
    try:
        yield
    finally:
        connections["direct"].close()
        del connections.settings["direct"]
        del connections["direct"]


def test_migrate_runs_through_direct_url_when_configured(
    direct_alias, django_db_blocker
):
    out = StringIO()

    with django_db_blocker.unblock():
        call_command("migrate", "--plan", stdout=out)

    assert "Using DIRECT_URL for migrations." in out.getvalue()


@pytest.mark.django_db
def test_migrate_uses_default_connection_without_direct_url():
    out = StringIO()

    call_command("migrate", "--plan", stdout=out)

    assert "DIRECT_URL" not in out.getvalue()


def test_migrate_stays_on_default_when_direct_names_another_database(
    direct_alias, django_db_blocker
):
    # As during test-database creation: default already points at the test DB.
    connections.settings["direct"]["NAME"] = "the_real_database"
    out = StringIO()

    with django_db_blocker.unblock():
        call_command("migrate", "--plan", stdout=out)

    assert "DIRECT_URL" not in out.getvalue()
