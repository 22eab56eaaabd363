from allauth.account.admin import EmailAddressAdmin as BaseEmailAddressAdmin
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.admin import (
    SocialAccountAdmin as BaseSocialAccountAdmin,
)
from allauth.socialaccount.admin import (
    SocialAppAdmin as BaseSocialAppAdmin,
)
from allauth.socialaccount.admin import (
    SocialTokenAdmin as BaseSocialTokenAdmin,
)
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from allauth.usersessions.admin import UserSessionAdmin as BaseUserSessionAdmin
from allauth.usersessions.models import UserSession
from django.contrib import admin, messages
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.shortcuts import redirect

from accounts import services
from accounts.models import MagicLink, User
from core.admin_audit import StaffAuditedAdmin
from core.admin_tools import (
    IndexedSearchMixin,
    LargeTableAdmin,
    ReadOnlyAdmin,
    RelationsMixin,
    indexed_values_filter,
)


@admin.register(User)
class UserAdmin(LargeTableAdmin, IndexedSearchMixin, admin.ModelAdmin):
    """Users, newest first (``user_created_at_idx``).

    Filters: role, tier, active — fixed choices, each served by a
    ``(column, created_at)`` index. Search: any part of the email, name, first
    or last name (``user_*_trgm_idx``, ``pg_trgm`` GIN on ``UPPER(col)``, what
    ``icontains`` compiles to; a term under 3 letters matches the start, via
    ``user_email_prefix_idx`` / ``user_name_prefix_idx``); an exact id or email
    opens the user (``user_email_ci_unique``). The change page lists the
    user's apps, searches, history, API usage, sessions, social accounts,
    two-factor methods and audit rows (``RelationsMixin``).
    """

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
    # Plain fields = any part: UPPER(col) LIKE '%ANN%', the trigram indexes.
    search_fields = ("email", "name", "first_name", "last_name", "id__exact")
    search_jump_fields = ("email",)
    search_help_text = (
        "Any part of the email or name (3+ letters). An exact email or user id "
        "opens that user."
    )
    related_labels = {
        "ops.auditlog.actor": "Audit rows (as actor)",
        "ops.featureflag.allowed_users": "Feature flags (allowed)",
        "ops.featureflag.created_by": "Feature flags (created)",
    }
    ordering = ("-created_at",)
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
        ("Dates", {"fields": ("created_at", "updated_at")}),
    )

    def save_model(self, request, obj, form, change):
        """Every edit goes through the services: the role and deactivation
        rules hold, and one audit row keeps each changed field's old and new
        value. Only the fields staff changed are written."""
        if not change:
            services.user_create_by_staff(user=obj, actor=request.user, request=request)
            return
        services.user_update_by_staff(
            user=obj,
            actor=request.user,
            changes={name: form.cleaned_data[name] for name in form.changed_data},
            request=request,
        )

    def delete_view(self, request, object_id, extra_context=None):
        # A refused deletion (the only admin, a subscription that still bills)
        # is a message on the user's page, not a 500; Django's delete view runs
        # in a transaction, so nothing it did is kept.
        try:
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return redirect("admin:accounts_user_change", object_id)

    def delete_model(self, request, obj):
        services.user_delete_by_staff(user=obj, actor=request.user, request=request)

    def delete_queryset(self, request, queryset):
        # One service call per user: the same rules, hooks and audit row as a
        # single delete. A refusal skips that user and says why.
        for user in queryset:
            try:
                services.user_delete_by_staff(
                    user=user, actor=request.user, request=request
                )
            except ValidationError as exc:
                self.message_user(
                    request, f"{user.email}: {exc.messages[0]}", messages.ERROR
                )

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is None:
            return form

        class RoleCheckedForm(form):
            def clean_role(self):
                role = self.cleaned_data["role"]
                try:
                    services.user_role_change_check(
                        user=obj, old_role=obj.role, role=role
                    )
                except ValidationError as exc:
                    raise ValidationError(exc.messages) from exc
                return role

            def clean_is_active(self):
                is_active = self.cleaned_data["is_active"]
                if not is_active:
                    try:
                        services.user_removal_check(user=obj)
                    except ValidationError as exc:
                        raise ValidationError(exc.messages) from exc
                return is_active

        return RoleCheckedForm

    @admin.action(description="Deactivate selected users (signs them out)")
    def deactivate_users(self, request, queryset):
        count = 0
        for user in queryset.filter(is_active=True):
            try:
                services.user_deactivate(user=user, actor=request.user, request=request)
            except ValidationError as exc:
                self.message_user(
                    request, f"{user.email}: {exc.messages[0]}", messages.ERROR
                )
            else:
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
class MagicLinkAdmin(
    StaffAuditedAdmin, LargeTableAdmin, IndexedSearchMixin, admin.ModelAdmin
):
    """Links are created only by the sign-in page; staff can look and delete.
    Only the hash of a link's secret exists, so nothing here can sign anyone in.

    Newest first (``magiclink_created_idx``); filter on the use date
    (``magiclink_used_idx``); search: any part of the email
    (``magiclink_email_trgm_idx``; the start for a short term,
    ``magiclink_email_prefix_idx``) or exact id.
    """

    list_display = (
        "email",
        "user",
        "created_at",
        "expires_at",
        "used_at",
        "requested_ip",
    )
    list_filter = ("used_at",)
    search_fields = ("email", "id__exact")
    search_help_text = (
        "Any part of the email address (3+ letters), or an exact link id."
    )
    ordering = ("-created_at",)
    list_select_related = ("user",)
    list_related_columns = ("user__email",)
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


