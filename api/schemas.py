"""What the API reads and writes, as typed schemas (the OpenAPI document is
generated from these)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from ninja import Field, Schema
from pydantic import ConfigDict

from apps_catalog.models import DOMAIN_REGEX
from searches.providers.base import LANGUAGES, LOCATIONS

# The rules the services apply, written as patterns so that the OpenAPI document
# states them exactly: a client (or schemathesis) that follows the schema is never
# refused, and anything the schema forbids is refused before any service runs.
# Character classes are spelled out (no \s alone) so Python's and Rust's regex
# engines (pydantic validates with Rust's) agree on every character.
_CC = r"\x00-\x1f\x7f-\x9f"
# Free text: anything but NUL (PostgreSQL text cannot hold it).
TEXT = r"^[^\x00]*$"
# A line of text: no control characters, at least one visible character.
LINE = rf"^[^{_CC}]*[^\s{_CC}][^{_CC}]*$"
# Text with at least one visible character (control characters allowed).
NON_BLANK_TEXT = rf"^[^\x00]*[^\s{_CC}][^\x00]*$"
# A keyword: like LINE, tabs allowed (they become spaces).
_KW = r"\x00-\x08\x0a-\x1f\x7f-\x9f"
KEYWORD = rf"^[^{_KW}]*[^\s{_CC}][^{_KW}]*$"
ID = r"^[a-z][a-z0-9]{24}$"

Location = Literal[tuple(LOCATIONS)]  # type: ignore[valid-type]
Language = Literal[tuple(LANGUAGES)]  # type: ignore[valid-type]


class In(Schema):
    """Request bodies: unknown fields are refused (a typo is an error, not a
    silently ignored value), and the schema says so (additionalProperties: false)."""

    model_config = ConfigDict(extra="forbid")


class Problem(Schema):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict] | None = None


# --- keyword research ---------------------------------------------------------


class SearchIn(In):
    keywords: list[Annotated[str, Field(max_length=80, pattern=KEYWORD)]] = Field(
        ...,
        min_length=1,
        max_length=200,
        description="1 to 200 keywords of at most 80 characters; trimmed, "
        "lower-cased and de-duplicated.",
        examples=[["seo tools", "keyword planner"]],
    )
    location: Location = "US"
    language: Language = "en"
    match_type: Literal["broad", "phrase", "exact"] = "broad"


class KeywordRow(Schema):
    keyword: str
    search_volume: int | None = None
    difficulty: int | None = None
    cpc: float | None = None
    competition: str | None = None
    intent: str | None = None


class SearchOut(Schema):
    keywords: list[str]
    location: str
    language: str
    match_type: str
    provider: str
    is_sample: bool
    cache_hit: bool
    results: list[KeywordRow]
    history_id: str
    usage: Usage


class Usage(Schema):
    tier: str
    used: int
    limit: int | None = Field(None, description="null: unlimited")
    remaining: int | None = None
    resets_at: dt.datetime | None = None


class SavedSearchIn(In):
    name: str = Field(..., max_length=120, pattern=LINE)
    search: SearchIn


class SavedSearchRename(In):
    name: str = Field(..., max_length=120, pattern=LINE)


class SavedSearchSummary(Schema):
    id: str
    name: str
    keywords: list[str]
    keyword_count: int
    location: str
    language: str
    match_type: str
    provider: str
    created_at: dt.datetime
    last_accessed_at: dt.datetime


class SavedSearchOut(SavedSearchSummary):
    results: list[KeywordRow]


class HistoryRow(Schema):
    id: str
    keywords: list[str]
    keyword_count: int
    avg_volume: int | None = None
    total_volume: int | None = None
    provider: str
    searched_at: dt.datetime


class Page(Schema):
    next_cursor: str | None = Field(
        None, description="Pass as ?cursor= for the next page; null on the last."
    )


class SavedSearchPage(Page):
    items: list[SavedSearchSummary]


class HistoryPage(Page):
    items: list[HistoryRow]


# --- catalog -----------------------------------------------------------------------


class Monetization(Schema):
    id: str
    type: str
    price: float | None = None
    subscription_interval: str | None = None
    features: list[str]


class AppSummary(Schema):
    id: str
    name: str
    description: str
    status: str
    fork_count: int
    owner_name: str
    created_at: dt.datetime


class AppOut(AppSummary):
    domain: str | None = None
    forked_from_id: str | None = None
    monetization: list[Monetization]
    updated_at: dt.datetime


class AppPage(Page):
    items: list[AppSummary]


class AppIn(In):
    name: str = Field(..., max_length=255, pattern=NON_BLANK_TEXT)
    description: str = Field("", max_length=20_000, pattern=TEXT)
    domain: str | None = Field(
        None,
        max_length=253,
        pattern=DOMAIN_REGEX,
        description="Lower-case host name, unique across apps (409 if taken).",
    )
    status: Literal["DRAFT", "ACTIVE"] = "DRAFT"


class AppPatch(In):
    name: str | None = Field(None, max_length=255, pattern=NON_BLANK_TEXT)
    description: str | None = Field(None, max_length=20_000, pattern=TEXT)
    domain: str | None = Field(None, max_length=253, pattern=DOMAIN_REGEX)
    status: Literal["DRAFT", "ACTIVE", "ARCHIVED"] | None = None


class RequirementOut(Schema):
    id: str
    description: str
    priority: str
    status: str
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class RequirementIn(In):
    description: str = Field(..., max_length=20_000, pattern=NON_BLANK_TEXT)
    priority: Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"] = "MEDIUM"
    status: Literal["PENDING", "IN_PROGRESS", "COMPLETED", "REJECTED"] = "PENDING"


class RequirementPatch(In):
    version: int = Field(
        ..., ge=1, description="The version you read; a newer one answers 409."
    )
    description: str | None = Field(None, max_length=20_000, pattern=NON_BLANK_TEXT)
    priority: Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"] | None = None
    status: Literal["PENDING", "IN_PROGRESS", "COMPLETED", "REJECTED"] | None = None


SearchOut.model_rebuild()
