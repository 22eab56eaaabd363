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
  columns per row, nor a webhook's JSON payload;
- **relations** (:class:`RelationsMixin`): every foreign key a list shows is a
  link to the related row, every change page lists its reverse relations as
  capped counts linking to the filtered list, and a list filtered by one
  related row says so in its title and breadcrumbs.
"""

import contextlib
import ipaddress
import json
import math
import re
from urllib.parse import urlencode

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.forms.models import BaseInlineFormSet
from django.shortcuts import redirect
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import capfirst

from core.models import AuditLog
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


def listed_columns(
    model, list_display, related_columns, model_admin=None
) -> list[str] | None:
    """The columns a changelist shows: the model fields ``list_display`` names
    plus ``related_columns`` (``"owner__email"``) for the foreign keys it shows.
    A method or link column of ``model_admin`` counts as the fields its
    ``reads`` attribute names (:func:`reads`, the link columns of
    :class:`RelationsMixin`).

    None when some column is not a plain field (a method or callable may read
    any field) or a foreign key has no related column declared: such a list
    keeps loading whole rows.
    """
    related = {name.split("__", 1)[0] for name in related_columns}
    columns = []
    for name in list_display:
        if name == "action_checkbox":
            continue
        column = getattr(model_admin, str(name), None)
        names = getattr(column, "reads", None)
        # A link column shows the related row's __str__: it needs the row.
        key_only = names and not getattr(column, "follows", False)
        for field_name in names or [name]:
            try:
                field = model._meta.get_field(field_name)
            except (FieldDoesNotExist, TypeError):
                return None
            if not field.is_relation:
                columns.append(field_name)
            elif field_name in related:
                continue
            elif key_only and field.many_to_one:
                # A column reading only the key (``actor_id``), no join.
                columns.append(field_name)
            else:
                return None
    return [*dict.fromkeys(columns), *related_columns]


def reads(*fields: str):
    """Declare the model fields a list_display method reads, so the list can
    still load only those columns (:func:`listed_columns`). A foreign key named
    here loads its key column only, unless ``list_related_columns`` names
    columns of the related row."""

    def decorate(method):
        method.reads = fields
        return method

    return decorate


class ColumnsChangeList(ChangeList):
    """A changelist whose page of rows loads only the columns it shows
    (:func:`listed_columns`).

    Only the rows shown are narrowed: the queryset that actions and the
    "select all" count receive is left whole.
    """

    def url_for_result(self, result) -> str:
        # Django's reverses once per row; this once per model (admin_change_url).
        return admin_change_url(
            self.model_admin.admin_site, self.model, getattr(result, self.pk_attname)
        )

    def get_results(self, request):
        columns = listed_columns(
            self.model,
            self.list_display,
            self.model_admin.list_related_columns,
            self.model_admin,
        )
        if columns is not None:
            self.queryset = self.queryset.only(*columns)
        super().get_results(request)


# The change URLs of a model, reversed once: a list of 50 rows links each row
# and each of its foreign keys (150 reverse() calls, a tenth of the page's
# time). Keyed on what reverse() depends on besides the name.
_CHANGE_URL_PLACEHOLDER = "__pk__"
_change_url_parts: dict[tuple, tuple[str, str] | None] = {}


def admin_change_url(admin_site, model, pk) -> str | None:
    """The change page of ``model`` row ``pk`` in ``admin_site``, or None when
    the model has no admin there."""
    if pk is None or not admin_site.is_registered(model):
        return None
    opts = model._meta
    key = (admin_site.name, opts.label, get_script_prefix(), get_urlconf())
    if key not in _change_url_parts:
        try:
            url = reverse(
                f"{admin_site.name}:{opts.app_label}_{opts.model_name}_change",
                args=(_CHANGE_URL_PLACEHOLDER,),
            )
        except NoReverseMatch:
            _change_url_parts[key] = None
        else:
            _change_url_parts[key] = tuple(url.split(_CHANGE_URL_PLACEHOLDER, 1))
    parts = _change_url_parts[key]
    if parts is None:
        return None
    return f"{parts[0]}{quote(pk)}{parts[1]}"


def admin_changelist_url(admin_site, model) -> str | None:
    if not admin_site.is_registered(model):
        return None
    opts = model._meta
    try:
        return reverse(
            f"{admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"
        )
    except NoReverseMatch:
        return None


def related_link(admin_site, model, pk, text) -> str:
    """A link to the change page of ``model`` row ``pk`` showing ``text`` (the
    full text also in ``title``: lists cut long values with an ellipsis)."""
    url = admin_change_url(admin_site, model, pk)
    if url is None:
        return text
    return format_html('<a href="{}" title="{}">{}</a>', url, text, text)


def labelled_link(admin_site, label: str, pk, text) -> str:
    """A link to the change page of the row ``pk`` of the model named by its
    ``label`` ("accounts.User", as the audit log stores targets); plain text
    when there is no such model or admin. No query: the row is not read."""
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return text
    if pk in (None, ""):
        return text
    return related_link(admin_site, model, pk, text)


def _count_label(count: int, cap: int) -> str:
    return f"{cap:,}+" if count > cap else f"{count:,}"


class RelationsMixin:
    """Relations a person can follow, at any table size.

    - **Lists**: each foreign key named in ``list_display`` is shown as a link
      to the related row's change page (``<fk>_link`` columns made by
      :meth:`get_list_display`; the text is the related row's ``__str__``, read
      from the columns ``list_related_columns`` declares through
      ``list_select_related``, so the page's queries do not grow with rows).
    - **Change pages** show a "Related" panel: for each reverse relation whose
      model has an admin (and the model's audit rows), the number of rows,
      counted up to :attr:`related_cap` ("1,000+" past it) through the foreign
      key's index, linking to that list filtered by this row
      (``?<fk>__exact=<pk>``, a local-field lookup the admin always allows).
      The relations are read from the model's meta, so core needs no import of
      the apps above it; ``related_exclude`` and ``related_labels`` (keys
      ``"app_label.model.field"``) tune an admin's panel.
    - **A list filtered by one related row** (the panel's links) is titled
      "Apps of ada@example.com" and its breadcrumbs run through that row.
    """

    def action_checkbox(self, obj):
        """Django's row checkbox, written out: Django renders a CheckboxInput
        through the form renderer's templates for each of the 50 rows (a
        quarter of a changelist's time); the HTML is the same."""
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" '
            'aria-label="Select this object for an action - {}">',
            ACTION_CHECKBOX_NAME,
            obj.pk,
            str(obj),
        )

    related_cap = 1000
    related_exclude: tuple[str, ...] = ()
    related_labels: dict[str, str] = {}

    # -- list columns -------------------------------------------------------

    def _link_column_name(self, name) -> str | None:
        if not isinstance(name, str):
            return None
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return None
        if not (field.many_to_one or field.one_to_one) or not field.concrete:
            return None
        attr = f"{name}_link"
        if attr not in self.__dict__:
            setattr(self, attr, self._make_link_column(field))
        return attr

    def _make_link_column(self, field):
        admin_site = self.admin_site
        empty = self.get_empty_value_display

        def column(obj):
            key = getattr(obj, field.attname)
            if key is None:
                return empty()
            related = getattr(obj, field.name)
            return related_link(
                admin_site, field.related_model, related.pk, str(related)
            )

        column.short_description = capfirst(field.verbose_name)
        column.admin_order_field = field.name
        column.reads = (field.name,)
        column.follows = True
        return column

    def get_list_display(self, request):
        return [
            self._link_column_name(name) or name
            for name in super().get_list_display(request)
        ]

    def get_list_display_links(self, request, list_display):
        links = super().get_list_display_links(request, list_display)
        if self.list_display_links or links is None:
            return links
        # The row's own link must not sit on a related row's link (nested <a>).
        plain = [name for name in list_display if not _is_link_column(self, name)]
        return plain[:1] or links

    # -- a list filtered by one related row ---------------------------------

    def _relation_filter(self, request):
        found = []
        for key, value in request.GET.items():
            parts = key.split("__")
            try:
                field = self.model._meta.get_field(parts[0])
            except FieldDoesNotExist:
                continue
            if not (field.many_to_one or field.many_to_many) or not field.concrete:
                continue
            target = field.related_model._meta.pk.name
            if parts[1:] in ([], ["exact"], [target, "exact"], ["pk", "exact"]):
                found.append((field, value))
        if len(found) != 1:
            return None
        field, value = found[0]
        try:
            related = field.related_model._default_manager.filter(pk=value).first()
        except (ValidationError, ValueError, TypeError):
            return None
        return (field, related) if related is not None else None

    def changelist_view(self, request, extra_context=None):
        context = {}
        relation = self._relation_filter(request)
        if relation is not None:
            field, related = relation
            related_opts = field.related_model._meta
            plural = capfirst(self.model._meta.verbose_name_plural)
            if field.verbose_name in (related_opts.verbose_name, "owner", "user"):
                title = f"{plural} of {related}"
            else:
                title = f"{plural} ({field.verbose_name}: {related})"
            context = {
                "title": title,
                "relation_filter": {
                    "object": str(related),
                    "url": admin_change_url(
                        self.admin_site, field.related_model, related.pk
                    ),
                    "changelist_url": admin_changelist_url(
                        self.admin_site, field.related_model
                    ),
                    "opts": related_opts,
                },
            }
        return super().changelist_view(request, {**context, **(extra_context or {})})

    # -- the change page's related panel ------------------------------------

    def related_panel(self, request, obj) -> list[dict]:
        """One entry per reverse relation: label, capped count, filtered list."""
        opts = self.model._meta
        relations = [
            rel
            # include_hidden: a foreign key with related_name="+" (the audit
            # log's actor) still has rows worth following.
            for rel in opts.get_fields(include_hidden=True)
            # The reverse side of a foreign key (one_to_many) or a many-to-many.
            if rel.auto_created
            and not rel.concrete
            and (rel.one_to_many or rel.many_to_many)
            and rel.related_model in self.admin_site._registry
        ]
        per_model: dict = {}
        for rel in relations:
            per_model[rel.related_model] = per_model.get(rel.related_model, 0) + 1
        panel = []
        for rel in relations:
            model, field = rel.related_model, rel.field
            key = f"{model._meta.label_lower}.{field.name}"
            related_admin = self.admin_site._registry[model]
            if (
                key in self.related_exclude
                or not related_admin.has_view_or_change_permission(request)
            ):
                continue
            label = self.related_labels.get(key) or capfirst(
                model._meta.verbose_name_plural
            )
            if key not in self.related_labels and per_model[model] > 1:
                label = f"{label} ({field.verbose_name})"
            value = (
                obj.pk if rel.many_to_many else getattr(obj, field.target_field.attname)
            )
            queryset = related_admin.get_queryset(request).filter(**{field.name: value})
            panel.append(
                self._related_entry(
                    model, label, queryset, {f"{field.name}__exact": value}
                )
            )
        panel.sort(key=lambda entry: entry["label"].lower())
        audit_admin = self.admin_site._registry.get(AuditLog)
        if (
            self.model is not AuditLog
            and audit_admin is not None
            and audit_admin.has_view_or_change_permission(request)
            and "ops.auditlog.target" not in self.related_exclude
        ):
            queryset = AuditLog.objects.filter(
                target_type=opts.label, target_id=str(obj.pk)
            )
            panel.append(
                self._related_entry(
                    AuditLog,
                    f"Audit rows about this {opts.verbose_name}",
                    queryset,
                    {"target_type": opts.label, "target_id__exact": str(obj.pk)},
                )
            )
        return panel

    def _related_entry(self, model, label, queryset, params) -> dict:
        count = capped_count(queryset, cap=self.related_cap)
        url = admin_changelist_url(self.admin_site, model)
        return {
            "label": label,
            "count": count,
            "count_label": _count_label(count, self.related_cap),
            "url": f"{url}?{urlencode(params)}" if url else None,
        }

    def render_change_form(
        self, request, context, add=False, change=False, form_url="", obj=None
    ):
        if obj is not None and obj.pk is not None:
            context["related_panel"] = self.related_panel(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)


def _is_link_column(model_admin, name) -> bool:
    return bool(getattr(getattr(model_admin, str(name), None), "follows", False))


class ReadOnlyAdmin(RelationsMixin, admin.ModelAdmin):
    """Rows written by the system (audit trail, logs, webhook events): staff
    may look, never add, edit or delete."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LargeTableAdmin(RelationsMixin):
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


# pg_trgm reads words (runs of letters and digits); a term needs a run of
# three to give the trigram index anything to look up. Shorter terms would make
# "%ab%" read the whole GIN index, i.e. the whole table.
_TRIGRAM_WORD = re.compile(r"[^\W_]{3}")
_WORD_CHAR = re.compile(r"[^\W_]")
SEARCH_NOTES = {
    "prefix": (
        "Terms shorter than 3 letters or digits match only the start of the "
        "text (or an exact value)."
    ),
    "exact": "A term without letters or digits matches only exact values.",
}


def substring_searchable(term: str) -> bool:
    """Whether a trigram index can serve ``col ILIKE '%term%'``."""
    return bool(_TRIGRAM_WORD.search(term))


def search_mode(term: str) -> str:
    """How substring fields search ``term``: ``"substring"`` (a trigram index
    serves ``'%TERM%'``), ``"prefix"`` (1-2 letters: ``'TE%'``, served by a
    prefix btree or by the trigram index's word-start trigrams) or
    ``"exact"`` (no letter or digit: no index could serve a pattern, so only
    the exact fields search)."""
    if substring_searchable(term):
        return "substring"
    if _WORD_CHAR.search(term):
        return "prefix"
    return "exact"


def _is_substring_field(name: str) -> bool:
    """A search field Django turns into ``icontains`` (no ^, =, @ prefix and
    no explicit lookup)."""
    return not name.startswith(("^", "=", "@")) and not name.endswith(
        ("__exact", "__iexact", "__startswith", "__istartswith")
    )


class IndexedSearchMixin:
    """Search through indexed lookups only, the way a person expects.

    ``search_fields`` must name only lookups an index serves: a plain ``field``
    (any part of the text, case-insensitive: ``UPPER(field) LIKE '%TERM%'``,
    what ``icontains`` compiles to) on an ``UPPER(field)`` ``gin_trgm_ops``
    GIN index; ``^field`` on an ``UPPER(field) text_pattern_ops`` index (or a
    trigram one); ``=field`` or ``field__exact`` on a btree.

    - **Short terms**: a term with no run of 3 letters or digits gives the
      trigram index nothing to look up, so substring fields then match the
      start of the text (``^field``) instead of scanning; the list says so
      (:data:`SEARCH_NOTES`); a term with no letter or digit at all searches
      only the exact fields.
    - **Exact match jumps to the row**: a search (``?q=`` alone, no filter)
      equal to a row's id, or to one of ``search_jump_fields`` (unique,
      case-insensitive columns with a ``LOWER(col)`` index, e.g. a user's
      email), redirects to that row's change page. One query through the
      primary key and that index.
    - ``search_user_fields`` names foreign keys to the user: a term with an
      ``@`` is resolved to user ids first through ``user_email_ci_unique``
      (``LOWER(email)``), so the rows are then found through the foreign key's
      own index instead of a join that scans. ``search_ip_fields`` are matched
      exactly when the term is an IP address.
    """

    search_user_fields: tuple[str, ...] = ()
    # Inet columns matched exactly when the term is an IP address.
    search_ip_fields: tuple[str, ...] = ()
    # Unique case-insensitive columns (LOWER(col) index) whose exact value
    # jumps straight to the row, like its id does.
    search_jump_fields: tuple[str, ...] = ()

    def get_search_fields(self, request):
        # The admin only draws the search box when there are search fields.
        return self.indexed_search_fields(
            request, super().get_search_fields(request) or ("pk__exact",)
        )

    def indexed_search_fields(self, request, fields):
        """``fields`` as the term allows (:func:`search_mode`): substring
        fields match the start of the text for a 1-2 letter term, and drop out
        for a term without letters or digits."""
        mode = getattr(request, "_admin_search_mode", "substring")
        if mode == "prefix":
            return tuple(
                f"^{name}" if _is_substring_field(name) else name for name in fields
            )
        if mode == "exact":
            exact = tuple(name for name in fields if not _is_substring_field(name))
            return exact or ("pk__exact",)
        return tuple(fields)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        request._admin_search_mode = search_mode(term)
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

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        mode = getattr(request, "_admin_search_mode", "substring")
        changelist.short_search_note = SEARCH_NOTES.get(mode, "")
        return changelist

    def _search_jump_url(self, request) -> str | None:
        """The change page of the one row the search term names exactly."""
        if set(request.GET) != {"q"}:
            return None
        term = request.GET.get("q", "").strip()
        if (
            not term
            or len(term) > 255
            or not self.has_view_or_change_permission(request)
        ):
            return None
        match = Q()
        with contextlib.suppress(ValidationError, ValueError, TypeError):
            match |= Q(pk=self.model._meta.pk.to_python(term))
        queryset = self.get_queryset(request)
        for field in self.search_jump_fields:
            alias = f"_jump_{field}"
            queryset = queryset.alias(**{alias: Lower(field)})
            match |= Q(**{alias: term.lower()})
        if not match:
            return None
        rows = list(queryset.filter(match).order_by().values_list("pk", flat=True)[:2])
        if len(rows) != 1:
            return None
        return admin_change_url(self.admin_site, self.model, rows[0])

    def changelist_view(self, request, extra_context=None):
        url = self._search_jump_url(request)
        if url is not None:
            return redirect(url)
        return super().changelist_view(request, extra_context)


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
