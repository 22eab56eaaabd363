"""Keyword research reads: usage meters, history pages, sorted results."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass

from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from core.cache import cache_get_or_none, cache_set_quietly
from searches.models import APIUsage, SavedSearch, SearchHistory

HISTORY_PAGE_SIZE = 50
SAVED_PAGE_SIZE = 25
# Where the search page keeps this browser's last results (the session).
SESSION_KEY = "searches_last"


# --- history: keyset pagination ------------------------------------------------------


def history_cursor_encode(searched_at: dt.datetime, pk: str) -> str:
    stamp = int(searched_at.timestamp() * 1_000_000)
    raw = f"{stamp}:{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def history_cursor_decode(value: str | None) -> tuple[dt.datetime, str] | None:
    """``(searched_at, id)`` from a cursor, or None when absent or malformed."""
    if not value or len(value) > 100:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        stamp, pk = raw.split(":", 1)
        moment = dt.datetime.fromtimestamp(int(stamp) / 1_000_000, tz=dt.UTC)
    except (ValueError, binascii.Error, OverflowError, OSError, UnicodeDecodeError):
        return None
    if not pk or len(pk) > 25 or not pk.isalnum():
        return None
    return moment, pk


HISTORY_LIST_FIELDS = (
    "id",
    "keywords",
    "keyword_count",
    "avg_volume",
    "total_volume",
    "provider",
    "searched_at",
)


@dataclass(frozen=True)
class HistoryPage:
    rows: list[dict]
    older_cursor: str | None  # ?before= of the next older page
    newer_cursor: str | None  # ?after= of the next newer page
    # The newest page, read without a cursor (its emptiness means no history).
    is_first: bool = False
    # A cursor was sent but could not be read: the newest page is shown instead.
    cursor_invalid: bool = False


def _history_cursor_of(row: dict) -> str:
    return history_cursor_encode(row["searched_at"], row["id"])


def history_page(
    *,
    user,
    before: str | None = None,
    after: str | None = None,
    size: int = HISTORY_PAGE_SIZE,
) -> HistoryPage:
    """One page of the user's history, newest first, with the cursors of the
    pages either side.

    Keyset pagination on (searched_at, id) walks ``searchhist_user_time_idx``
    forwards (``before``: older rows) or backwards (``after``: newer rows, read
    oldest first then reversed): every page is one query however deep, and
    nothing is counted. Rows are dicts of the columns the history table
    renders (not IP, user agent, locale …): the page only displays them.
    """
    qs = SearchHistory.objects.filter(user=user).values(*HISTORY_LIST_FIELDS)
    newer = history_cursor_decode(after)
    older = history_cursor_decode(before) if newer is None else None
    invalid = bool(before or after) and newer is None and older is None
    if newer is not None:
        moment, pk = newer
        # The plain >= bound lets PostgreSQL start the index scan at the cursor;
        # the exclusion breaks ties on the same instant by id.
        rows = list(
            qs.filter(searched_at__gte=moment)
            .exclude(searched_at=moment, id__lte=pk)
            .order_by("searched_at", "id")[: size + 1]
        )
        has_newer = len(rows) > size
        rows = rows[:size]
        rows.reverse()
        if has_newer or len(rows) == size:
            return HistoryPage(
                rows=rows,
                older_cursor=_history_cursor_of(rows[-1]),
                newer_cursor=_history_cursor_of(rows[0]) if has_newer else None,
            )
        # Fewer newer rows than a page (rows deleted, a made-up cursor): the
        # newest page, so paging back up always ends on the same first page.
    qs = qs.order_by("-searched_at", "-id")
    if older is not None:
        moment, pk = older
        qs = qs.filter(searched_at__lte=moment).exclude(searched_at=moment, id__gte=pk)
    rows = list(qs[: size + 1])
    has_older = len(rows) > size
    rows = rows[:size]
    return HistoryPage(
        rows=rows,
        older_cursor=_history_cursor_of(rows[-1]) if has_older else None,
        # Below a cursor there is at least the row it was made from.
        newer_cursor=_history_cursor_of(rows[0]) if older and rows else None,
        is_first=older is None,
        cursor_invalid=invalid,
    )


def history_keywords_per_day(
    *, user, days: int = 30, now: dt.datetime | None = None
) -> tuple[dict[dt.date, int], dt.date]:
    """Keywords the user searched on each of the last ``days`` days (today
    included) in the current time zone, and today's date: one GROUP BY over
    the ``searchhist_user_time_idx`` range of those days. Days without a
    search are missing from the dict."""
    zone = timezone.get_current_timezone()
    today = timezone.localdate(now or timezone.now(), zone)
    since = dt.datetime.combine(
        today - dt.timedelta(days=days - 1), dt.time.min, tzinfo=zone
    )
    rows = (
        SearchHistory.objects.filter(user=user, searched_at__gte=since)
        .annotate(day=TruncDate("searched_at", tzinfo=zone))
        .values("day")
        .annotate(keywords=Sum("keyword_count"))
        .order_by()
        .values_list("day", "keywords")
    )
    return {day: int(total) for day, total in rows if day <= today}, today


# A day's worth: the key changes with the user's next search and with the date.
HISTORY_CHART_CACHE_SECONDS = 24 * 60 * 60


def history_chart_counts(
    *, user, newest_id: str | None, days: int = 30
) -> tuple[dict[dt.date, int], dt.date]:
    """:func:`history_keywords_per_day`, cached until the user searches again.

    A user's history only grows (rows are never edited; deleting an account
    removes them all), so the 30 days' sums are fixed by the newest row's id,
    the user's running keyword total (``keyword_searches_total``, raised by
    every search: a row dated before the newest, from a server whose clock is
    behind, still changes the key), the day and the time zone. The sum reads
    every search of the last 30 days (36,000 for the busiest user of the large
    bench, 14 ms); a cache hit is one read. ``newest_id`` is None when the
    caller does not know the newest row (an older page): no cache then. An
    unreachable cache only costs the query.
    """
    if newest_id is None:
        return history_keywords_per_day(user=user, days=days)
    today = timezone.localdate()
    key = (
        f"history-chart:1:{user.pk}:{newest_id}:"
        f"{getattr(user, 'keyword_searches_total', '')}:{today.isoformat()}:"
        f"{timezone.get_current_timezone_name()}:{days}"
    )
    cached = cache_get_or_none(key)
    if cached is not None:
        return {dt.date.fromisoformat(day): n for day, n in cached.items()}, today
    counts, today = history_keywords_per_day(user=user, days=days)
    cache_set_quietly(
        key,
        {day.isoformat(): n for day, n in counts.items()},
        timeout=HISTORY_CHART_CACHE_SECONDS,
    )
    return counts, today


def saved_searches_for(user):
    """The user's saved searches, most recently opened first (no snapshots)."""
    return (
        SavedSearch.objects.filter(user=user)
        .defer("results", "keywords")
        .order_by("-last_accessed_at", "-id")
    )


