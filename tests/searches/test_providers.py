import base64
import time

import pytest
from django.core.exceptions import ImproperlyConfigured

from searches.providers import (
    COMPETITION_LEVELS,
    INTENTS,
    DataForSEOProvider,
    ProviderError,
    SampleProvider,
    get_provider,
)
from tests.searches.conftest import dataforseo_error, dataforseo_success


def test_sample_provider_gives_the_same_numbers_for_the_same_keyword():
    first = SampleProvider().search_keywords(
        ["seo tools", "buy shoes"], "US", "en", "broad"
    )
    again = SampleProvider().search_keywords(
        ["buy shoes", "seo tools"], "US", "en", "broad"
    )
    assert first[0] == again[1]
    assert first[1] == again[0]


def test_sample_provider_values_stay_in_range():
    words = [f"keyword number {i}" for i in range(300)]
    for r in SampleProvider().search_keywords(words, "US", "en", "broad"):
        assert r.search_volume >= 10
        assert 0 <= r.difficulty <= 100
        assert 0.1 <= r.cpc <= 25
        assert r.competition in COMPETITION_LEVELS
        assert r.intent in INTENTS


def test_sample_provider_infers_intent_from_words():
    results = SampleProvider().search_keywords(
        ["buy running shoes", "how to tie shoes", "best running shoes", "nike login"],
        "US",
        "en",
        "broad",
    )
    assert [r.intent for r in results] == [
        "transactional",
        "informational",
        "commercial",
        "navigational",
    ]


def test_get_provider_follows_the_setting(settings):
    settings.KEYWORD_PROVIDER = "sample"
    assert get_provider().name == "sample"
    settings.KEYWORD_PROVIDER = "dataforseo"
    assert get_provider().name == "dataforseo"
    settings.KEYWORD_PROVIDER = "nope"
    with pytest.raises(ImproperlyConfigured):
        get_provider()


def test_dataforseo_parses_a_success_answer(dataforseo):
    results = get_provider().search_keywords(
        ["seo tools", "buy backlinks"], "US", "en", "broad"
    )
    assert [r.keyword for r in results] == ["seo tools", "buy backlinks"]
    assert results[0].search_volume == 1000
    assert results[0].competition == "low"
    assert results[0].difficulty == 40
    assert results[0].cpc == 2.5
    assert results[1].search_volume == 2000
    assert results[1].competition == "high"
    assert results[1].intent == "transactional"


def test_dataforseo_sends_the_documented_request(dataforseo):
    get_provider().search_keywords(["seo tools"], "GB", "en", "broad")
    (request,) = dataforseo.requests
    assert request["path"] == "/v3/keywords_data/google_ads/search_volume/live"
    expected = base64.b64encode(b"login@example.com:secret").decode()
    assert request["auth"] == f"Basic {expected}"
    assert request["body"] == [
        {"keywords": ["seo tools"], "language_code": "en", "location_code": 2826}
    ]


def test_dataforseo_error_status_raises_a_readable_error_without_retrying(dataforseo):
    dataforseo.script = [("json", 200, dataforseo_error())]
    with pytest.raises(ProviderError) as exc:
        get_provider().search_keywords(["seo tools"], "US", "en", "broad")
    assert "temporarily unavailable" in exc.value.message
    assert "40501" in exc.value.detail
    assert len(dataforseo.requests) == 1


def test_dataforseo_task_error_raises(dataforseo):
    answer = dataforseo_error()
    answer["status_code"] = 20000
    answer["tasks"] = [{"status_code": 40210, "status_message": "Not enough funds."}]
    dataforseo.script = [("json", 200, answer)]
    with pytest.raises(ProviderError, match="temporarily unavailable"):
        get_provider().search_keywords(["seo tools"], "US", "en", "broad")


def test_dataforseo_retries_http_500_then_succeeds(dataforseo):
    dataforseo.script = [("json", 500, {"status_code": 50000}), ("json", 200, None)]
    results = get_provider().search_keywords(["seo tools"], "US", "en", "broad")
    assert results[0].search_volume == 1000
    assert len(dataforseo.requests) == 2


def test_dataforseo_gives_up_after_bounded_retries_on_http_500(dataforseo):
    dataforseo.script = [("json", 500, {"status_code": 50000, "status_message": "x"})]
    with pytest.raises(ProviderError, match="temporarily unavailable"):
        get_provider().search_keywords(["seo tools"], "US", "en", "broad")
    assert len(dataforseo.requests) == 3  # 1 try + DATAFORSEO_RETRIES=2


def test_dataforseo_timeout_raises_a_readable_error(dataforseo):
    dataforseo.script = [("sleep", 1.0)]
    started = time.monotonic()
    with pytest.raises(ProviderError, match="temporarily unavailable") as exc:
        get_provider().search_keywords(["seo tools"], "US", "en", "broad")
    assert "Timeout" in exc.value.detail
    assert len(dataforseo.requests) == 3
    assert time.monotonic() - started < 3


def test_dataforseo_down_raises_a_readable_error(settings):
    settings.DATAFORSEO_BACKOFF = 0
    provider = DataForSEOProvider(
        login="a", password="b", base_url="http://127.0.0.1:9", timeout=0.5, retries=1
    )
    with pytest.raises(ProviderError, match="temporarily unavailable"):
        provider.search_keywords(["seo tools"], "US", "en", "broad")


def test_dataforseo_without_credentials_says_it_is_not_configured(settings):
    settings.DATAFORSEO_LOGIN = ""
    with pytest.raises(ProviderError, match="not configured"):
        DataForSEOProvider().search_keywords(["seo tools"], "US", "en", "broad")


@pytest.mark.parametrize(
    "change",
    [
        {"search_volume": "n/a"},
        {"competition_index": {"value": 3}},
        {"cpc": "NaN"},
        {"cpc": float("inf")},
    ],
    ids=["volume-text", "index-object", "cpc-nan", "cpc-infinite"],
)
def test_dataforseo_malformed_numbers_raise_a_readable_error(dataforseo, change):
    answer = dataforseo_success(["seo tools"])
    answer["tasks"][0]["result"][0].update(change)
    dataforseo.script = [("json", 200, answer)]
    with pytest.raises(ProviderError, match="temporarily unavailable"):
        get_provider().search_keywords(["seo tools"], "US", "en", "broad")


@pytest.mark.parametrize(
    "tasks", [["not a task"], {"0": {}}, [{"status_code": 20000, "result": 7}]]
)
def test_dataforseo_malformed_task_shapes_raise_a_readable_error(dataforseo, tasks):
    answer = dataforseo_success(["seo tools"])
    answer["tasks"] = tasks
    dataforseo.script = [("json", 200, answer)]
    with pytest.raises(ProviderError, match="temporarily unavailable"):
        get_provider().search_keywords(["seo tools"], "US", "en", "broad")


def test_dataforseo_negative_numbers_are_floored_at_zero(dataforseo):
    answer = dataforseo_success(["seo tools"])
    answer["tasks"][0]["result"][0].update(
        {"search_volume": -5, "cpc": -1.5, "competition_index": -3}
    )
    dataforseo.script = [("json", 200, answer)]
    (result,) = get_provider().search_keywords(["seo tools"], "US", "en", "broad")
    assert (result.search_volume, result.cpc, result.difficulty) == (0, 0.0, 0)
