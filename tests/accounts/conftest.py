import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    """Rate-limit counters live in the shared cache table; start each test clean."""
    cache.clear()
    yield
    cache.clear()
