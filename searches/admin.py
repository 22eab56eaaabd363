"""Staff views of keyword research data.

SearchHistory and APIUsage grow to tens of millions of rows, so their change
lists never COUNT the whole table (capped count, no full result count, no
date_hierarchy), filter only through indexed columns with fixed choices (no
SELECT DISTINCT), and search only by exact, indexed values.
"""

import re

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models.functions import Lower
from django.utils.functional import cached_property

from searches.models import APIUsage, SavedSearch, SearchHistory
from searches.providers import PROVIDERS
from searches.services import saved_search_delete, saved_search_rename

_ID = re.compile(r"^[a-z0-9]{25}$")


class CappedCountPaginator(Paginator):
    """Counts at most ``CAP + 1`` rows: ``SELECT COUNT(*) FROM (... LIMIT n)``."""

    CAP = 10_000

    @cached_property
    def count(self):
        return self.object_list[: self.CAP + 1].count()


class ReadOnlyAdmin(admin.ModelAdmin):
    """Append-only logs: staff may look, never add, edit or delete."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class IndexedSearchMixin:
    """Search by exact user email (``user_email_ci_unique``) or exact id."""

    search_help_text = "Exact user email or id."

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if "@" in term:
            # Resolve the user first (LOWER(email) is the user_email_ci_unique
            # index) so the rows are then found through the (user, ...) index.
            user_ids = list(
                get_user_model()
                .objects.annotate(email_lower=Lower("email"))
                .filter(email_lower=term.lower())
                .values_list("pk", flat=True)
            )
            return queryset.filter(user_id__in=user_ids), False
        if _ID.match(term):
            return queryset.filter(pk=term) | queryset.filter(user_id=term), False
        return queryset.none(), False


class ProviderFilter(admin.SimpleListFilter):
    """Fixed choices from the provider registry: no DISTINCT over the table."""

    title = "provider"
    parameter_name = "provider"

    def lookups(self, request, model_admin):
        return [(name, name) for name in PROVIDERS]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(provider=self.value())
        return queryset


class StatusClassFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("2", "2xx success"), ("4", "4xx refused"), ("5", "5xx error")]

    def queryset(self, request, queryset):
        if self.value() in ("2", "4", "5"):
            low = int(self.value()) * 100
            return queryset.filter(status_code__gte=low, status_code__lt=low + 100)
        return queryset


@admin.register(SavedSearch)
class SavedSearchAdmin(IndexedSearchMixin, admin.ModelAdmin):
    list_display = (
        "name",
        "user",
        "keyword_count",
        "location",
        "language",
        "match_type",
        "last_accessed_at",
        "created_at",
    )
    list_filter = ("match_type",)
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    ordering = ("-created_at",)
    show_full_result_count = False
    # Saved searches come from real results; staff may rename or delete one.
    fields = (
        "id",
        "name",
        "user",
        "keywords",
        "keyword_count",
        "location",
        "language",
        "match_type",
        "provider",
        "results",
        "last_accessed_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = tuple(f for f in fields if f != "name")

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        saved_search_rename(saved_search=obj, name=obj.name)

    def delete_model(self, request, obj):
        saved_search_delete(saved_search=obj)


@admin.register(SearchHistory)
class SearchHistoryAdmin(IndexedSearchMixin, ReadOnlyAdmin):
    list_display = (
        "searched_at",
        "user",
        "keyword_count",
        "provider",
        "cache_hit",
        "response_time_ms",
        "avg_volume",
        "total_volume",
        "ip_address",
    )
    list_filter = (
        ProviderFilter,
        ("searched_at", admin.DateFieldListFilter),
        "cache_hit",
    )
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    ordering = ("-searched_at", "-id")
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50


@admin.register(APIUsage)
class APIUsageAdmin(IndexedSearchMixin, ReadOnlyAdmin):
    list_display = (
        "timestamp",
        "method",
        "endpoint",
        "status_code",
        "duration_ms",
        "user",
        "ip_address",
    )
    list_filter = (StatusClassFilter, ("timestamp", admin.DateFieldListFilter))
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    ordering = ("-timestamp", "-id")
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50
