from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone

from core.ids import IdField


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
        MFA_ENABLED = "mfa_enabled", "Two-factor method added"
        MFA_DISABLED = "mfa_disabled", "Two-factor method removed"
        MFA_RECOVERY_CODE_USED = "mfa_recovery_code_used", "Recovery code used"
        MFA_RECOVERY_CODES_REGENERATED = (
            "mfa_recovery_codes_regenerated",
            "Recovery codes regenerated",
        )
        ROLE_CHANGED = "role_changed", "Role changed"
        USER_DEACTIVATED = "user_deactivated", "User deactivated"
        USER_DELETED = "user_deleted", "User deleted"
        PROFILE_UPDATED = "profile_updated", "Profile updated"
        DATA_EXPORT_REQUESTED = "data_export_requested", "Data export requested"
        PLAN_CHANGED = "plan_changed", "Plan changed"
        BILLING_EMAIL = "billing_email", "Billing email queued"
        FLAG_CHANGED = "flag_changed", "Feature flag changed"
        BACKUP = "backup", "Backup"
        RESTORE = "restore", "Restore"
        UPDATED = "updated", "Updated"
        DELETED = "deleted", "Deleted"
        # An ADMIN signed in as a user for support (accounts.impersonation).
        IMPERSONATION_STARTED = "impersonation_started", "Impersonation started"
        IMPERSONATION_ENDED = "impersonation_ended", "Impersonation ended"
        # Database dashboard actions of an ADMIN (core.services).
        QUERY_CANCELLED = "query_cancelled", "Database query cancelled"
        QUERY_TERMINATED = "query_terminated", "Database connection terminated"
        STATEMENT_STATS_RESET = "statement_stats_reset", "Statement statistics reset"
        API_KEY_CREATED = "api_key_created", "API key created"
        API_KEY_REVOKED = "api_key_revoked", "API key revoked"

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
            # Admin filter by target type, newest first (and its list of types).
            models.Index(
                fields=["target_type", "-created_at"],
                name="auditlog_type_created_idx",
            ),
            # Admin search by exact target id (any type).
            models.Index(fields=["target_id"], name="auditlog_target_id_idx"),
            # Admin search "=actor_email": UPPER(actor_email) = UPPER(?), newest
            # first; the email stays when the actor's account is deleted.
            models.Index(
                Upper("actor_email"),
                models.F("created_at").desc(),
                name="auditlog_actor_email_idx",
            ),
            # Admin search by any part of the target, its id or the actor's
            # email (UPPER(col) LIKE '%X%', what icontains compiles to).
            GinIndex(
                OpClass(Upper("target_repr"), name="gin_trgm_ops"),
                name="auditlog_target_repr_trgm_idx",
            ),
            GinIndex(
                OpClass(Upper("target_id"), name="gin_trgm_ops"),
                name="auditlog_target_id_trgm_idx",
            ),
            GinIndex(
                OpClass(Upper("actor_email"), name="gin_trgm_ops"),
                name="auditlog_actor_email_trgm_idx",
            ),
        ]

    def __str__(self):
        who = self.actor_email or "system"
        return f"{who} {self.get_action_display()} {self.target_repr}".strip()


class FeatureFlag(models.Model):
    """A switch for gradual rollouts and A/B tests.

    ``enabled`` is the master switch. When on, a user sees the feature if they are
    in ``allowed_users`` or their deterministic bucket (0-99, from a hash of the
    flag key and user id) is below ``rollout_percent``. See
    ``core.selectors.flag_enabled``.
    """

    id = IdField()
    key = models.SlugField(
        max_length=100,
        help_text="Stable name used in code and templates, e.g. new-search-page.",
    )
    description = models.TextField(blank=True)
    enabled = models.BooleanField(
        default=False, help_text="Master switch: off means off for everyone."
    )
    rollout_percent = models.PositiveSmallIntegerField(
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Share of signed-in users (0-100) who get the feature.",
    )
    allowed_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="+",
        help_text="Always get the feature while the flag is enabled.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            # Lookups by key (flag_enabled) use this index too.
            models.UniqueConstraint(
                fields=["key"],
                name="featureflag_key_unique",
                violation_error_message="A feature flag with this key already exists.",
            ),
            models.CheckConstraint(
                condition=models.Q(rollout_percent__gte=0, rollout_percent__lte=100),
                name="featureflag_rollout_percent_range",
                violation_error_message="Rollout must be between 0 and 100 percent.",
            ),
        ]

    def __str__(self):
        return self.key


class SystemMetric(models.Model):
    """One measurement (db response time, queue depth, ...) at one moment."""

    id = IdField()
    metric = models.CharField(max_length=100)
    value = models.FloatField()
    tags = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [
            # One metric over a time range, newest first (admin, charts, pruning).
            models.Index(
                fields=["metric", "timestamp"], name="systemmetric_metric_ts_idx"
            ),
            # Admin list, newest first (ties by id).
            models.Index(fields=["timestamp", "id"], name="systemmetric_time_idx"),
        ]

    def __str__(self):
        return f"{self.metric}={self.value:g} @ {self.timestamp:%Y-%m-%d %H:%M:%S}"


class DatabaseDashboard(models.Model):
    """No table: gives the staff database dashboard a place in the admin index."""

    class Meta:
        managed = False
        default_permissions = ()
        verbose_name = "database dashboard"
        verbose_name_plural = "database dashboard"

    def __str__(self):
        return "Database dashboard"