# --- result tables ---------------------------------------------------------------

_COMPETITION_ORDER = {"low": 0, "medium": 1, "high": 2}
SORT_COLUMNS = {
    "keyword": ("Keyword", lambda r: r["keyword"]),
    "search_volume": ("Search volume", lambda r: int(r["search_volume"])),
    "difficulty": ("Difficulty", lambda r: int(r["difficulty"])),
    "cpc": ("CPC (USD)", lambda r: float(r["cpc"])),
    "competition": (
        "Competition",
        lambda r: _COMPETITION_ORDER.get(r["competition"], 0),
    ),
    "intent": ("Intent", lambda r: r["intent"]),
}
DEFAULT_SORT = "-search_volume"


def sort_param_clean(value: str | None) -> str:
    value = (value or "").strip()
    return value if value.lstrip("-") in SORT_COLUMNS else DEFAULT_SORT


def results_sorted(results: list[dict], sort: str | None) -> list[dict]:
    """The result rows ordered by ``sort`` (a column name, ``-`` for descending);
    ties keep keyword order so the page and its CSV export always agree."""
    sort = sort_param_clean(sort)
    column = sort.lstrip("-")
    key = SORT_COLUMNS[column][1]
    by_keyword = sorted(results, key=lambda r: r["keyword"])
    return sorted(by_keyword, key=key, reverse=sort.startswith("-"))


