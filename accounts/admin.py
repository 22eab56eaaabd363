from django.contrib import admin

from accounts.models import User


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
    search_fields = ("email", "name")
    ordering = ("-created_at",)
    readonly_fields = ("id", "created_at", "updated_at", "last_login")
    exclude = ("password",)
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
