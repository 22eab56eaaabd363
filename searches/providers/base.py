"""The interface every keyword-data provider implements."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import ClassVar, Protocol

COMPETITION_LEVELS = ("low", "medium", "high")
INTENTS = ("informational", "commercial", "transactional", "navigational")

# Locations offered on the search form, with DataForSEO/Google Ads location
# codes (Google Ads geo target ids).
LOCATIONS = {
    "US": ("United States", 2840),
    "GB": ("United Kingdom", 2826),
    "CA": ("Canada", 2124),
    "AU": ("Australia", 2036),
    "IN": ("India", 2356),
    "DE": ("Germany", 2276),
    "FR": ("France", 2250),
    "ES": ("Spain", 2724),
}
LANGUAGES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
}


class ProviderError(Exception):
    """The provider could not answer; ``message`` is safe to show a user."""

    def __init__(self, message: str, *, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.detail = detail


@dataclass(frozen=True)
class KeywordResult:
    keyword: str
    search_volume: int
    difficulty: int  # 0-100
    cpc: float  # USD
    competition: str  # low / medium / high
    intent: str  # informational / commercial / transactional / navigational

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> KeywordResult:
        return cls(
            keyword=str(data["keyword"]),
            search_volume=int(data["search_volume"]),
            difficulty=int(data["difficulty"]),
            cpc=float(data["cpc"]),
            competition=str(data["competition"]),
            intent=str(data["intent"]),
        )


class KeywordProvider(Protocol):
    """A source of keyword data.

    ``name`` is stored on each SearchHistory row; ``batch_limit`` is the most
    keywords one call of :meth:`search_keywords` accepts (the service splits
    larger searches). ``is_sample`` marks made-up numbers that pages must label.
    Implementations raise :class:`ProviderError` when they cannot answer.
    """

    name: ClassVar[str]
    batch_limit: ClassVar[int]
    is_sample: ClassVar[bool]

    def search_keywords(
        self, keywords: list[str], location: str, language: str, match_type: str
    ) -> list[KeywordResult]: ...


_INTENT_PATTERNS = (
    (
        "transactional",
        r"\b(buy|order|price|prices|pricing|cheap|deal|deals|coupon|"
        r"discount|sale|shop|subscribe|download|hire|book)\b",
    ),
    (
        "commercial",
        r"\b(best|top|review|reviews|vs|versus|compare|comparison|"
        r"alternative|alternatives|software|tool|tools|service|services)\b",
    ),
    (
        "navigational",
        r"\b(login|log in|sign in|signin|website|official|app|"
        r"near me|account|dashboard)\b",
    ),
    (
        "informational",
        r"\b(how|what|why|when|where|who|guide|tutorial|ideas|tips|"
        r"examples?|meaning|definition|learn)\b",
    ),
)


def infer_intent(keyword: str, fallback: str | None = None) -> str:
    """Search intent from the words of a keyword (providers rarely supply it)."""
    for intent, pattern in _INTENT_PATTERNS:
        if re.search(pattern, keyword):
            return intent
    return fallback or "informational"
