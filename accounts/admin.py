from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models

from accounts import services
from accounts.models import MagicLink, User


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = (
        "email",
        "name",
        "role",
        "tier",
        "is_active",
        "created_at",
        "last_login",
    )
    list_filter = ("role", "tier", "is_active")
    # "^" = starts-with: an index-friendly prefix match on big tables.
    search_fields = ("^email", "^name")
    ordering = ("-created_at",)
    show_full_result_count = False
    list_per_page = 50
    readonly_fields = ("id", "created_at", "updated_at", "last_login")
    exclude = ("password",)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ("deactivate_users", "make_admin", "make_user")
    fieldsets = (
        (None, {"fields": ("id", "email", "name", "first_name", "last_name", "image")}),
        (
            "Access",
            {"fields": ("role", "is_active", "email_verified_at", "last_login")},
        ),
        (
            "Plan and usage",
            {
                "fields": (
                    "tier",
                    "keyword_searches_this_month",
                    "keyword_searches_total",
                    "monthly_reset_at",
                    "trial_ends_at",
                )
            },
        ),
        (
            "Billing",
            {
                "fields": (
                    "stripe_customer_id",
                    "stripe_subscription_id",
                    "subscription_status",
                    "subscription_plan",
                    "subscription_ends_at",
                )
            },
        ),
        ("Dates", {"fields": ("deleted_at", "created_at", "updated_at")}),
    )

    def save_model(self, request, obj, form, change):
        """Role and deactivation go through the services (audit trail, rules)."""
        new_role = obj.role
        deactivating = change and "is_active" in form.changed_data and not obj.is_active
        if change and "role" in form.changed_data:
            obj.role = form.initial["role"]
        if deactivating:
            obj.is_active = True
        super().save_model(request, obj, form, change)
        if change and new_role != obj.role:
            services.user_role_change(
                user=obj, role=new_role, actor=request.user, request=request
            )
        if deactivating:
            services.user_deactivate(user=obj, actor=request.user, request=request)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is None:
            return form

        class RoleCheckedForm(form):
            def clean_role(self):
                role = self.cleaned_data["role"]
                if role != User.Role.ADMIN and obj.role == User.Role.ADMIN:
                    others = (
                        User.objects.filter(role=User.Role.ADMIN, is_active=True)
                        .exclude(pk=obj.pk)
                        .exists()
                    )
                    if not others:
                        raise ValidationError(
                            "This is the only active admin; make someone else "
                            "admin first."
                        )
                return role

        return RoleCheckedForm

    @admin.action(description="Deactivate selected users (signs them out)")
    def deactivate_users(self, request, queryset):
        count = 0
        for user in queryset.filter(is_active=True):
            services.user_deactivate(user=user, actor=request.user, request=request)
            count += 1
        self.message_user(request, f"Deactivated {count} user(s).", messages.SUCCESS)

    @admin.action(description="Make selected users admins")
    def make_admin(self, request, queryset):
        self._set_role(request, queryset, User.Role.ADMIN)

    @admin.action(description="Make selected users regular users")
    def make_user(self, request, queryset):
        self._set_role(request, queryset, User.Role.USER)

    def _set_role(self, request, queryset, role):
        changed = 0
        for user in queryset.exclude(role=role):
            try:
                services.user_role_change(
                    user=user, role=role, actor=request.user, request=request
                )
                changed += 1
            except ValidationError as exc:
                self.message_user(
                    request, f"{user.email}: {exc.messages[0]}", messages.ERROR
                )
        self.message_user(request, f"Changed the role of {changed} user(s).")


@admin.register(MagicLink)
class MagicLinkAdmin(admin.ModelAdmin):
    """Links are created only by the sign-in page; staff can look and delete.
    Only the hash of a link's secret exists, so nothing here can sign anyone in."""

    list_display = (
        "email",
        "user",
        "created_at",
        "expires_at",
        "used_at",
        "requested_ip",
    )
    list_filter = ("used_at",)
    search_fields = ("^email",)
    ordering = ("-created_at",)
    show_full_result_count = False
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = (
        "id",
        "email",
        "user",
        "token_hash",
        "created_at",
        "expires_at",
        "used_at",
        "requested_ip",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # View-only detail page (the hash and dates are evidence, not settings).
        return False
