from django.contrib import admin

from ops.models import AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "actor_email",
        "action",
        "target_type",
        "target_repr",
        "ip_address",
    )
    list_filter = ("action", "target_type")
    search_fields = ("=actor_email", "=target_id")
    ordering = ("-created_at",)
    show_full_result_count = False
    list_select_related = ()
    raw_id_fields = ("actor",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
