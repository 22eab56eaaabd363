from django.conf import settings
from django.db import models
from django.utils import timezone

from config.ids import IdField


class AuditLog(models.Model):
    """Who did what to which record: staff changes and security events.

    Rows are kept seven years (seed 003); the actor's email is copied so the
    trail still reads after the account is deleted.
    """

    class Action(models.TextChoices):
        SIGN_IN = "sign_in", "Signed in"
        SIGN_OUT = "sign_out", "Signed out"
        SIGN_IN_FAILED = "sign_in_failed", "Sign-in failed"
        MAGIC_LINK_REQUESTED = "magic_link_requested", "Magic link requested"
        ACCOUNT_CONNECTED = "account_connected", "Account connected"
        ACCOUNT_DISCONNECTED = "account_disconnected", "Account disconnected"
        SESSION_REVOKED = "session_revoked", "Session revoked"
        ROLE_CHANGED = "role_changed", "Role changed"
        USER_DEACTIVATED = "user_deactivated", "User deactivated"
        USER_DELETED = "user_deleted", "User deleted"
        PROFILE_UPDATED = "profile_updated", "Profile updated"
        PLAN_CHANGED = "plan_changed", "Plan changed"
        BILLING_EVENT = "billing_event", "Billing event"
        FLAG_CHANGED = "flag_changed", "Feature flag changed"
        BACKUP = "backup", "Backup"
        RESTORE = "restore", "Restore"
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"
        DELETED = "deleted", "Deleted"

    id = IdField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_email = models.CharField(max_length=255, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=255, blank=True)
    target_repr = models.CharField(max_length=255, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [
            # Admin changelist: newest first; retention cleanup by age.
            models.Index(fields=["-created_at"], name="auditlog_created_idx"),
            # "What did this person do" in the admin.
            models.Index(fields=["actor", "-created_at"], name="auditlog_actor_idx"),
            # History of one record.
            models.Index(
                fields=["target_type", "target_id"], name="auditlog_target_idx"
            ),
            # Admin filter by action.
            models.Index(fields=["action", "-created_at"], name="auditlog_action_idx"),
        ]

    def __str__(self):
        who = self.actor_email or "system"
        return f"{who} {self.get_action_display()} {self.target_repr}".strip()
