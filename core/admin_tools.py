"""Admin building blocks for tables with millions of rows.

Every ModelAdmin on a table that can grow large mixes in :class:`LargeTableAdmin`:

- **counts** come from :class:`EstimatedCountPaginator`, never from a
  ``COUNT(*)`` of the whole table;
- **no facet counts** (``show_facets``: a ``COUNT`` per filter choice) and no
  ``show_full_result_count`` (a second, unfiltered ``COUNT(*)``);
- **page depth** is bounded: OFFSET pagination past ``max_rows`` rows walks that
  many index entries, so deeper rows are reached by filtering, not paging;
- **search** is limited to lookups an index serves (see
  :class:`IndexedSearchMixin`);
- **filters** use fixed choices (model choices, booleans, date ranges) or
  :func:`indexed_values_filter`, never Django's ``SELECT DISTINCT`` over the
  table;
- **columns**: a list loads only the columns it shows, the fields named in
  ``list_display`` plus ``list_related_columns`` (``owner__email`` for an
  owner shown by its email) — not a joined user's password hash and 30 other
  columns per row, nor a webhook's JSON payload.
"""

import ipaddress
import json
import math

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.forms.models import BaseInlineFormSet
from django.utils.functional import cached_property

from core.pagination import EXACT_COUNT_LIMIT, capped_count


def _regclass(model, using: str) -> str:
    return connections[using].ops.quote_name(model._meta.db_table)


_ESTIMATE_SQL = """
    SELECT CASE
        WHEN c.reltuples < 0 THEN -1
        WHEN c.relpages = 0 THEN c.reltuples::bigint
        ELSE (c.reltuples / c.relpages
              * (pg_relation_size(c.oid) / current_setting('block_size')::int)
             )::bigint
    END
    FROM pg_class c WHERE c.oid = %s::regclass
"""


class EstimatedCountPaginator(Paginator):
    """A paginator whose ``count`` costs the same at 10 million rows as at 10.

    - Unfiltered list: one query reads the planner's estimate of the table's
      rows (``reltuples`` scaled to the table's current size, as the planner
      does, so rows added since the last ANALYZE show up); only when that is below
      :data:`EXACT_COUNT_LIMIT` (or the table was never analyzed) does the same
      statement count exactly, with ``SELECT COUNT(*) FROM (… LIMIT 10001)``
      (PostgreSQL runs that sub-select only in the branch that needs it).
    - Filtered or searched list: the capped count above; when it reaches the
      cap, the planner's row estimate from ``EXPLAIN (FORMAT JSON)`` (always
      asked, so the number of queries does not depend on the data).

    ``count_is_estimate`` tells templates to say "about". Pages stop at
    ``max_rows`` rows (OFFSET cost grows with depth).
    """

    cap = EXACT_COUNT_LIMIT
    max_rows = EXACT_COUNT_LIMIT

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.count_is_estimate = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        if _is_unfiltered(queryset):
            count, estimated = self._unfiltered_count(queryset)
        else:
            count, estimated = self._filtered_count(queryset)
        self.count_is_estimate = estimated
        return count

    @cached_property
    def num_pages(self) -> int:
        pages = super().num_pages
        if self.count <= self.max_rows:
            return pages
        return min(pages, max(1, math.ceil(self.max_rows / self.per_page)))

    def _capped_subquery(self, queryset):
        inner = queryset.order_by().values("pk")[: self.cap + 1]
        return inner.query.get_compiler(using=queryset.db).as_sql()

    def _unfiltered_count(self, queryset) -> tuple[int, bool]:
        inner_sql, inner_params = self._capped_subquery(queryset)
        sql = (
            "SELECT CASE WHEN e.n >= %s THEN e.n"  # noqa: S608 - compiled SQL
            f" ELSE (SELECT COUNT(*) FROM ({inner_sql}) capped) END,"
            " e.n >= %s"
            f" FROM ({_ESTIMATE_SQL}) e(n)"
        )
        params = [
            self.cap,
            *inner_params,
            self.cap,
            _regclass(queryset.model, queryset.db),
        ]
        with connections[queryset.db].cursor() as cursor:
            cursor.execute(sql, params)
            count, estimated = cursor.fetchone()
        if not estimated and count > self.cap:
            # Statistics lag behind (never analyzed, or a bulk load since).
            return count, True
        return int(count), bool(estimated)

    def _filtered_count(self, queryset) -> tuple[int, bool]:
        # The EXPLAIN runs either way (planning only, well under a millisecond),
        # so a page costs the same queries whether or not it passes the cap.
        estimate = explain_row_estimate(queryset)
        capped = capped_count(queryset, cap=self.cap)
        if capped <= self.cap:
            return capped, False
        return max(estimate, capped), True


def _is_unfiltered(queryset) -> bool:
    query = queryset.query
    return not query.where and not query.combinator and not query.distinct


