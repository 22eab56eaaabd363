import factory
from django.utils import timezone

from searches.models import APIUsage, SavedSearch, SearchHistory
from searches.providers import SampleProvider
from tests.accounts.factories import UserFactory


def sample_results(keywords):
    return [
        r.as_dict()
        for r in SampleProvider().search_keywords(list(keywords), "US", "en", "broad")
    ]


class SavedSearchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SavedSearch

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Saved search {n}")
    keywords = factory.LazyFunction(lambda: ["seo tools", "keyword planner"])
    keyword_count = factory.LazyAttribute(lambda o: len(o.keywords))
    results = factory.LazyAttribute(lambda o: sample_results(o.keywords))
    provider = "sample"
    last_accessed_at = factory.LazyFunction(timezone.now)


class SearchHistoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SearchHistory

    user = factory.SubFactory(UserFactory)
    keywords = factory.LazyFunction(lambda: ["seo tools", "keyword planner"])
    keyword_count = factory.LazyAttribute(lambda o: len(o.keywords))
    provider = "sample"
    cache_hit = False
    response_time_ms = 12
    total_volume = 2000
    avg_volume = 1000
    searched_at = factory.LazyFunction(timezone.now)
    user_agent = "pytest"
    ip_address = "127.0.0.1"


class APIUsageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = APIUsage

    user = factory.SubFactory(UserFactory)
    endpoint = "/api/keywords/"
    method = "POST"
    status_code = 200
    duration_ms = 25
    ip_address = "127.0.0.1"
    user_agent = "pytest"
