import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import timezone

from accounts.models import User
from accounts.selectors import next_reset_at, usage_for
from searches import services
from searches.models import SavedSearch, SearchHistory
from searches.providers import ProviderError
from searches.services import (
    AnonymousLimitExceeded,
    QuotaExceeded,
    keywords_parse,
    search_run,
)
from tests.accounts.factories import UserFactory
from tests.searches.conftest import BrokenProvider, CountingProvider

# --- input ----------------------------------------------------------------------


def test_keywords_are_split_trimmed_and_deduplicated_case_insensitively():
    raw = "  SEO Tools , keyword  planner\nseo tools\r\n\n,Keyword Planner,  backlinks "
    assert keywords_parse(raw) == ["seo tools", "keyword planner", "backlinks"]


def test_keyword_lists_are_taken_item_by_item():
    assert keywords_parse(["a, b", "A, B", " c\tde "]) == ["a, b", "c de"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "at least one keyword"),
        (" , \n ,", "at least one keyword"),
        (
            ",".join(f"kw {i}" for i in range(201)),
            "at most 200 keywords; you entered 201",
        ),
        ("x" * 81, "81 characters long; the most is 80"),
        ("seo\x00tools", "control character"),
        ("seo\x07tools", "control character"),
        (["ok", 3], "must be text"),
        (42, "must be text"),
    ],
)
def test_bad_keywords_give_readable_errors(raw, message):
    with pytest.raises(ValidationError) as exc:
        keywords_parse(raw)
    assert message in " ".join(exc.value.messages)


def test_limits_themselves_are_accepted():
    assert len(keywords_parse([f"kw {i}" for i in range(200)])) == 200
    assert keywords_parse("x" * 80) == ["x" * 80]


def test_next_reset_is_the_first_of_next_month():
    assert next_reset_at(dt.datetime(2026, 1, 31, 23, 0, tzinfo=dt.UTC)) == dt.datetime(
        2026, 2, 1, tzinfo=dt.UTC
    )
    assert next_reset_at(dt.datetime(2026, 12, 5, tzinfo=dt.UTC)) == dt.datetime(
        2027, 1, 1, tzinfo=dt.UTC
    )


# --- quota ---------------------------------------------------------------------


def _free_user(used, reset_in_days=10):
    return UserFactory(
        tier="FREE",
        keyword_searches_this_month=used,
        keyword_searches_total=used + 1000,
        monthly_reset_at=timezone.now() + dt.timedelta(days=reset_in_days),
    )


def _run(user, keywords, **kwargs):
    return search_run(user=user, keywords=keywords, ip_address="10.0.0.1", **kwargs)


@pytest.mark.django_db
def test_search_exactly_at_the_limit_is_allowed():
    user = _free_user(297)
    _run(user, "a, b, c")
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 300
    assert user.keyword_searches_total == 1300


@pytest.mark.django_db
def test_search_one_over_the_limit_is_refused_with_used_and_limit():
    user = _free_user(298)
    with pytest.raises(QuotaExceeded) as exc:
        _run(user, "a, b, c")
    assert (exc.value.used, exc.value.limit, exc.value.requested) == (298, 300, 3)
    assert "used 298 of 300" in exc.value.messages[0]
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 298
    assert user.keyword_searches_total == 1298
    assert not SearchHistory.objects.exists()


@pytest.mark.django_db
def test_pro_quota_comes_from_settings_and_enterprise_is_unlimited(settings):
    pro = UserFactory(tier="PRO", keyword_searches_this_month=999)
    _run(pro, "a")
    with pytest.raises(QuotaExceeded):
        _run(pro, "b")
    enterprise = UserFactory(tier="ENTERPRISE", keyword_searches_this_month=10**6)
    _run(enterprise, [f"kw {i}" for i in range(200)])
    enterprise.refresh_from_db()
    assert enterprise.keyword_searches_this_month == 10**6 + 200


@pytest.mark.django_db
def test_past_due_after_the_paid_period_searches_on_the_free_quota():
    """Billing's rule (accounts.selectors.tier_effective): past_due keeps the
    plan until the paid period ends, then the user is Free."""
    now = timezone.now()
    lapsed = UserFactory(
        tier="PRO",
        subscription_status="past_due",
        # The unpaid renewal's period runs on; the paid one is over.
        subscription_ends_at=now + dt.timedelta(days=29),
        paid_until=now - dt.timedelta(days=1),
        keyword_searches_this_month=299,
    )
    in_grace = UserFactory(
        tier="PRO",
        subscription_status="past_due",
        subscription_ends_at=now + dt.timedelta(days=29),
        paid_until=now + dt.timedelta(days=1),
        keyword_searches_this_month=299,
    )

    with pytest.raises(QuotaExceeded) as exc:
        _run(lapsed, "a, b")
    _run(in_grace, "a, b")

    assert (exc.value.used, exc.value.limit) == (299, 300)
    assert usage_for(lapsed).limit == 300
    assert usage_for(in_grace).limit == 1000
    in_grace.refresh_from_db()
    assert in_grace.keyword_searches_this_month == 301


