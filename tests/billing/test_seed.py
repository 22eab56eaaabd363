import io

import pytest

from billing.models import WebhookEvent
from billing.seed import seed_demo
from core.seeding import seeders

pytestmark = pytest.mark.django_db


def test_seed_creates_events_in_every_status_and_is_idempotent(admin_user):
    first = seed_demo(admin=admin_user, stdout=io.StringIO())
    second = seed_demo(admin=admin_user, stdout=io.StringIO())

    assert first == {"webhook events": WebhookEvent.objects.count()}
    assert second == {"webhook events": 0}
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == set(
        WebhookEvent.Status.values
    )


def test_billing_registers_a_demo_after_the_apps_it_bills_and_no_volume():
    names = [s.name for s in seeders()]
    billing = next(s for s in seeders() if s.name == "billing")

    assert billing.demo is seed_demo and billing.volume is None
    assert names.index("billing") > names.index("searches")
