"""Audited saves and deletes for admin pages of models that have no service of
their own (allauth's email addresses, connected accounts, tokens, sessions):
every staff write leaves an audit row with old and new values."""

from core.services import model_delete_by_staff, model_save_by_staff


class StaffAuditedAdmin:
    """Mix into a ModelAdmin (before it): the change form, the delete page and
    the "delete selected" action go through ``core.services.model_*_by_staff``.
    ``audit_secret_fields`` are recorded as "(changed)", never with values
    (names containing password, secret, token… already are)."""

    audit_secret_fields: tuple[str, ...] = ()

    def save_model(self, request, obj, form, change):
        model_save_by_staff(
            instance=obj,
            actor=request.user,
            changed_fields=form.changed_data if change else None,
            request=request,
            secret_fields=self.audit_secret_fields,
        )

    def delete_model(self, request, obj):
        model_delete_by_staff(
            instance=obj,
            actor=request.user,
            request=request,
            secret_fields=self.audit_secret_fields,
        )

    def delete_queryset(self, request, queryset):
        # One row at a time, so each deletion has its audit row.
        for obj in queryset:
            self.delete_model(request, obj)
