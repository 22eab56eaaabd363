"""Deterministic, offline sample data: the same keyword always gets the same numbers."""

from __future__ import annotations

import hashlib

from searches.providers.base import INTENTS, KeywordResult, infer_intent


def _unit(digest: bytes, offset: int) -> float:
    """A number in [0, 1) from 4 bytes of ``digest``."""
    return int.from_bytes(digest[offset : offset + 4], "big") / 2**32


def _two_significant(value: float) -> int:
    """Round like Google Ads volumes do (1,900 / 22,000 / 140)."""
    number = int(value)
    if number < 100:
        return max(10, round(number, -1))
    return round(number, -(len(str(number)) - 2))


class SampleProvider:
    name = "sample"
    batch_limit = 1000
    is_sample = True

    def search_keywords(self, keywords, location, language, match_type):
        return [self.keyword_data(keyword) for keyword in keywords]

    @staticmethod
    def keyword_data(keyword: str) -> KeywordResult:
        digest = hashlib.sha256(keyword.casefold().encode()).digest()
        # Log-uniform between 10 and 100,000 searches a month; longer keywords
        # are searched less, as in real data.
        words = max(1, len(keyword.split()))
        volume = 10 ** (1 + 4 * _unit(digest, 0)) / words
        volume = _two_significant(max(volume, 10))
        difficulty = int(_unit(digest, 4) * 101)
        cpc = round(0.10 + _unit(digest, 8) * 24.90, 2)
        competition_score = _unit(digest, 12)
        competition = (
            "low"
            if competition_score < 1 / 3
            else "medium"
            if competition_score < 2 / 3
            else "high"
        )
        fallback = INTENTS[digest[16] % len(INTENTS)]
        return KeywordResult(
            keyword=keyword,
            search_volume=volume,
            difficulty=difficulty,
            cpc=cpc,
            competition=competition,
            intent=infer_intent(keyword, fallback=fallback),
        )
