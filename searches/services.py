"""Keyword research writes: run a search (quota, cache, provider, history),
saved searches, monthly usage resets and API usage records."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
import unicodedata
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections, router, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.selectors import (
    next_reset_at,
    quota_limit,
    tier_effective,
    tier_effective_sql,
)
from core.cache import cache_get_or_none, cache_set_quietly
from core.models import AuditLog
from core.services import audit_log_changes, model_snapshot, rows_delete_in_batches
from searches.models import (
    MAX_KEYWORD_LENGTH,
    MAX_KEYWORDS,
    APIUsage,
    MatchType,
    SavedSearch,
    SearchHistory,
)
from searches.providers import (
    LANGUAGES,
    LOCATIONS,
    KeywordResult,
    ProviderError,
    get_provider,
)

_SEPARATORS = re.compile(r"[,\r\n]+")
_ALLOWED_CONTROL = {"\t", "\n", "\r"}
CACHE_VERSION = 1


class QuotaExceeded(ValidationError):
    """The user's monthly keyword quota cannot cover this search."""

    def __init__(self, *, used: int, limit: int, requested: int, reset_at):
        self.used, self.limit, self.requested, self.reset_at = (
            used,
            limit,
            requested,
            reset_at,
        )
        reset = (
            f" Your quota resets on {reset_at:%b} {reset_at.day}, {reset_at.year}."
            if reset_at
            else ""
        )
        super().__init__(
            f"Monthly keyword quota reached: you have used {used:,} of {limit:,} "
            f"keywords and this search needs {requested:,}.{reset} "
            "Upgrade your plan for more.",
            code="quota_exceeded",
        )

    def details(self) -> dict:
        """What both JSON APIs add to their quota error (used, limit, reset)."""
        return {
            "used": self.used,
            "limit": self.limit,
            "reset_at": self.reset_at.isoformat() if self.reset_at else None,
        }


class AnonymousLimitExceeded(ValidationError):
    """An anonymous visitor used up today's free searches."""

    def __init__(self, *, limit: int):
        self.limit = limit
        super().__init__(
            f"You have used today's {limit} free searches. Sign in to research "
            "more keywords.",
            code="anonymous_limit",
        )


@dataclass
class SearchOutcome:
    keywords: list[str]
    location: str
    language: str
    match_type: str
    provider: str
    is_sample: bool
    cache_hit: bool
    response_time_ms: int
    results: list[dict]
    history: SearchHistory
    searched_at: dt.datetime = field(default_factory=timezone.now)

    def as_session(self) -> dict:
        """What the search page keeps in the session to sort, export and save."""
        return {
            "keywords": self.keywords,
            "location": self.location,
            "language": self.language,
            "match_type": self.match_type,
            "provider": self.provider,
            "cache_hit": self.cache_hit,
            "results": self.results,
            "searched_at": self.searched_at.isoformat(),
        }


# --- input ------------------------------------------------------------------------


def keywords_parse(raw: str | list | tuple | None) -> list[str]:
    """Split, trim, lower-case and de-duplicate keywords; raise on bad input.

    A string is split on commas and line breaks; a list is taken item by item.
    Whitespace runs (tabs included) become one space. Returns 1 to 200 keywords
    of at most 80 characters each, in the order first given.
    """
    if raw is None:
        raw = ""
    if isinstance(raw, str):
        parts = _SEPARATORS.split(raw)
        allowed = _ALLOWED_CONTROL
    elif isinstance(raw, list | tuple):
        if not all(isinstance(item, str) for item in raw):
            raise ValidationError("Keywords must be text.", code="invalid")
        parts = list(raw)
        allowed = {"\t"}
    else:
        raise ValidationError("Keywords must be text.", code="invalid")

    errors: list[str] = []
    keywords: list[str] = []
    seen: set[str] = set()
    for part in parts:
        if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in part):
            errors.append(
                f"Keyword “{_printable(part)}” contains a control character "
                "(such as a NUL byte); remove it."
            )
            continue
        keyword = " ".join(part.split())
        if not keyword:
            continue
        # Measured before lower-casing, which can lengthen text ("İ" is two
        # characters in lower case): the limit is on what the person typed.
        if len(keyword) > MAX_KEYWORD_LENGTH:
            errors.append(
                f"Keyword “{keyword[:30]}…” is {len(keyword)} characters long; "
                f"the most is {MAX_KEYWORD_LENGTH}."
            )
            continue
        keyword = keyword.lower()
        if keyword.casefold() in seen:
            continue
        seen.add(keyword.casefold())
        keywords.append(keyword)
    if errors:
        more = len(errors) - 5
        messages = errors[:5] + ([f"…and {more} more."] if more > 0 else [])
        raise ValidationError(messages, code="invalid")
    if not keywords:
        raise ValidationError("Enter at least one keyword.", code="required")
    if len(keywords) > MAX_KEYWORDS:
        raise ValidationError(
            f"Enter at most {MAX_KEYWORDS} keywords; you entered {len(keywords)}.",
            code="too_many",
        )
    return keywords