def results_table(results: list[dict], sort: str | None) -> dict:
    """Rows, headers with sort links and volume-bar widths for a results table."""
    sort = sort_param_clean(sort)
    rows = results_sorted(results, sort)
    top = max((int(r["search_volume"]) for r in rows), default=0) or 1
    table_rows = [
        {**row, "bar_pct": max(1, round(int(row["search_volume"]) * 100 / top))}
        for row in rows
    ]
    headers = []
    for column, (label, _) in SORT_COLUMNS.items():
        active = sort.lstrip("-") == column
        descending = sort.startswith("-")
        if active:
            next_sort = column if descending else f"-{column}"
        else:
            next_sort = column if column in ("keyword", "intent") else f"-{column}"
        headers.append(
            {
                "column": column,
                "label": label,
                "next_sort": next_sort,
                "active": active,
                "arrow": ("▼" if descending else "▲") if active else "",
                "numeric": column in ("search_volume", "difficulty", "cpc"),
            }
        )
    return {"rows": table_rows, "headers": headers, "sort": sort}


CSV_HEADER = [label for label, _ in SORT_COLUMNS.values()]


def csv_cell(value) -> str:
    """A cell safe to open in a spreadsheet (no formula injection)."""
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def results_csv_rows(results: list[dict], sort: str | None) -> list[list[str]]:
    rows = [CSV_HEADER]
    for r in results_sorted(results, sort):
        rows.append(
            [
                csv_cell(r["keyword"]),
                str(int(r["search_volume"])),
                str(int(r["difficulty"])),
                f"{float(r['cpc']):.2f}",
                r["competition"],
                r["intent"],
            ]
        )
    return rows


# --- the user's data archive ("Download my data", accounts.hooks) ---------------------

_EXPORT_CHUNK = 2000


def user_export_saved_searches(*, user) -> list[dict]:
    """The user's saved searches, with their result snapshots."""
    return list(
        SavedSearch.objects.filter(user=user)
        .order_by("created_at", "id")
        .values(
            "id",
            "name",
            "keywords",
            "location",
            "language",
            "match_type",
            "keyword_count",
            "provider",
            "results",
            "last_accessed_at",
            "created_at",
            "updated_at",
        )
    )


def user_export_search_history(*, user):
    """Every search the user ran, oldest first, streamed (it can be long):
    ``searchhist_user_time_idx`` walked backwards."""
    return (
        SearchHistory.objects.filter(user=user)
        .order_by("searched_at", "id")
        .values(
            "id",
            "keywords",
            "location",
            "language",
            "match_type",
            "provider",
            "cache_hit",
            "response_time_ms",
            "keyword_count",
            "avg_volume",
            "total_volume",
            "searched_at",
            "ip_address",
            "user_agent",
        )
        .iterator(chunk_size=_EXPORT_CHUNK)
    )


def user_export_api_usage(*, user):
    """Every API call the user made, oldest first, streamed
    (``apiusage_user_time_idx``)."""
    return (
        APIUsage.objects.filter(user=user)
        .order_by("timestamp", "id")
        .values(
            "endpoint",
            "method",
            "status_code",
            "duration_ms",
            "timestamp",
            "ip_address",
            "user_agent",
        )
        .iterator(chunk_size=_EXPORT_CHUNK)
    )
