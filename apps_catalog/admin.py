from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect

from apps_catalog import services
from apps_catalog.models import App, MonetizationModel, Post, Requirement
from core.admin_tools import (
    IndexedSearchMixin,
    LabelledTabularInline,
    LargeTableAdmin,
    reads,
)


class RequirementAdminForm(forms.ModelForm):
    """A requirement's admin form, carrying the version staff loaded.

    The admin reloads the row when the form is posted, so ``obj.version`` is
    the version at saving time: without the one the page was opened with, an
    owner's edit made meanwhile would be overwritten silently. A stale form is
    refused with a form error, and nothing is written."""

    loaded_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Requirement
        fields = ("app", "description", "priority", "status")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["loaded_version"].initial = self.instance.version

    def clean(self):
        cleaned = super().clean()
        loaded = cleaned.get("loaded_version")
        if self.instance.pk and loaded is not None and loaded != self.instance.version:
            raise ValidationError(services.STALE_REQUIREMENT_MESSAGE, code="stale")
        return cleaned

    def expected_version(self) -> int:
        """The version the edit was made against (the one staff loaded)."""
        loaded = self.cleaned_data.get("loaded_version")
        return self.instance.version if loaded is None else loaded


class StaleEditRefusedMixin:
    """A versioned write that lost a race between the form's check and the
    save (another edit committed in between) is answered with the change page
    again and a message, never a 500; the transaction is rolled back."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:
            if getattr(exc, "code", None) != "stale" and not any(
                error.code == "stale" for error in getattr(exc, "error_list", [])
            ):
                raise
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return redirect(request.get_full_path())


class RequirementInline(LabelledTabularInline):
    model = Requirement
    form = RequirementAdminForm
    extra = 0
    fields = (
        "description",
        "priority",
        "status",
        "version",
        "updated_at",
        "loaded_version",
    )
    readonly_fields = ("version", "updated_at")
    show_change_link = True


class MonetizationModelInline(LabelledTabularInline):
    model = MonetizationModel
    extra = 0
    fields = ("type", "price", "subscription_interval", "features")


def _run_on_each(modeladmin, request, queryset, service, done: str) -> None:
    # One service call per app: its rules, fork counts and an audit row of old
    # and new status each.
    changed = 0
    for app in queryset:
        try:
            service(app=app, actor=request.user, by_staff=True, request=request)
        except (ValidationError, PermissionDenied) as exc:
            modeladmin.message_user(
                request, f"{app}: {' '.join(exc.messages)}", messages.ERROR
            )
        else:
            changed += 1
    if changed:
        modeladmin.message_user(request, f"{changed} app(s) {done}.", messages.SUCCESS)


@admin.register(App)
class AppAdmin(
    StaleEditRefusedMixin, LargeTableAdmin, IndexedSearchMixin, admin.ModelAdmin
):
    """Apps, newest first (``app_created_idx``).

    Filters: status (``app_status_created_idx``), created date
    (``app_created_idx``). Search: any part of the name, description or domain
    (the ``pg_trgm`` GIN indexes on ``UPPER(col)`` that ``icontains`` compiles
    to), exact id (opens the app), or the owner's exact email (resolved to the
    user first, then ``app_owner_created_idx``). The change page lists its
    forks, requirements, monetization models and posts (``RelationsMixin``).
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
    search_fields = ("name", "description", "domain", "id__exact")
    search_user_fields = ("owner",)
    search_help_text = (
        "Any part of the name, description or domain (3+ letters), or the "
        "owner's exact email. An exact app id opens the app."
    )
    related_labels = {"apps_catalog.app.forked_from": "Forks"}
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
        fixed = services.app_fork_counts_recompute(actor=request.user, request=request)
        self.message_user(request, f"{fixed} fork count(s) corrected.")

    # Status is editable: app_update_by_staff moves the parent's fork count
    # and the trash date with it. Forks are made with app_fork, never by hand
    # (forked_from and fork_count stay read-only).

    def save_model(self, request, obj, form, change):
        # Only the fields staff changed are written, with one audit row of
        # their old and new values.
        if not change:
            services.app_create_by_staff(app=obj, actor=request.user, request=request)
            return
        services.app_update_by_staff(
            app=obj,
            actor=request.user,
            changes={name: form.cleaned_data[name] for name in form.changed_data},
            request=request,
        )

    def save_formset(self, request, form, formset, change):
        # Inline rows go through the staff services too (requirements with the
        # versioned update, +1 per edit): an audit row for each row added,
        # changed or deleted. formset.save(commit=False) sorts the forms and
        # fills new/changed/deleted_objects, which Django's history message
        # reads; nothing is saved by it.
        services_of = {
            Requirement: (
                services.requirement_create_by_staff,
                services.requirement_update_by_staff,
                services.requirement_delete_by_staff,
                "requirement",
            ),
            MonetizationModel: (
                services.monetization_create_by_staff,
                services.monetization_update_by_staff,
                services.monetization_delete_by_staff,
                "model",
            ),
        }
        if formset.model not in services_of:
            return super().save_formset(request, form, formset, change)
        create, update, delete, arg = services_of[formset.model]
        formset.save(commit=False)
        staff = {"actor": request.user, "request": request}
        for obj in formset.deleted_objects:
            delete(**{arg: obj}, **staff)
        for obj, changed in formset.changed_objects:
            row_form = next(f for f in formset.initial_forms if f.instance is obj)
            extra = {}
            if formset.model is Requirement:
                extra["expected_version"] = row_form.expected_version()
            update(
                **{arg: obj},
                changes={
                    name: row_form.cleaned_data[name]
                    for name in changed
                    if name != "loaded_version"  # the form's, not the row's
                },
                **extra,
                **staff,
            )
        for obj in formset.new_objects:
            setattr(obj, formset.fk.name, formset.instance)
            create(**{arg: obj}, **staff)
        return None

    def delete_model(self, request, obj):
        services.app_destroy(app=obj, actor=request.user, request=request)

    def delete_queryset(self, request, queryset):
        for app in queryset:
            services.app_destroy(app=app, actor=request.user, request=request)


