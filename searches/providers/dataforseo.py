"""DataForSEO v3 Google Ads search volume (live) over HTTP.

POST {base}/v3/keywords_data/google_ads/search_volume/live with a JSON array of
one task ``{"keywords": [...], "location_code": 2840, "language_code": "en"}``;
Basic auth with the account's API login and password. The answer is
``{"status_code": 20000, "tasks": [{"status_code": 20000, "result": [{"keyword",
"search_volume", "cpc", "competition" ("LOW"/"MEDIUM"/"HIGH"),
"competition_index" (0-100), ...}]}]}``; any status_code other than 20000 is an
error whose ``status_message`` says why.
"""

from __future__ import annotations

import logging
import math
import time

import requests
from django.conf import settings

from searches.providers.base import (
    LOCATIONS,
    KeywordResult,
    ProviderError,
    infer_intent,
)

logger = logging.getLogger(__name__)

ENDPOINT = "/v3/keywords_data/google_ads/search_volume/live"
OK = 20000
UNAVAILABLE_MESSAGE = (
    "Keyword data is temporarily unavailable. Nothing was counted against your "
    "quota; please try again in a few minutes."
)


class _Retryable(Exception):
    pass


class DataForSEOProvider:
    name = "dataforseo"
    # DataForSEO accepts up to 1,000 keywords per Google Ads search volume task.
    batch_limit = 1000
    is_sample = False

    def __init__(
        self,
        *,
        login: str | None = None,
        password: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff: float | None = None,
    ):
        self.login = settings.DATAFORSEO_LOGIN if login is None else login
        self.password = settings.DATAFORSEO_PASSWORD if password is None else password
        self.base_url = (base_url or settings.DATAFORSEO_BASE_URL).rstrip("/")
        self.timeout = settings.DATAFORSEO_TIMEOUT if timeout is None else timeout
        self.retries = settings.DATAFORSEO_RETRIES if retries is None else retries
        self.backoff = settings.DATAFORSEO_BACKOFF if backoff is None else backoff

    def search_keywords(self, keywords, location, language, match_type):
        # Google Ads reports one volume per keyword whatever the match type; the
        # match type still keys the cache and the history.
        if not (self.login and self.password):
            raise ProviderError(
                "Keyword data is not configured on this site yet.",
                detail="DATAFORSEO_LOGIN / DATAFORSEO_PASSWORD are not set",
            )
        task = {"keywords": list(keywords), "language_code": language}
        if location in LOCATIONS:
            task["location_code"] = LOCATIONS[location][1]
        payload = self._post([task])
        return self._parse(payload, keywords)

    def _post(self, body: list[dict]) -> dict:
        url = self.base_url + ENDPOINT
        attempts = 1 + max(0, self.retries)
        last_detail = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return self._post_once(url, body)
            except _Retryable as exc:
                last_detail = str(exc)
                logger.warning(
                    "DataForSEO attempt %s/%s failed: %s", attempt + 1, attempts, exc
                )
        raise ProviderError(UNAVAILABLE_MESSAGE, detail=last_detail)

    def _post_once(self, url: str, body: list[dict]) -> dict:
        try:
            response = requests.post(
                url,
                json=body,
                auth=(self.login, self.password),
                timeout=self.timeout,
            )
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        except requests.RequestException as exc:
            raise ProviderError(UNAVAILABLE_MESSAGE, detail=str(exc)) from exc
        if response.status_code >= 500:
            raise _Retryable(f"HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError as exc:
            raise ProviderError(
                UNAVAILABLE_MESSAGE, detail=f"HTTP {response.status_code}, not JSON"
            ) from exc
        if not isinstance(payload, dict):
            raise ProviderError(UNAVAILABLE_MESSAGE, detail="unexpected JSON shape")
        status = payload.get("status_code")
        # 50000-series codes are DataForSEO's own server errors: worth a retry.
        if isinstance(status, int) and status >= 50000:
            raise _Retryable(f"status {status}: {payload.get('status_message')}")
        if response.status_code >= 400 or status != OK:
            logger.error(
                "DataForSEO refused the request: HTTP %s, %s %s",
                response.status_code,
                status,
                payload.get("status_message"),
            )
            raise ProviderError(
                UNAVAILABLE_MESSAGE,
                detail=f"status {status}: {payload.get('status_message')}",
            )
        return payload

    @staticmethod
    def _parse(payload: dict, keywords: list[str]) -> list[KeywordResult]:
        tasks = payload.get("tasks") or []
        if not tasks:
            raise ProviderError(UNAVAILABLE_MESSAGE, detail="no tasks in answer")
        task = tasks[0] if isinstance(tasks, list) else None
        if not isinstance(task, dict):
            raise ProviderError(UNAVAILABLE_MESSAGE, detail="unexpected task shape")
        if task.get("status_code") != OK:
            raise ProviderError(
                UNAVAILABLE_MESSAGE,
                detail=f"task status {task.get('status_code')}: "
                f"{task.get('status_message')}",
            )
        items = task.get("result") or []
        if not isinstance(items, list):
            raise ProviderError(UNAVAILABLE_MESSAGE, detail="unexpected result shape")
        by_keyword = {}
        for item in items:
            if not isinstance(item, dict) or not item.get("keyword"):
                continue
            by_keyword[str(item["keyword"]).casefold()] = item
        results = []
        for keyword in keywords:
            item = by_keyword.get(keyword.casefold(), {})
            competition = str(item.get("competition") or "low").lower()
            if competition not in ("low", "medium", "high"):
                competition = "low"
            try:
                volume = max(0, int(item.get("search_volume") or 0))
                # Google Ads' competition index (0-100) stands in for difficulty.
                difficulty = max(0, min(100, int(item.get("competition_index") or 0)))
                cpc = float(item.get("cpc") or 0)
                if not math.isfinite(cpc):
                    raise ValueError(f"cpc is {cpc}")
            except (TypeError, ValueError, OverflowError) as exc:
                # A malformed number is an unusable answer, not a crash.
                raise ProviderError(
                    UNAVAILABLE_MESSAGE, detail=f"bad number for {keyword!r}: {exc}"
                ) from exc
            results.append(
                KeywordResult(
                    keyword=keyword,
                    search_volume=volume,
                    difficulty=difficulty,
                    cpc=max(0.0, round(cpc, 2)),
                    competition=competition,
                    intent=infer_intent(keyword),
                )
            )
        return results
