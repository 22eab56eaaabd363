"""Per-key requests per minute, counted in the shared cache (Redis in
production, so every web process sees the same count).

A fixed one-minute window: simple, one round trip (``incr``), and the
``RateLimit-*`` headers can say exactly when it resets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings

from core.cache import cache_count_quietly


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    remaining: int
    reset_seconds: int

    @property
    def exceeded(self) -> bool:
        return self.remaining < 0

    def headers(self) -> dict[str, str]:
        """The IETF draft's fields (RateLimit-Limit / -Remaining / -Reset) that
        clients and gateways read, plus Retry-After when refused."""
        values = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(self.remaining, 0)),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if self.exceeded:
            values["Retry-After"] = str(self.reset_seconds)
        return values


def rate_limit_hit(key_id: str, *, now: float | None = None) -> RateLimitState:
    """Count one request of key ``key_id`` in the current minute."""
    return _hit(f"api-rate:{key_id}", settings.API_RATE_LIMIT_PER_MINUTE, now=now)


def unauthenticated_hit(ip: str, *, now: float | None = None) -> RateLimitState:
    """Count one request from ``ip`` that brought no valid key. Past the limit
    the address is answered 429 and no usage row is written
    (api.middleware), so a flood of made-up keys or paths cannot grow the
    usage table."""
    return _hit(
        f"api-rate-anon:{ip}",
        settings.API_UNAUTHENTICATED_RATE_LIMIT_PER_MINUTE,
        now=now,
    )


def _hit(prefix: str, limit: int, *, now: float | None) -> RateLimitState:
    now = time.time() if now is None else now
    window = int(now // 60)
    # A cache outage counts nothing: the call goes through (fail open) rather
    # than answering 500 for want of a counter.
    count = cache_count_quietly(
        f"{prefix}:{window}", timeout=120, what="API rate limit"
    )
    count = 0 if count is None else count
    reset = 60 - int(now % 60)
    return RateLimitState(limit=limit, remaining=limit - count, reset_seconds=reset)
