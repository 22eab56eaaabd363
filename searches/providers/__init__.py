"""Keyword-data providers behind one interface; ``KEYWORD_PROVIDER`` picks one."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from searches.providers.base import (
    COMPETITION_LEVELS,
    INTENTS,
    LANGUAGES,
    LOCATIONS,
    KeywordProvider,
    KeywordResult,
    ProviderError,
    infer_intent,
)
from searches.providers.dataforseo import DataForSEOProvider
from searches.providers.sample import SampleProvider

PROVIDERS: dict[str, type] = {
    SampleProvider.name: SampleProvider,
    DataForSEOProvider.name: DataForSEOProvider,
}

__all__ = [
    "COMPETITION_LEVELS",
    "INTENTS",
    "LANGUAGES",
    "LOCATIONS",
    "PROVIDERS",
    "DataForSEOProvider",
    "KeywordProvider",
    "KeywordResult",
    "ProviderError",
    "SampleProvider",
    "get_provider",
    "infer_intent",
    "is_sample_provider",
]


def get_provider(name: str | None = None) -> KeywordProvider:
    """The provider named by ``name`` or the ``KEYWORD_PROVIDER`` setting."""
    name = name or settings.KEYWORD_PROVIDER
    try:
        return PROVIDERS[name]()
    except KeyError:
        raise ImproperlyConfigured(
            f"KEYWORD_PROVIDER={name!r}; choose one of {', '.join(PROVIDERS)}."
        ) from None


def is_sample_provider(name: str) -> bool:
    cls = PROVIDERS.get(name)
    return bool(cls and cls.is_sample)
