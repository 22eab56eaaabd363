from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError

from apps_catalog import services
from apps_catalog.models import App, MonetizationModel, Post, Requirement
from core.admin_tools import (
    IndexedSearchMixin,
    LabelledTabularInline,
    LargeTableAdmin,
)


class RequirementInline(LabelledTabularInline):
    model = Requirement
    extra = 0
    fields = ("description", "priority", "status", "version", "updated_at")
    readonly_fields = ("version", "updated_at")
    show_change_link = True


class MonetizationModelInline(LabelledTabularInline):
    model = MonetizationModel
    extra = 0
    fields = ("type", "price", "subscription_interval", "features")


def _run_on_each(modeladmin, request, queryset, service, done: str) -> None:
    changed = 0
    for app in queryset:
        try:
            service(app=app, actor=request.user)
        except (ValidationError, PermissionDenied) as exc:
            modeladmin.message_user(
                request, f"{app}: {' '.join(exc.messages)}", messages.ERROR
            )
        else:
            changed += 1
    if changed:
        modeladmin.message_user(request, f"{changed} app(s) {done}.", messages.SUCCESS)


@admin.register(App)
class AppAdmin(LargeTableAdmin, IndexedSearchMixin, admin.ModelAdmin):
    """Apps, newest first (``app_created_idx``).

    Filters: status (``app_status_created_idx``), created date
    (``app_created_idx``). Search: substring of name or description (the
    ``pg_trgm`` GIN indexes on ``UPPER(col)`` that ``icontains`` compiles to),
    exact domain (``app_domain_unique``), exact id, or the owner's exact email
    (resolved to the user first, then ``app_owner_created_idx``).
    """

    list_display = (
        "name",
        "owner",
        "status",
        "domain",
        "forked_from",
        "fork_count",
        "created_at",
    )
    list_filter = ("status", "created_at")
    search_fields = ("name", "description", "domain__exact", "id__exact")
    search_user_fields = ("owner",)
    search_help_text = (
        "Part of the name or description, an exact domain or id, or the owner's "
        "exact email."
    )
    autocomplete_fields = ("owner",)
    list_select_related = ("owner", "forked_from")
    list_related_columns = ("owner__email", "forked_from__name")
    readonly_fields = ("id", "forked_from", "fork_count", "created_at", "updated_at")
    fields = (
        "id",
        "name",
        "description",
        "owner",
        "status",
        "domain",
        "forked_from",
        "fork_count",
        "created_at",
        "updated_at",
    )
    # No date_hierarchy: its DISTINCT date_trunc() scans every app.
    ordering = ("-created_at",)
    inlines = (RequirementInline, MonetizationModelInline)
    actions = (
        "archive_apps",
        "restore_apps",
        "soft_delete_apps",
        "recompute_fork_counts",
    )

    @admin.action(description="Archive selected apps")
    def archive_apps(self, request, queryset):
        _run_on_each(self, request, queryset, services.app_archive, "archived")

    @admin.action(
        description="Restore selected apps (archived → active, deleted → draft)"
    )
    def restore_apps(self, request, queryset):
        _run_on_each(self, request, queryset, services.app_restore, "restored")

    @admin.action(description="Soft-delete selected apps (status DELETED)")
    def soft_delete_apps(self, request, queryset):
        _run_on_each(self, request, queryset, services.app_delete, "soft-deleted")

    @admin.action(description="Recompute fork counts (all apps)")
    def recompute_fork_counts(self, request, queryset):
        fixed = services.app_fork_counts_recompute()
        self.message_user(request, f"{fixed} fork count(s) corrected.")

    def get_readonly_fields(self, request, obj=None):
        # Status changes go through the actions (services keep fork counts and
        # the audit log right); forks are made with app_fork, never by hand.
        if obj is not None:
            return (*self.readonly_fields, "status")
        return self.readonly_fields

    def save_formset(self, request, form, formset, change):
        if formset.model is not Requirement:
            return super().save_formset(request, form, formset, change)
        # Edited requirements go through the versioned update (+1 per edit).
        requirements = formset.save(commit=False)
        for requirement in formset.deleted_objects:
            services.requirement_delete(requirement=requirement, actor=request.user)
        for requirement in requirements:
            if requirement._state.adding:
                requirement.save()
            else:
                services.requirement_update(
                    requirement=requirement,
                    actor=request.user,
                    expected_version=requirement.version,
                    description=requirement.description,
                    priority=requirement.priority,
                    status=requirement.status,
                )
        return None

    def delete_model(self, request, obj):
        services.app_destroy(app=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for app in queryset:
            services.app_destroy(app=app, actor=request.user)


@admin.register(Requirement)
class RequirementAdmin(LargeTableAdmin, IndexedSearchMixin, admin.ModelAdmin):
    """Requirements, newest first (``requirement_created_idx``).

    Filters: status, priority (``requirement_status_created_idx``,
    ``requirement_priority_time_idx``). Search: exact requirement or app id
    (``requirement_app_status_idx``); to read one app's requirements by name,
    open the app (they are inline there).
    """

    list_display = (
        "short_description",
        "app",
        "priority",
        "status",
        "version",
        "updated_at",
    )
    list_filter = ("status", "priority")
    search_fields = ("id__exact", "app__id__exact")
    search_help_text = "Exact requirement id or app id."
    autocomplete_fields = ("app",)
    list_select_related = ("app",)
    readonly_fields = ("id", "version", "created_at", "updated_at")
    ordering = ("-created_at",)

    @admin.display(description="Requirement")
    def short_description(self, obj):
        return str(obj)

    def save_model(self, request, obj, form, change):
        # Staff edits bump the version too, so an owner's open edit form becomes
        # stale instead of silently overwriting the staff change.
        if change:
            services.requirement_update(
                requirement=obj,
                actor=request.user,
                expected_version=obj.version,
                description=obj.description,
                priority=obj.priority,
                status=obj.status,
            )
        else:
            super().save_model(request, obj, form, change)


@admin.register(MonetizationModel)
class MonetizationModelAdmin(LargeTableAdmin, IndexedSearchMixin, admin.ModelAdmin):
    """Newest first (``monetization_created_idx``); filters: type
    (``monetization_type_created_idx``), interval
    (``monetization_interval_idx``); search: exact id or app id
    (``monetization_app_idx``)."""

    list_display = ("app", "type", "price", "subscription_interval", "created_at")
    list_filter = ("type", "subscription_interval")
    search_fields = ("id__exact", "app__id__exact")
    search_help_text = "Exact id or app id."
    autocomplete_fields = ("app",)
    list_select_related = ("app",)
    list_related_columns = ("app__name",)
    readonly_fields = ("id", "created_at", "updated_at")
    ordering = ("-created_at",)


@admin.register(Post)
class PostAdmin(LargeTableAdmin, IndexedSearchMixin, admin.ModelAdmin):
    """Posts, newest first (``post_created_idx``).

    Filters: published (``post_published_created_idx``), created date
    (``post_created_idx``). Search: start of the title
    (``post_title_prefix_idx``), exact id or app id (``post_app_created_idx``),
    or the author's exact email (``post_author_created_idx``).
    """

    list_display = ("title", "author", "app", "published", "created_at")
    list_filter = ("published", "created_at")
    search_fields = ("^title", "id__exact", "app__id__exact")
    search_user_fields = ("author",)
    search_help_text = (
        "Start of the title, an exact post or app id, or the author's exact email."
    )
    autocomplete_fields = ("author", "app")
    list_select_related = ("author", "app")
    list_related_columns = ("author__email", "app__name")
    readonly_fields = ("id", "created_at", "updated_at")
    ordering = ("-created_at",)
