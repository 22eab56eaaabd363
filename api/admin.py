from django.contrib import admin, messages

from api.models import ApiKey
from api.services import api_key_revoke
from core.admin_tools import ReadOnlyAdmin


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    """API keys: read-only (the key itself is never stored; its hash is not
    shown). Staff revoke a leaked key with the action, audit-logged."""

    list_display = (
        "prefix",
        "name",
        "user",
        "scopes",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_select_related = ("user",)
    list_filter = ("revoked_at",)
    search_fields = ("=prefix", "user__id__exact")
    search_help_text = "A key's prefix (lp_live_ab12) or a user id."
    ordering = ("-created_at",)
    exclude = ("key_hash",)
    actions = ("revoke_keys",)

    @admin.action(description="Revoke the selected keys")
    def revoke_keys(self, request, queryset):
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key, actor=request.user, request=request)
            revoked += 1
        self.message_user(request, f"{revoked} key(s) revoked.", messages.SUCCESS)
