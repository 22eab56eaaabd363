"""Pagination that never counts a big table: shared by public lists and the admin."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property

# Below this many rows a table (or a filtered list) is counted exactly.
EXACT_COUNT_LIMIT = 10_000


def capped_count(queryset, *, cap: int = EXACT_COUNT_LIMIT) -> int:
    """Rows of ``queryset``, counted up to ``cap + 1`` at most.

    ``SELECT COUNT(*) FROM (SELECT id … LIMIT cap + 1)``: the scan stops after
    ``cap + 1`` rows, so a result above ``cap`` means "more than cap". Shared by
    the admin's paginator and the catalog's pages.
    """
    return queryset.order_by().values("pk")[: cap + 1].count()


class CappedPaginator(Paginator):
    """Counts at most ``cap`` rows.

    ``COUNT(*)`` over 700,000 ACTIVE apps takes 0.3-1 s however good the
    indexes are; counting up to 10,000 (``SELECT COUNT(*) FROM (… LIMIT
    10001)``) takes milliseconds, and nobody pages past page 400 anyway.
    """

    cap = EXACT_COUNT_LIMIT

    @cached_property
    def count(self) -> int:
        return capped_count(self.object_list, cap=self.cap)

    @property
    def count_label(self) -> str:
        if self.count > self.cap:
            return f"{self.cap:,}+"
        return f"{self.count:,}"


class PeekPage:
    """A page of a list that is never counted: the page's rows plus whether
    another page follows (one row more is read to know). For the public lists,
    where "Page 3" with Previous/Next is all a reader needs and a count of the
    matching rows would be a second query costing more than the page itself.
    """

    def __init__(self, rows: list, *, number: int, per_page: int, has_next: bool):
        self.object_list = rows
        self.number = number
        self.per_page = per_page
        self._has_next = has_next

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)

    def __bool__(self) -> bool:
        return bool(self.object_list)

    def has_next(self) -> bool:
        return self._has_next

    def has_previous(self) -> bool:
        return self.number > 1

    def has_other_pages(self) -> bool:
        return self.has_next() or self.has_previous()

    def next_page_number(self) -> int:
        return self.number + 1

    def previous_page_number(self) -> int:
        return self.number - 1

    def start_index(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.object_list else 0

    def end_index(self) -> int:
        return (self.number - 1) * self.per_page + len(self.object_list)


def peek_page(
    queryset, number, *, per_page: int, max_rows: int = EXACT_COUNT_LIMIT
) -> PeekPage:
    """Page ``number`` (any client text: not a number or below 1 is page 1) of
    ``queryset`` in one query, ``OFFSET … LIMIT per_page + 1``. Pages stop at
    ``max_rows`` rows, as the counted lists do (OFFSET cost grows with depth).
    A number past the last page (rows deleted since the link was made, an
    edited URL) reads page 1 instead: a second query, only then."""
    try:
        number = max(1, int(number))
    except (TypeError, ValueError):
        number = 1
    last = max(1, -(-max_rows // per_page))
    number = min(number, last)
    offset = (number - 1) * per_page
    rows = list(queryset[offset : offset + per_page + 1])
    if not rows and number > 1:
        return peek_page(queryset, 1, per_page=per_page, max_rows=max_rows)
    has_next = len(rows) > per_page and number < last
    return PeekPage(
        rows[:per_page], number=number, per_page=per_page, has_next=has_next
    )
