"""A third-party client in CI: schemathesis reads /api/v1/openapi.json from a
running test server and fuzzes every operation with a real key — valid and
invalid data — running every check it has (no server errors, status codes and
content types and headers as documented, responses that match their schema,
invalid data refused, valid data accepted, …).

Bounded: MAX_EXAMPLES per operation and mode keeps the whole run to about a
minute on two cores.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api.services import api_key_create
from tests.accounts.factories import UserFactory

MAX_EXAMPLES = 30

# Every operation the API offers. A new one must be added here, which is the
# reminder that schemathesis now fuzzes it too (it fuzzes whatever the schema lists).
EXPECTED_OPERATIONS = {
    "POST /api/v1/searches",
    "GET /api/v1/usage",
    "GET /api/v1/saved-searches",
    "POST /api/v1/saved-searches",
    "GET /api/v1/saved-searches/{saved_id}",
    "PATCH /api/v1/saved-searches/{saved_id}",
    "DELETE /api/v1/saved-searches/{saved_id}",
    "GET /api/v1/history",
    "GET /api/v1/apps",
    "GET /api/v1/apps/{app_id}",
    "GET /api/v1/me/apps",
    "POST /api/v1/me/apps",
    "PATCH /api/v1/me/apps/{app_id}",
    "GET /api/v1/me/apps/{app_id}/requirements",
    "POST /api/v1/me/apps/{app_id}/requirements",
    "PATCH /api/v1/me/apps/{app_id}/requirements/{requirement_id}",
}


@pytest.fixture
def api_token(transactional_db, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 1_000_000
    # Schemathesis checks every operation without a key (and with a wrong one)
    # from one address: the per-address limit would turn its 401s into 429s.
    settings.API_UNAUTHENTICATED_RATE_LIMIT_PER_MINUTE = 1_000_000
    user = UserFactory(tier="ENTERPRISE", name="Fuzz")
    return api_key_create(user=user, name="schemathesis", scopes=["read", "write"])[1]


@pytest.fixture
def api_schema(live_server, api_token):
    return schemathesis.openapi.from_url(f"{live_server.url}/api/v1/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_survives_schemathesis(case, api_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {api_token}"})


def test_the_schema_lists_exactly_the_known_operations(client):
    document = client.get("/api/v1/openapi.json").json()
    operations = {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
    }
    assert operations == EXPECTED_OPERATIONS