def _printable(text: str) -> str:
    cleaned = "".join(
        "�" if unicodedata.category(ch) == "Cc" else ch for ch in text.strip()
    )
    return cleaned[:30]


def search_options_clean(*, location: str, language: str, match_type: str):
    """Validate the search options; return them normalised."""
    location = (location or "US").strip().upper()
    language = (language or "en").strip().lower()
    match_type = (match_type or MatchType.BROAD).strip().lower()
    errors = {}
    if location not in LOCATIONS:
        errors["location"] = f"Choose a location: {', '.join(LOCATIONS)}."
    if language not in LANGUAGES:
        errors["language"] = f"Choose a language: {', '.join(LANGUAGES)}."
    if match_type not in MatchType.values:
        errors["match_type"] = "Choose broad, phrase or exact match."
    if errors:
        raise ValidationError(errors)
    return location, language, match_type


def user_agent(request) -> str:
    return (request.META.get("HTTP_USER_AGENT") or "")[:512]


# --- quota ------------------------------------------------------------------------


def _limit_sql(*, now: dt.datetime) -> tuple[str, list]:
    """``CASE <effective tier> WHEN ... END``: the monthly limit of the tier the
    user may use now (NULL = unlimited)."""
    quotas = settings.KEYWORD_QUOTAS
    tier_sql, params = tier_effective_sql(now=now)
    sql = [f"CASE {tier_sql}"]
    params = list(params)
    for tier, limit in quotas.items():
        sql.append("WHEN %s THEN %s::integer")
        params += [tier, limit]
    sql.append("ELSE %s::integer END")
    params.append(quotas.get("FREE"))
    return " ".join(sql), params


def quota_consume(*, user, count: int, now: dt.datetime | None = None) -> int:
    """Count ``count`` keywords against the user's monthly quota, atomically.

    One conditional UPDATE does everything, so concurrent searches can never
    exceed the limit: it resets the month first when ``monthly_reset_at`` has
    passed, adds ``count`` to both counters, and matches no row when the new
    monthly total would pass the tier's limit. Returns the new monthly total;
    raises :class:`QuotaExceeded` when refused.
    """
    now = now or timezone.now()
    User = get_user_model()
    table = connections[router.db_for_write(User)].ops.quote_name(User._meta.db_table)
    limit_sql, limit_params = _limit_sql(now=now)
    due = "(monthly_reset_at IS NOT NULL AND monthly_reset_at <= %s)"
    new_month = f"CASE WHEN {due} THEN %s ELSE keyword_searches_this_month + %s END"
    sql = f"""
        UPDATE {table} SET
            keyword_searches_this_month = {new_month},
            keyword_searches_total = keyword_searches_total + %s,
            monthly_reset_at = CASE
                WHEN monthly_reset_at IS NULL OR monthly_reset_at <= %s THEN %s
                ELSE monthly_reset_at END
        WHERE id = %s
          AND ({limit_sql} IS NULL OR {new_month} <= {limit_sql})
        RETURNING keyword_searches_this_month
    """  # noqa: S608 - only the quoted table name is interpolated
    params = [
        now, count, count,  # SET keyword_searches_this_month
        count,  # SET keyword_searches_total
        now, next_reset_at(now),  # SET monthly_reset_at
        user.pk,
        *limit_params,
        now, count, count,  # new_month in WHERE
        *limit_params,
    ]  # fmt: skip
    with connections[router.db_for_write(User)].cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is not None:
        return row[0]
    current = (
        User.objects.filter(pk=user.pk)
        .only(
            "keyword_searches_this_month",
            "monthly_reset_at",
            "tier",
            "subscription_status",
            "subscription_ends_at",
        )
        .first()
    )
    if current is None:
        raise ValidationError("Your account no longer exists.", code="no_user")
    raise QuotaExceeded(
        used=current.keyword_searches_this_month,
        limit=quota_limit(tier_effective(current, now=now)) or 0,
        requested=count,
        reset_at=current.monthly_reset_at,
    )


