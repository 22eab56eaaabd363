"""Display strings for list rows, made in Python once per row.

A list page of 50 rows spent a third of its time in template filters
(``date``, ``intcomma``, ``truncatechars``): each goes through the
localization machinery (format lookup per call, lazy translations) to produce
the same English text every time. These helpers produce exactly what those
filters produce on this site (English only, ``USE_I18N = False``; see
tests/core/test_formatting.py, which compares them with the filters), at a
fraction of the cost; templates still format single values with the filters.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Iterable

from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.safestring import SafeString, mark_safe

# An id every ``<id:…>`` URL pattern accepts (core.ids.IdConverter: 25 characters).
_ID_PLACEHOLDER = "a" * 25


def url_for_ids(viewname: str) -> Callable[[str], str]:
    """``{% url viewname row.id %}`` for every row of a list at the cost of one
    ``reverse()``: the URL is reversed once with a placeholder id, and each
    row's is that URL with its id in place."""
    before, after = reverse(viewname, args=[_ID_PLACEHOLDER]).split(_ID_PLACEHOLDER)
    return lambda pk: f"{before}{pk}{after}"


def number_label(value: int | float | None) -> str:
    """``{{ value|intcomma }}`` for an integer: 12345 → "12,345"."""
    if value is None:
        return ""
    return f"{int(value):,}"


def date_label(value: dt.datetime) -> str:
    """``{{ value|date:"M j, Y" }}``: "Nov 27, 2026" in the site's time zone."""
    value = timezone.localtime(value)
    return f"{_MONTHS[value.month - 1]} {value.day}, {value.year}"


def datetime_label(value: dt.datetime) -> str:
    """``{{ value|date:"M j, Y H:i" }}``: "Nov 27, 2026 21:14"."""
    value = timezone.localtime(value)
    return (
        f"{_MONTHS[value.month - 1]} {value.day}, {value.year} "
        f"{value.hour:02d}:{value.minute:02d}"
    )


def iso_datetime(value: dt.datetime) -> str:
    """``{{ value|date:"c" }}`` (a ``<time datetime>``), in the site's time zone."""
    return timezone.localtime(value).isoformat()


def truncate_label(text: str, length: int) -> str:
    """``{{ text|truncatechars:length }}``: at most ``length`` characters, the
    last one "…" when cut."""
    if len(text) <= length:
        return text
    return text[: length - 1] + "…"


_MONTHS = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def escape_unless_safe(value) -> str:
    """``conditional_escape(value)`` without its lazy-argument wrappers (each
    call goes through ``keep_lazy``, which checks every argument for a lazy
    string: on the history page that was half the cost of 750 escapes)."""
    if isinstance(value, Promise):
        value = str(value)
    if hasattr(value, "__html__"):
        return value.__html__()
    return html.escape(str(value))


def html_format(template: str, /, *args, **kwargs) -> SafeString:
    """``django.utils.html.format_html``: every value escaped unless it is
    already safe, the template not (it is the code's own)."""
    return mark_safe(  # noqa: S308 - every value escaped above
        template.format(
            *(escape_unless_safe(a) for a in args),
            **{name: escape_unless_safe(v) for name, v in kwargs.items()},
        )
    )


def html_format_join(sep: str, template: str, rows: Iterable) -> SafeString:
    """``django.utils.html.format_html_join``: ``template`` per row (a tuple of
    positional values), joined by ``sep`` (escaped unless safe)."""
    return mark_safe(  # noqa: S308 - every value escaped by html_format
        escape_unless_safe(sep).join(html_format(template, *row) for row in rows)
    )
