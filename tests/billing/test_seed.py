import io

import pytest

from billing.models import WebhookEvent
from billing.seed import seed_demo

pytestmark = pytest.mark.django_db


def test_seed_creates_events_in_every_status_and_is_idempotent(admin_user):
    first = seed_demo(admin=admin_user, stdout=io.StringIO())
    second = seed_demo(admin=admin_user, stdout=io.StringIO())

    assert first == {"webhook events": WebhookEvent.objects.count()}
    assert second == {"webhook events": 0}
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == set(
        WebhookEvent.Status.values
    )