@pytest.mark.django_db
def test_counter_resets_after_the_month_boundary():
    user = UserFactory(
        keyword_searches_this_month=300,
        keyword_searches_total=900,
        monthly_reset_at=timezone.now() - dt.timedelta(minutes=1),
    )
    _run(user, "a, b")
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 2
    assert user.keyword_searches_total == 902
    assert user.monthly_reset_at == next_reset_at(timezone.now())


@pytest.mark.django_db
def test_first_search_sets_the_reset_date_without_losing_the_count():
    user = UserFactory(keyword_searches_this_month=7, monthly_reset_at=None)
    _run(user, "a")
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 8
    assert user.monthly_reset_at == next_reset_at(timezone.now())


# --- provider failure, cache, history ---------------------------------------------


@pytest.mark.django_db
def test_provider_error_uses_no_quota_and_records_no_history():
    user = _free_user(10)
    with pytest.raises(ProviderError):
        _run(user, "a, b", provider=BrokenProvider())
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 10
    assert user.keyword_searches_total == 1010
    assert not SearchHistory.objects.exists()


@pytest.mark.django_db
def test_provider_timeout_uses_no_quota_and_records_no_history(dataforseo):
    dataforseo.script = [("sleep", 1.0)]
    user = _free_user(10)
    with pytest.raises(ProviderError, match="temporarily unavailable"):
        _run(user, "a, b")
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 10
    assert not SearchHistory.objects.exists()


@pytest.mark.django_db
def test_dataforseo_search_is_recorded_with_its_provider(dataforseo):
    user = _free_user(0)
    outcome = _run(user, "a, b")
    assert outcome.provider == "dataforseo"
    assert not outcome.is_sample
    assert outcome.history.provider == "dataforseo"
    assert outcome.history.total_volume == 3000


@pytest.mark.django_db
def test_cache_hit_is_served_without_calling_the_provider_and_recorded():
    user = _free_user(0)
    provider = CountingProvider()
    first = _run(user, "seo tools, backlinks", provider=provider)
    second = _run(user, "Backlinks\nSEO tools", provider=provider)
    assert len(provider.calls) == 1
    assert not first.cache_hit
    assert second.cache_hit
    assert [r["keyword"] for r in second.results] == ["backlinks", "seo tools"]
    assert second.results[1] == first.results[0]
    hits = list(
        SearchHistory.objects.order_by("searched_at").values_list(
            "cache_hit", flat=True
        )
    )
    assert hits == [False, True]


@pytest.mark.django_db
def test_cache_is_keyed_by_location_language_and_match_type():
    user = _free_user(0)
    provider = CountingProvider()
    _run(user, "seo", provider=provider)
    _run(user, "seo", provider=provider, location="GB")
    _run(user, "seo", provider=provider, language="de")
    _run(user, "seo", provider=provider, match_type="exact")
    _run(user, "seo", provider=provider, match_type="exact")
    assert len(provider.calls) == 4


@pytest.mark.django_db
def test_history_records_what_ran_for_signed_in_users():
    user = _free_user(0)
    outcome = _run(user, "seo tools, backlinks", user_agent="Firefox/1")
    row = SearchHistory.objects.get()
    assert row.user == user
    assert row.keywords == ["seo tools", "backlinks"]
    assert row.keyword_count == 2
    assert row.provider == "sample"
    assert row.total_volume == sum(r["search_volume"] for r in outcome.results)
    assert row.avg_volume == round(row.total_volume / 2)
    assert row.user_agent == "Firefox/1"
    assert row.ip_address == "10.0.0.1"
    assert row.response_time_ms >= 0


@pytest.mark.django_db
def test_anonymous_searches_are_recorded_and_limited_per_ip_per_day(settings):
    settings.KEYWORD_ANON_SEARCHES_PER_DAY = 2
    for _ in range(2):
        search_run(user=None, keywords="seo", ip_address="10.1.1.1")
    with pytest.raises(AnonymousLimitExceeded, match="Sign in"):
        search_run(user=None, keywords="seo", ip_address="10.1.1.1")
    search_run(user=None, keywords="seo", ip_address="10.2.2.2")
    assert SearchHistory.objects.filter(user=None).count() == 3


@pytest.mark.django_db
def test_anonymous_search_size_is_limited(settings):
    settings.KEYWORD_ANON_MAX_KEYWORDS = 3
    with pytest.raises(ValidationError, match="up to 3 keywords"):
        search_run(user=None, keywords="a,b,c,d", ip_address="10.1.1.1")
    assert not SearchHistory.objects.exists()


