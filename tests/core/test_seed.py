import pytest

from core.models import FeatureFlag, SystemMetric
from core.seed import seed_demo
from core.seeding import seeders


@pytest.mark.django_db
def test_seed_demo_is_idempotent(admin_user):
    first = seed_demo(admin=admin_user, stdout=None)
    second = seed_demo(admin=admin_user, stdout=None)

    assert first == {"feature flags": 3, "system metrics": 24}
    assert second == {"feature flags": 0, "system metrics": 0}
    assert FeatureFlag.objects.count() == 3
    assert SystemMetric.objects.count() == 24
    assert FeatureFlag.objects.get(key="new-search-page").created_by == admin_user


def test_core_registers_its_demo_last_and_no_volume():
    core = seeders()[-1]

    assert core.name == "core"
    assert core.demo is seed_demo
    assert core.volume is None