def quota_refund(*, user, count: int) -> None:
    """Give back keywords counted for a search that then failed."""
    get_user_model().objects.filter(pk=user.pk).update(
        keyword_searches_this_month=Greatest(
            F("keyword_searches_this_month") - count, Value(0)
        ),
        keyword_searches_total=Greatest(F("keyword_searches_total") - count, Value(0)),
    )


# Slots outlive the day they count by a little, so clock skew between workers
# cannot reopen a used slot early.
ANON_WINDOW_SECONDS = 26 * 60 * 60


def _anon_key(ip: str | None, now: dt.datetime) -> str:
    return f"searches:anon:{ip or 'unknown'}:{now:%Y-%m-%d}"


def anonymous_search_consume(*, ip: str | None, now: dt.datetime | None = None) -> str:
    """Take one of today's anonymous searches for ``ip``; return its slot key.

    Each allowed search is a slot key claimed with ``cache.add``, which is
    atomic on Redis (SET NX) and on the database cache (primary key), so
    concurrent requests can never take more than the daily allowance, whichever
    cache backs it.
    """
    now = now or timezone.now()
    base = _anon_key(ip, now)
    limit = settings.KEYWORD_ANON_SEARCHES_PER_DAY
    for slot in range(1, limit + 1):
        key = f"{base}:{slot}"
        if cache.add(key, 1, timeout=ANON_WINDOW_SECONDS):
            return key
    raise AnonymousLimitExceeded(limit=limit)


def anonymous_search_refund(*, slot_key: str) -> None:
    """Give back a slot taken by a search that then failed."""
    cache.delete(slot_key)


# --- search -------------------------------------------------------------------------


def results_cache_key(
    *, provider: str, keywords: list[str], location: str, language: str, match_type: str
) -> str:
    material = json.dumps(
        [provider, sorted(k.casefold() for k in keywords), location, language,
         match_type],
        separators=(",", ":"),
    )  # fmt: skip
    digest = hashlib.sha256(material.encode()).hexdigest()
    return f"searches:results:v{CACHE_VERSION}:{digest}"


