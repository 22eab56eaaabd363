"""Reading the audit trail's field diffs: the ``changes`` of an
:class:`~core.models.AuditLog` row as lines a person reads ("tier: FREE →
PRO"), in the admin's list and on a row's page.

``changes`` holds ``{"field": {"old": …, "new": …}}`` (``core.services.
field_changes``); a secret field holds ``"(changed)"``. Rows written before
the diffs existed hold ``{"field": [old, new]}`` or plain facts
(``{"by": "staff"}``); both still read.
"""

from __future__ import annotations

import json

from django.db.models import JSONField
from django.db.models.expressions import RawSQL

from core.models import AuditLog

# The list column shows each value cut to this many characters.
SUMMARY_VALUE_CHARS = 40
SUMMARY_FIELDS = 4
EMPTY = "(empty)"
NONE = "—"

# Each value of ``changes`` cut in the database, so the list never loads a
# whole diff (a description can be long): one jsonb object per row, with the
# same shape as ``changes``.
_TRIMMED_SQL = """(
SELECT jsonb_object_agg(e.key, CASE
    WHEN jsonb_typeof(e.value) = 'object' AND e.value ? 'old' AND e.value ? 'new'
        THEN jsonb_build_object(
            'old', left(e.value ->> 'old', %s), 'new', left(e.value ->> 'new', %s))
    WHEN jsonb_typeof(e.value) = 'array' AND jsonb_array_length(e.value) = 2
        THEN jsonb_build_object(
            'old', left(e.value ->> 0, %s), 'new', left(e.value ->> 1, %s))
    ELSE to_jsonb(left(e.value #>> '{}', %s))
    END)
FROM jsonb_each(
    CASE WHEN jsonb_typeof(TABLE."changes") = 'object' THEN TABLE."changes" END
) AS e
)"""


def changes_trimmed(*, ids) -> dict[str, dict]:
    """The ``changes`` of the audit rows ``ids``, every value cut to
    :data:`SUMMARY_VALUE_CHARS` by the database; one query whatever the number
    of rows (the admin list's page)."""
    if not ids:
        return {}
    table = f'"{AuditLog._meta.db_table}"'
    sql = _TRIMMED_SQL.replace("TABLE", table)
    limit = SUMMARY_VALUE_CHARS + 1  # one more: the display adds the ellipsis
    # The SQL is a constant with the model's own table name; values are params.
    trimmed = RawSQL(sql, [limit] * 5, output_field=JSONField())  # noqa: S611
    rows = (
        AuditLog.objects.filter(pk__in=list(ids))
        .order_by()
        .annotate(trimmed=trimmed)
        .values_list("pk", "trimmed")
    )
    return {pk: value or {} for pk, value in rows}


def value_text(value, *, limit: int | None = None) -> str:
    """One value as the trail shows it: text as is, ``None`` as a dash, other
    JSON as JSON."""
    if value is None:
        text = NONE
    elif value == "":
        text = EMPTY
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def change_rows(changes) -> list[tuple[str, str | None, str]]:
    """``(field, old, new)`` for each entry of ``changes``; ``old`` is None for
    an entry that is a fact, not a diff (``"(changed)"`` of a secret, or the
    plain values of older rows)."""
    if not isinstance(changes, dict):
        return [("", None, value_text(changes))]
    rows = []
    for field, value in changes.items():
        if isinstance(value, dict) and set(value) == {"old", "new"}:
            rows.append((field, value_text(value["old"]), value_text(value["new"])))
        elif isinstance(value, list) and len(value) == 2:
            rows.append((field, value_text(value[0]), value_text(value[1])))
        else:
            rows.append((field, None, value_text(value)))
    return rows


def changes_summary(changes) -> str:
    """A short line for a list: ``"tier: FREE → PRO; role: USER → ADMIN"``,
    the first :data:`SUMMARY_FIELDS` fields, each value cut short."""
    rows = change_rows(changes)
    parts = []
    for field, old, new in rows[:SUMMARY_FIELDS]:
        new = _cut(new)
        if old is None:
            parts.append(f"{field}: {new}" if field else new)
        else:
            parts.append(f"{field}: {_cut(old)} → {new}")
    if len(rows) > SUMMARY_FIELDS:
        parts.append(f"+{len(rows) - SUMMARY_FIELDS} more")
    return "; ".join(parts)


def _cut(text: str) -> str:
    if len(text) > SUMMARY_VALUE_CHARS:
        return text[: SUMMARY_VALUE_CHARS - 1] + "…"
    return text
