"""The shared cache, read and written so that an outage costs only the work
the cache would have saved: a failed read is a miss, a failed write is
skipped, and each is logged (Redis down must never break a page)."""

from __future__ import annotations

import logging

from django.core.cache import cache

logger = logging.getLogger(__name__)


def cache_get_or_none(key: str, *, what: str = "Cache"):
    """``cache.get(key)``, or None when the cache cannot be reached."""
    try:
        return cache.get(key)
    except Exception:
        logger.warning("%s unavailable (get %s)", what, key, exc_info=True)
        return None


def cache_set_quietly(key: str, value, *, timeout: int, what: str = "Cache") -> None:
    """``cache.set``; when the cache cannot be reached, logged and skipped."""
    try:
        cache.set(key, value, timeout=timeout)
    except Exception:
        logger.warning("%s unavailable (set %s)", what, key, exc_info=True)


def cache_count_quietly(key: str, *, timeout: int, what: str = "Cache") -> int | None:
    """Add one to the counter ``key`` (created with ``timeout`` seconds to
    live) and return its value; None when the cache cannot be reached, so a
    limit that counts with it lets the request through rather than failing
    it. ``incr`` first: one round trip when the counter exists."""
    try:
        try:
            return cache.incr(key)
        except ValueError:  # no such counter yet (or it just expired)
            return 1 if cache.add(key, 1, timeout=timeout) else cache.incr(key)
    except Exception:
        logger.warning("%s unavailable (incr %s)", what, key, exc_info=True)
        return None