def search_run(
    *,
    user,
    keywords: str | list[str],
    location: str = "US",
    language: str = "en",
    match_type: str = MatchType.BROAD,
    ip_address: str | None = None,
    user_agent: str = "",
    provider=None,
) -> SearchOutcome:
    """Run one keyword search and record it.

    Validates the input, counts it against the user's monthly quota (or the
    anonymous per-IP daily allowance) before any data is fetched, serves cached
    results when the same search ran in the last 24 hours, otherwise asks the
    provider. A provider failure gives the quota back, records no history and
    raises :class:`ProviderError`. Not one transaction on purpose: the quota
    UPDATE commits at once so no row lock is held during the provider's HTTP call.
    """
    keywords = keywords_parse(keywords)
    location, language, match_type = search_options_clean(
        location=location, language=language, match_type=match_type
    )
    provider = provider or get_provider()
    signed_in = user is not None and getattr(user, "is_authenticated", False)
    count = len(keywords)
    now = timezone.now()
    anon_slot = ""

    if signed_in:
        quota_consume(user=user, count=count, now=now)
    else:
        user = None
        allowed = settings.KEYWORD_ANON_MAX_KEYWORDS
        if count > allowed:
            raise ValidationError(
                f"Without an account a search may have up to {allowed} keywords; "
                f"you entered {count}. Sign in to research more.",
                code="anonymous_too_many",
            )
        anon_slot = anonymous_search_consume(ip=ip_address, now=now)

    started = time.monotonic()
    key = results_cache_key(
        provider=provider.name,
        keywords=keywords,
        location=location,
        language=language,
        match_type=match_type,
    )
    cached = cache_get_or_none(key, what="Keyword cache")
    try:
        if cached is not None:
            by_keyword = {item["keyword"].casefold(): item for item in cached}
            results = [by_keyword[k.casefold()] for k in keywords]
            cache_hit = True
        else:
            results = [
                r.as_dict()
                for r in _fetch(provider, keywords, location, language, match_type)
            ]
            cache_hit = False
            cache_set_quietly(
                key,
                results,
                timeout=settings.KEYWORD_CACHE_SECONDS,
                what="Keyword cache",
            )
        elapsed_ms = int((time.monotonic() - started) * 1000)
        total = sum(int(r["search_volume"]) for r in results)
        history = SearchHistory.objects.create(
            user=user,
            keywords=keywords,
            location=location,
            language=language,
            match_type=match_type,
            provider=provider.name,
            cache_hit=cache_hit,
            response_time_ms=elapsed_ms,
            keyword_count=count,
            total_volume=total,
            avg_volume=round(total / count) if count else 0,
            searched_at=now,
            user_agent=(user_agent or "")[:512],
            ip_address=ip_address,
        )
    except BaseException:
        # The search was not delivered (no data or no history row): hand the
        # allowance back.
        if signed_in:
            quota_refund(user=user, count=count)
        else:
            anonymous_search_refund(slot_key=anon_slot)
        raise
    return SearchOutcome(
        keywords=keywords,
        location=location,
        language=language,
        match_type=match_type,
        provider=provider.name,
        is_sample=bool(getattr(provider, "is_sample", False)),
        cache_hit=cache_hit,
        response_time_ms=elapsed_ms,
        results=results,
        history=history,
        searched_at=now,
    )


def _fetch(provider, keywords, location, language, match_type) -> list[KeywordResult]:
    results: list[KeywordResult] = []
    size = max(1, int(provider.batch_limit))
    for start in range(0, len(keywords), size):
        batch = keywords[start : start + size]
        answer = provider.search_keywords(batch, location, language, match_type)
        if len(answer) != len(batch):
            raise ProviderError(
                "Keyword data came back incomplete; please try again.",
                detail=f"{len(answer)} results for {len(batch)} keywords",
            )
        results.extend(answer)
    return results


# --- saved searches ------------------------------------------------------------------