@admin.register(Requirement)
class RequirementAdmin(
    StaleEditRefusedMixin, LargeTableAdmin, IndexedSearchMixin, admin.ModelAdmin
):
    """Requirements, newest first (``requirement_created_idx``).

    Filters: status, priority (``requirement_status_created_idx``,
    ``requirement_priority_time_idx``). Search: any part of the text
    (``requirement_desc_trgm_idx``), exact requirement or app id
    (``requirement_app_status_idx``).
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
    search_fields = ("description", "id__exact", "app__id__exact")
    search_help_text = (
        "Any part of the requirement's text (3+ letters), or an exact requirement "
        "or app id."
    )
    autocomplete_fields = ("app",)
    list_select_related = ("app",)
    list_related_columns = ("app__name",)
    form = RequirementAdminForm
    readonly_fields = ("id", "version", "created_at", "updated_at")
    ordering = ("-created_at",)

    @admin.display(description="Requirement")
    @reads("description")
    def short_description(self, obj):
        return str(obj)

    def save_model(self, request, obj, form, change):
        # Staff edits bump the version too, so an owner's open edit form becomes
        # stale instead of silently overwriting the staff change; each save
        # leaves an audit row of old and new values.
        if not change:
            services.requirement_create_by_staff(
                requirement=obj, actor=request.user, request=request
            )
            return
        services.requirement_update_by_staff(
            requirement=obj,
            actor=request.user,
            changes={
                name: form.cleaned_data[name]
                for name in form.changed_data
                if name != "loaded_version"
            },
            expected_version=form.expected_version(),
            request=request,
        )

    def delete_model(self, request, obj):
        services.requirement_delete_by_staff(
            requirement=obj, actor=request.user, request=request
        )

    def delete_queryset(self, request, queryset):
        for requirement in queryset:
            services.requirement_delete_by_staff(
                requirement=requirement, actor=request.user, request=request
            )


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

    def save_model(self, request, obj, form, change):
        if not change:
            services.monetization_create_by_staff(
                model=obj, actor=request.user, request=request
            )
            return
        services.monetization_update_by_staff(
            model=obj,
            actor=request.user,
            changes={name: form.cleaned_data[name] for name in form.changed_data},
            request=request,
        )

    def delete_model(self, request, obj):
        services.monetization_delete_by_staff(
            model=obj, actor=request.user, request=request
        )

    def delete_queryset(self, request, queryset):
        for model in queryset:
            services.monetization_delete_by_staff(
                model=model, actor=request.user, request=request
            )


@admin.register(Post)
class PostAdmin(LargeTableAdmin, IndexedSearchMixin, admin.ModelAdmin):
    """Posts, newest first (``post_created_idx``).

    Filters: published (``post_published_created_idx``), created date
    (``post_created_idx``). Search: any part of the title
    (``post_title_trgm_idx``; the start for a short term,
    ``post_title_prefix_idx``), exact id or app id (``post_app_created_idx``),
    or the author's exact email (``post_author_created_idx``).
    """

    list_display = ("title", "author", "app", "published", "created_at")
    list_filter = ("published", "created_at")
    search_fields = ("title", "id__exact", "app__id__exact")
    search_user_fields = ("author",)
    search_help_text = (
        "Any part of the title (3+ letters), an exact post or app id, or the "
        "author's exact email."
    )
    autocomplete_fields = ("author", "app")
    list_select_related = ("author", "app")
    list_related_columns = ("author__email", "app__name")
    readonly_fields = ("id", "created_at", "updated_at")
    ordering = ("-created_at",)

    def save_model(self, request, obj, form, change):
        if not change:
            services.post_create_by_staff(post=obj, actor=request.user, request=request)
            return
        services.post_update_by_staff(
            post=obj,
            actor=request.user,
            changes={name: form.cleaned_data[name] for name in form.changed_data},
            request=request,
        )

    def delete_model(self, request, obj):
        services.post_delete_by_staff(post=obj, actor=request.user, request=request)

    def delete_queryset(self, request, queryset):
        for post in queryset:
            services.post_delete_by_staff(
                post=post, actor=request.user, request=request
            )
