"""Staff views of keyword research data.

SearchHistory and APIUsage grow to tens of millions of rows, so their change
lists never COUNT the whole table (``core.admin_tools``: estimated counts, no
full result count, no date_hierarchy), filter only through indexed columns with
fixed choices (no SELECT DISTINCT), and search only by exact, indexed values.
"""

from django.contrib import admin

from core.admin_tools import IndexedSearchMixin, LargeTableAdmin, ReadOnlyAdmin
from searches.models import APIUsage, SavedSearch, SearchHistory
from searches.providers import PROVIDERS
from searches.services import (
    saved_search_delete_by_staff,
    saved_search_rename_by_staff,
)


class UserOrIdSearch(IndexedSearchMixin):
    """Search by a user's exact email (resolved through
    ``user_email_ci_unique``, then the ``(user, …)`` index) or an exact row or
    user id (primary key, ``(user, …)`` index)."""

    search_fields = ("id__exact", "user__id__exact")
    search_user_fields = ("user",)
    search_help_text = "Exact user email or id, or an exact row id."


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
    """4xx and 5xx rows are found through ``apiusage_error_time_idx`` (partial,
    ``status_code >= 400``); 2xx are most rows, read along the time index."""

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
class SavedSearchAdmin(LargeTableAdmin, UserOrIdSearch, admin.ModelAdmin):
    """Newest first (``savedsearch_created_idx``); filter: match type
    (``savedsearch_match_created_idx``); search also by any part of the name
    (``savedsearch_name_trgm_idx``)."""

    search_fields = ("name", "id__exact", "user__id__exact")
    search_help_text = (
        "Any part of the name (3+ letters), a user's exact email or id, or an "
        "exact row id."
    )

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
    list_related_columns = ("user__email",)
    raw_id_fields = ("user",)
    ordering = ("-created_at",)
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
        saved_search_rename_by_staff(
            saved_search=obj, name=obj.name, actor=request.user, request=request
        )

    def delete_model(self, request, obj):
        saved_search_delete_by_staff(
            saved_search=obj, actor=request.user, request=request
        )

    def delete_queryset(self, request, queryset):
        for saved_search in queryset:
            self.delete_model(request, saved_search)


@admin.register(SearchHistory)
class SearchHistoryAdmin(LargeTableAdmin, UserOrIdSearch, ReadOnlyAdmin):
    """Newest first (``searchhist_time_idx``); filters: provider
    (``searchhist_provider_time_idx``), search date (``searchhist_time_idx``),
    cache hit (``searchhist_cache_hit_time_idx``, partial: hits only)."""

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
    list_related_columns = ("user__email",)
    raw_id_fields = ("user",)
    ordering = ("-searched_at", "-id")


@admin.register(APIUsage)
class APIUsageAdmin(LargeTableAdmin, UserOrIdSearch, ReadOnlyAdmin):
    """Newest first (``apiusage_time_idx``); filters: status class, date;
    search also by exact IP address (``apiusage_ip_time_idx``)."""

    search_ip_fields = ("ip_address",)
    search_help_text = "Exact user email or id, row id, or IP address."

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
    list_related_columns = ("user__email",)
    raw_id_fields = ("user",)
    ordering = ("-timestamp", "-id")