def _name_clean(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({"name": "Give the search a name."})
    if len(name) > 120:
        raise ValidationError({"name": "Use at most 120 characters for the name."})
    return name


def saved_search_create(*, user, name: str, search: dict) -> SavedSearch:
    """Save a search with a snapshot of its results.

    ``search`` is what :meth:`SearchOutcome.as_session` returns.
    """
    keywords = keywords_parse(list(search.get("keywords") or []))
    location, language, match_type = search_options_clean(
        location=search.get("location", "US"),
        language=search.get("language", "en"),
        match_type=search.get("match_type", MatchType.BROAD),
    )
    results = [KeywordResult.from_dict(r).as_dict() for r in search.get("results", [])]
    saved = SavedSearch(
        user=user,
        name=_name_clean(name),
        keywords=keywords,
        location=location,
        language=language,
        match_type=match_type,
        keyword_count=len(keywords),
        results=results,
        provider=str(search.get("provider") or "sample")[:32],
        last_accessed_at=timezone.now(),
    )
    saved.full_clean()
    saved.save()
    return saved


def saved_search_open(*, saved_search: SavedSearch) -> SavedSearch:
    """Mark a saved search as opened now (it moves to the top of the list)."""
    now = timezone.now()
    SavedSearch.objects.filter(pk=saved_search.pk).update(last_accessed_at=now)
    saved_search.last_accessed_at = now
    return saved_search


def saved_search_rename(*, saved_search: SavedSearch, name: str) -> SavedSearch:
    saved_search.name = _name_clean(name)
    saved_search.save(update_fields=["name", "updated_at"])
    return saved_search


def saved_search_delete(*, saved_search: SavedSearch) -> None:
    saved_search.delete()


@transaction.atomic
def saved_search_rename_by_staff(
    *, saved_search: SavedSearch, name: str, actor, request=None
) -> SavedSearch:
    """The admin's one edit of a saved search (its results are evidence),
    recorded with the old and new name."""
    _staff_check(actor)
    old = SavedSearch.objects.values_list("name", flat=True).get(pk=saved_search.pk)
    saved_search_rename(saved_search=saved_search, name=name)
    audit_log_changes(
        action=AuditLog.Action.UPDATED,
        actor=actor,
        target=saved_search,
        before={"name": old},
        after={"name": saved_search.name},
        request=request,
    )
    return saved_search


# What a deletion's audit row keeps of a saved search (not the results).
SAVED_SEARCH_AUDIT_FIELDS = (
    "name",
    "user",
    "keyword_count",
    "location",
    "language",
    "match_type",
    "provider",
)


@transaction.atomic
def saved_search_delete_by_staff(
    *, saved_search: SavedSearch, actor, request=None
) -> None:
    _staff_check(actor)
    audit_log_changes(
        action=AuditLog.Action.DELETED,
        actor=actor,
        target=saved_search,
        before=model_snapshot(saved_search, fields=SAVED_SEARCH_AUDIT_FIELDS),
        after={},
        request=request,
    )
    saved_search_delete(saved_search=saved_search)


def _staff_check(actor) -> None:
    if actor is None or not getattr(actor, "is_staff", False):
        raise PermissionDenied("Only staff can do this.")


# --- monthly reset and API usage --------------------------------------------------


def usage_reset_monthly(*, now: dt.datetime | None = None) -> int:
    """Zero the monthly counter of every user whose reset date has passed.

    The searches themselves also reset lazily (see :func:`quota_consume`); this
    keeps counters and meters right for users who have not searched since.
    Returns how many users were reset.
    """
    now = now or timezone.now()
    return (
        get_user_model()
        .objects.filter(monthly_reset_at__lte=now)
        .update(keyword_searches_this_month=0, monthly_reset_at=next_reset_at(now))
    )


def api_usage_record(
    *,
    user,
    endpoint: str,
    method: str,
    status_code: int,
    duration_ms: int,
    ip_address: str | None,
    user_agent: str,
    key_prefix: str = "",
) -> APIUsage:
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    return APIUsage.objects.create(
        user=user,
        key_prefix=key_prefix[:16],
        endpoint=endpoint[:200],
        method=method[:10],
        status_code=status_code,
        duration_ms=max(0, duration_ms),
        ip_address=ip_address,
        user_agent=(user_agent or "")[:512],
    )


def api_usage_prune(
    *,
    days: int | None = None,
    now: dt.datetime | None = None,
    batch_size: int = 10_000,
) -> int:
    """Delete API usage rows older than ``days`` (default
    ``API_USAGE_RETENTION_DAYS``, 13 months); return how many went.

    One ``DELETE … WHERE id IN (SELECT id … ORDER BY timestamp LIMIT n)`` per
    batch, each its own transaction (autocommit), oldest first along
    ``apiusage_time_idx``: a backlog never holds one long lock, and an
    interrupted run resumes where it stopped.
    """
    days = settings.API_USAGE_RETENTION_DAYS if days is None else days
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    oldest = APIUsage.objects.filter(timestamp__lt=cutoff).order_by("timestamp", "id")
    return rows_delete_in_batches(oldest, batch_size=batch_size)


# --- account deletion ---------------------------------------------------------------


def user_activity_anonymise(*, user) -> dict[str, int]:
    """Before ``user`` is deleted (``accounts.hooks``): their search history and
    API usage stay as anonymous statistics, so what could point back at them
    goes now: the IP address, the user agent and the link to the account. One
    UPDATE per table, found through ``searchhist_user_time_idx`` and
    ``apiusage_user_time_idx``; the deletion's SET NULL then has nothing left
    to rewrite. Returns rows anonymised by table."""
    anonymous = {"user": None, "ip_address": None, "user_agent": ""}
    return {
        "search history": SearchHistory.objects.filter(user=user).update(**anonymous),
        "api usage": APIUsage.objects.filter(user=user).update(**anonymous),
    }
