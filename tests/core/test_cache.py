"""core.cache: an unreachable cache is a miss on read and skipped on write."""

import logging

from django.core.cache import cache

from core.cache import cache_count_quietly, cache_get_or_none, cache_set_quietly


def test_reads_and_writes_go_through_when_the_cache_answers(db):
    cache_set_quietly("core-cache-test", {"a": 1}, timeout=60)

    assert cache_get_or_none("core-cache-test") == {"a": 1}


def test_an_unreachable_cache_is_a_logged_miss_and_a_skipped_write(monkeypatch, caplog):
    def down(*args, **kwargs):
        raise ConnectionError("cache is down")

    monkeypatch.setattr(cache, "get", down)
    monkeypatch.setattr(cache, "set", down)

    with caplog.at_level(logging.WARNING, logger="core.cache"):
        assert cache_get_or_none("k", what="Keyword cache") is None
        cache_set_quietly("k", 1, timeout=60, what="Keyword cache")

    assert [r.getMessage() for r in caplog.records] == [
        "Keyword cache unavailable (get k)",
        "Keyword cache unavailable (set k)",
    ]


def test_a_counter_counts_and_an_unreachable_cache_counts_nothing(
    db, monkeypatch, caplog
):
    assert cache_count_quietly("core-cache-count", timeout=60) == 1
    assert cache_count_quietly("core-cache-count", timeout=60) == 2

    def down(*args, **kwargs):
        raise ConnectionError("cache is down")

    monkeypatch.setattr(cache, "incr", down)
    with caplog.at_level(logging.WARNING, logger="core.cache"):
        assert cache_count_quietly("core-cache-count", timeout=60, what="Limit") is None
    assert [r.getMessage() for r in caplog.records] == [
        "Limit unavailable (incr core-cache-count)"
    ]