def explain_row_estimate(queryset) -> int:
    """The planner's estimate of how many rows ``queryset`` matches."""
    plan = json.loads(queryset.order_by().values("pk").explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


def listed_columns(model, list_display, related_columns) -> list[str] | None:
    """The columns a changelist shows: the model fields ``list_display`` names
    plus ``related_columns`` (``"owner__email"``) for the foreign keys it shows.

    None when some column is not a plain field (a method or callable may read
    any field) or a foreign key has no related column declared: such a list
    keeps loading whole rows.
    """
    related = {name.split("__", 1)[0] for name in related_columns}
    columns = []
    for name in list_display:
        if name == "action_checkbox":
            continue
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            return None
        if not field.is_relation:
            columns.append(name)
        elif name not in related:
            return None
    return [*columns, *related_columns]


class ColumnsChangeList(ChangeList):
    """A changelist whose page of rows loads only the columns it shows
    (:func:`listed_columns`).

    Only the rows shown are narrowed: the queryset that actions and the
    "select all" count receive is left whole.
    """

    def get_results(self, request):
        columns = listed_columns(
            self.model, self.list_display, self.model_admin.list_related_columns
        )
        if columns is not None:
            self.queryset = self.queryset.only(*columns)
        super().get_results(request)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the system (audit trail, logs, webhook events): staff
    may look, never add, edit or delete."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LargeTableAdmin:
    """Mix into a ModelAdmin whose table can grow to millions of rows."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    # What the list shows of the related rows in list_display, as "fk__field"
    # (each foreign key's __str__ fields): with it, the page loads only the
    # columns it shows.
    list_related_columns: tuple[str, ...] = ()

    def get_changelist(self, request, **kwargs):
        return ColumnsChangeList


class IndexedSearchMixin:
    """Search through indexed lookups only.

    ``search_fields`` must name only lookups an index serves (``=field`` or
    ``field__exact`` on a btree, ``^field`` on an ``UPPER(field)
    text_pattern_ops`` index, a plain ``field`` on an ``UPPER(field)`` trigram
    GIN index). ``search_user_fields`` names foreign keys to the user: a term
    with an ``@`` is resolved to user ids first through ``user_email_ci_unique``
    (``LOWER(email)``), so the rows are then found through the foreign key's
    own index instead of a join that scans. ``search_ip_fields`` are matched
    exactly when the term is an IP address.
    """

    search_user_fields: tuple[str, ...] = ()
    # Inet columns matched exactly when the term is an IP address.
    search_ip_fields: tuple[str, ...] = ()

    def get_search_fields(self, request):
        # The admin only draws the search box when there are search fields.
        return super().get_search_fields(request) or ("pk__exact",)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        result, may_have_duplicates = super().get_search_results(
            request, queryset, term
        )
        if self.search_user_fields and "@" in term:
            user_ids = list(
                get_user_model()
                .objects.annotate(email_lower=Lower("email"))
                .filter(email_lower=term.lower())
                .values_list("pk", flat=True)
            )
            if user_ids:
                match = Q()
                for field in self.search_user_fields:
                    match |= Q(**{f"{field}__in": user_ids})
                result = result | queryset.filter(match)
        if self.search_ip_fields and _is_ip(term):
            match = Q()
            for field in self.search_ip_fields:
                match |= Q(**{field: term})
            result = result | queryset.filter(match)
        return result, may_have_duplicates


def _is_ip(term: str) -> bool:
    try:
        ipaddress.ip_address(term)
    except ValueError:
        return False
    return True


def indexed_values_filter(field_name: str, *, title: str | None = None, limit=100):
    """A list filter offering the distinct values of ``field_name``.

    Django's own filter for such a column runs ``SELECT DISTINCT`` over the
    whole table. This one reads the values with a loose index scan (a recursive
    CTE that jumps from one value to the next through an index whose first
    column is ``field_name``): one index probe per distinct value.
    """

    class IndexedValuesFilter(admin.SimpleListFilter):
        parameter_name = field_name

        def lookups(self, request, model_admin):
            model = model_admin.model
            db = model_admin.get_queryset(request).db
            quote = connections[db].ops.quote_name
            column = quote(model._meta.get_field(field_name).column)
            table = quote(model._meta.db_table)
            sql = (
                "WITH RECURSIVE v(x) AS ("  # noqa: S608 - quoted names
                f" (SELECT {column} FROM {table} WHERE {column} IS NOT NULL"
                f"  ORDER BY {column} LIMIT 1)"
                " UNION ALL"
                f" SELECT (SELECT {column} FROM {table} WHERE {column} > v.x"
                f"  ORDER BY {column} LIMIT 1) FROM v WHERE v.x IS NOT NULL"
                ") SELECT x FROM v WHERE x IS NOT NULL LIMIT %s"
            )
            with connections[db].cursor() as cursor:
                cursor.execute(sql, [limit])
                values = [row[0] for row in cursor.fetchall()]
            return [(value, value or "(blank)") for value in values]

        def queryset(self, request, queryset):
            if self.value() is not None:
                return queryset.filter(**{field_name: self.value()})
            return queryset

    IndexedValuesFilter.title = title or field_name.replace("_", " ")
    IndexedValuesFilter.__name__ = f"{field_name.title().replace('_', '')}Filter"
    return IndexedValuesFilter


class LabelledInlineFormSet(BaseInlineFormSet):
    """Tabular inlines put each input under a column header with no <label>, so
    screen readers (and axe) find them unnamed. Each input gets an aria-label
    "<field>, row N" ("Delete, row N" for the delete box)."""

    def add_fields(self, form, index):
        super().add_fields(form, index)
        row = "new row" if index is None else f"row {index + 1}"
        for name, field in form.fields.items():
            label = "Delete" if name == "DELETE" else str(field.label or name)
            widget = field.widget
            for part in getattr(widget, "widgets", None) or [widget]:
                part.attrs["aria-label"] = f"{label}, {row}"


class LabelledTabularInline(admin.TabularInline):
    """A TabularInline whose inputs have accessible names (LabelledInlineFormSet)."""

    formset = LabelledInlineFormSet
