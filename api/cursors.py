"""Opaque keyset cursors: the sort values of the last row of a page, so the
next page starts right after it through the same index (never OFFSET)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json

from django.db.models import Q, QuerySet


class CursorInvalid(ValueError):
    pass


def cursor_encode(values: list) -> str:
    parts = [v.isoformat() if isinstance(v, dt.datetime) else v for v in values]
    raw = json.dumps(parts, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(value: str, kinds: tuple[type, ...]) -> list:
    """The values in ``value``, each of the type in ``kinds`` (datetime, int or
    str), or CursorInvalid."""
    if len(value) > 300:
        raise CursorInvalid("The cursor is not valid.")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        parts = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise CursorInvalid("The cursor is not valid.") from None
    if not isinstance(parts, list) or len(parts) != len(kinds):
        raise CursorInvalid("The cursor is not valid.")
    values = []
    for part, kind in zip(parts, kinds, strict=True):
        try:
            if kind is dt.datetime:
                moment = dt.datetime.fromisoformat(part)
                if moment.tzinfo is None:
                    raise ValueError
                values.append(moment)
            elif kind is int:
                if not isinstance(part, int) or isinstance(part, bool):
                    raise ValueError
                values.append(part)
            else:
                if not isinstance(part, str) or not part.isalnum() or len(part) > 25:
                    raise ValueError
                values.append(part)
        except (TypeError, ValueError):
            raise CursorInvalid("The cursor is not valid.") from None
    return values


def keyset_after(qs: QuerySet, fields: tuple[str, ...], values: list) -> QuerySet:
    """Rows after ``values`` in the order ``-f1, -f2, …`` (all descending):
    (f1 < v1) OR (f1 = v1 AND f2 < v2) OR …"""
    condition = Q()
    for i, field in enumerate(fields):
        step = Q(**{f"{field}__lt": values[i]})
        for prev_field, prev_value in zip(fields[:i], values[:i], strict=True):
            step &= Q(**{prev_field: prev_value})
        condition |= step
    return qs.filter(condition)


def page_of(qs: QuerySet, fields: tuple[str, ...], cursor: str | None, limit: int):
    """``(rows, next_cursor)``: up to ``limit`` rows of ``qs`` ordered by the
    descending ``fields``, starting after ``cursor``."""
    kinds = tuple(_kind(qs.model, f) for f in fields)
    if cursor:
        qs = keyset_after(qs, fields, cursor_decode(cursor, kinds))
    rows = list(qs.order_by(*(f"-{f}" for f in fields))[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = (
        cursor_encode([getattr(rows[-1], f) for f in fields]) if more and rows else None
    )
    return rows, next_cursor


def _kind(model, field_name: str) -> type:
    internal = model._meta.get_field(field_name).get_internal_type()
    if internal == "DateTimeField":
        return dt.datetime
    if internal in ("IntegerField", "PositiveIntegerField", "BigIntegerField"):
        return int
    return str