# allauth's own admins list the user of every row with one query per row and
# search with substring matches over a join; these replace them.
# Access is by role (ADMIN sees everything), not by Django groups: hide the page.
admin.site.unregister(Group)
admin.site.unregister(EmailAddress)
admin.site.unregister(SocialAccount)
admin.site.unregister(UserSession)
admin.site.unregister(SocialToken)


@admin.register(EmailAddress)
class EmailAddressAdmin(
    StaffAuditedAdmin, LargeTableAdmin, IndexedSearchMixin, BaseEmailAddressAdmin
):
    """Search: any part of the address (``account_emailaddress_trgm_idx``, made
    by an accounts migration: allauth's app is not ours) or the exact email of
    the user."""

    list_select_related = ("user",)
    list_related_columns = ("user__email",)
    search_user_fields = ("user",)
    search_help_text = "Any part of the address (3+ letters), or a user's exact email."

    def get_search_fields(self, request):
        # Not allauth's own search fields (they join the user table and scan).
        return self.indexed_search_fields(request, ("email",))

    @admin.action(description="Mark selected email addresses as verified")
    def make_verified(self, request, queryset):
        # allauth's action, through a service that leaves an audit row.
        for address in queryset.filter(verified=False).iterator():
            if services.email_address_verify_by_staff(
                address=address, actor=request.user, request=request
            ):
                self.message_user(
                    request, f"Marked {address.email} as verified.", messages.SUCCESS
                )
            else:
                self.message_user(
                    request,
                    f"Failed to mark {address.email} as verified.",
                    messages.ERROR,
                )


@admin.register(SocialAccount)
class SocialAccountAdmin(
    StaffAuditedAdmin, LargeTableAdmin, IndexedSearchMixin, BaseSocialAccountAdmin
):
    """Filter by provider (read from the ``(provider, uid)`` index, no DISTINCT
    scan); search: exact uid or the user's exact email."""

    list_filter = (indexed_values_filter("provider"),)
    list_select_related = ("user",)
    list_related_columns = ("user__email",)
    search_user_fields = ("user",)
    search_help_text = "Exact provider uid, or a user's exact email."

    def get_search_fields(self, request):
        return ("uid__exact",)


@admin.register(SocialToken)
class SocialTokenAdmin(StaffAuditedAdmin, RelationsMixin, BaseSocialTokenAdmin):
    """allauth's token list with its app and account columns as links (and the
    account's user fetched in the same query: its name shows the user)."""

    list_select_related = ("app", "account__user")


@admin.register(UserSession)
class UserSessionAdmin(
    StaffAuditedAdmin, LargeTableAdmin, IndexedSearchMixin, BaseUserSessionAdmin
):
    """Search: the user's exact email or id (the ``user_id`` index)."""

    list_select_related = ("user",)
    list_related_columns = ("user__email",)
    search_fields = ("user__id__exact",)
    search_user_fields = ("user",)
    search_help_text = "A user's exact email or id."

    def delete_model(self, request, obj):
        # Deleting the row alone would leave the browser signed in: end the
        # session itself (accounts.services), with its audit row.
        services.user_session_end_by_staff(
            session=obj, actor=request.user, request=request
        )


# allauth.mfa's own admin lets staff add and edit an authenticator's secret
# data and deletes without an audit row: replaced by a read-only list whose one
# write is an audited removal (accounts.services).
admin.site.unregister(Authenticator)


@admin.register(Authenticator)
class AuthenticatorAdmin(ReadOnlyAdmin):
    list_display = ("user", "type", "created_at", "last_used_at")
    list_filter = ("type",)
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    fields = ("user", "type", "created_at", "last_used_at")
    readonly_fields = fields
    ordering = ("-created_at",)
    actions = ("remove_factors",)

    @admin.action(description="Remove the selected two-factor methods (audited)")
    def remove_factors(self, request, queryset):
        count = 0
        for authenticator in queryset.select_related("user"):
            services.mfa_authenticator_remove_by_staff(
                authenticator=authenticator, actor=request.user, request=request
            )
            count += 1
        self.message_user(
            request, f"Removed {count} two-factor method(s).", messages.SUCCESS
        )


# A provider's credentials (client id and secret): every change audited, the
# secret, key and settings (may hold keys) as "(changed)", never with values.
admin.site.unregister(SocialApp)


@admin.register(SocialApp)
class SocialAppAdmin(StaffAuditedAdmin, BaseSocialAppAdmin):
    audit_secret_fields = ("secret", "key", "settings")