@pytest.mark.django_db
def test_anonymous_provider_failure_gives_the_daily_search_back(settings):
    settings.KEYWORD_ANON_SEARCHES_PER_DAY = 1
    with pytest.raises(ProviderError):
        search_run(
            user=None, keywords="a", ip_address="10.1.1.1", provider=BrokenProvider()
        )
    search_run(user=None, keywords="a", ip_address="10.1.1.1")


@pytest.mark.django_db
def test_bad_options_are_refused_before_counting():
    user = _free_user(0)
    with pytest.raises(ValidationError) as exc:
        _run(user, "a", location="XX", match_type="fuzzy")
    assert set(exc.value.message_dict) == {"location", "match_type"}
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 0


# --- saved searches, reset, deletion ----------------------------------------------


@pytest.mark.django_db
def test_saved_search_keeps_a_snapshot_of_the_results(user):
    outcome = _run(user, "seo tools, backlinks")
    saved = services.saved_search_create(
        user=user, name="  My   list ", search=outcome.as_session()
    )
    saved.refresh_from_db()
    assert saved.name == "My list"
    assert saved.keywords == ["seo tools", "backlinks"]
    assert saved.keyword_count == 2
    assert saved.results == outcome.results


@pytest.mark.django_db
def test_saved_search_needs_a_name(user):
    outcome = _run(user, "seo")
    with pytest.raises(ValidationError):
        services.saved_search_create(user=user, name="   ", search=outcome.as_session())
    assert not SavedSearch.objects.exists()


@pytest.mark.django_db
def test_reset_monthly_usage_resets_only_users_past_their_reset_date():
    now = timezone.now()
    due = UserFactory(
        keyword_searches_this_month=50, monthly_reset_at=now - dt.timedelta(hours=1)
    )
    not_due = UserFactory(
        keyword_searches_this_month=40, monthly_reset_at=now + dt.timedelta(days=3)
    )
    assert services.usage_reset_monthly(now=now) == 1
    due.refresh_from_db()
    not_due.refresh_from_db()
    assert due.keyword_searches_this_month == 0
    assert due.monthly_reset_at == next_reset_at(now)
    assert not_due.keyword_searches_this_month == 40


@pytest.mark.django_db
def test_deleting_a_user_keeps_their_history_anonymised(user):
    from tests.searches.factories import APIUsageFactory, SavedSearchFactory

    _run(user, "seo")
    APIUsageFactory(user=user)
    SavedSearchFactory(user=user)
    user.delete()
    row = SearchHistory.objects.get()
    assert row.user_id is None
    assert row.keywords == ["seo"]
    from searches.models import APIUsage

    assert APIUsage.objects.get().user_id is None
    assert not SavedSearch.objects.exists()
    assert not User.objects.filter(pk=user.pk).exists()


@pytest.mark.django_db
def test_an_unreachable_cache_costs_a_provider_call_not_the_search(monkeypatch):
    from searches import services as search_services

    def down(*args, **kwargs):
        raise ConnectionError("cache is down")

    monkeypatch.setattr(search_services.cache, "get", down)
    monkeypatch.setattr(search_services.cache, "set", down)
    provider = CountingProvider()
    outcome = _run(_free_user(0), "seo", provider=provider)
    assert len(provider.calls) == 1
    assert not outcome.cache_hit
    assert SearchHistory.objects.count() == 1


class NegativeVolumeProvider(CountingProvider):
    """Answers, but with a volume the history row's constraints refuse."""

    def search_keywords(self, keywords, location, language, match_type):
        from searches.providers import KeywordResult

        return [KeywordResult(k, -1, 10, 1.0, "low", "informational") for k in keywords]


@pytest.mark.django_db(transaction=True)
def test_a_search_whose_history_cannot_be_written_uses_no_quota():
    # Transactional: in production the quota UPDATE commits on its own, and the
    # refund must run after the failed INSERT.
    user = _free_user(10)
    with pytest.raises(IntegrityError):
        _run(user, "a, b", provider=NegativeVolumeProvider())
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 10
    assert user.keyword_searches_total == 1010
    assert not SearchHistory.objects.exists()


@pytest.mark.django_db
def test_dataforseo_garbage_numbers_are_a_provider_error_and_use_no_quota(
    dataforseo,
):
    from tests.searches.conftest import dataforseo_success

    answer = dataforseo_success(["a"])
    answer["tasks"][0]["result"][0]["search_volume"] = "lots"
    dataforseo.script = [("json", 200, answer)]
    user = _free_user(10)
    with pytest.raises(ProviderError, match="temporarily unavailable"):
        _run(user, "a")
    user.refresh_from_db()
    assert user.keyword_searches_this_month == 10
    assert not SearchHistory.objects.exists()
