import pytest

from ops.models import FeatureFlag, SystemMetric
from ops.seed_data import seed_demo


@pytest.mark.django_db
def test_seed_demo_is_idempotent(admin_user):
    first = seed_demo(admin=admin_user, stdout=None)
    second = seed_demo(admin=admin_user, stdout=None)

    assert first == {"feature flags": 3, "system metrics": 24}
    assert second == {"feature flags": 0, "system metrics": 0}
    assert FeatureFlag.objects.count() == 3
    assert SystemMetric.objects.count() == 24
    assert FeatureFlag.objects.get(key="new-search-page").created_by == admin_user


@pytest.mark.django_db
def test_seed_command_includes_ops_demo_rows():
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("seed", stdout=out)

    assert "feature flags: 3" in out.getvalue()
