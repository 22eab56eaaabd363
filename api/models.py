"""API keys: how scripts authenticate to /api/v1/.

A key is shown once, when it is created; only its SHA-256 is stored (keys are
32 random characters, so a fast hash is enough: there is nothing to guess from
it), with the first characters kept in clear as ``prefix`` so people can tell
their keys apart and staff can find one from a log line.
"""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from core.ids import IdField


class ApiKey(models.Model):
    class Scope(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Write"

    id = IdField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_keys",
        # Served by the (user, created_at) index.
        db_index=False,
    )
    name = models.CharField(max_length=100)
    # "lp_live_" and the key's first four random characters: shown in lists.
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = ArrayField(models.CharField(max_length=10, choices=Scope.choices))
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ("-created_at",)
        indexes = [
            models.Index(
                fields=["user", "-created_at"], name="apikey_user_created_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scopes__contained_by=["read", "write"])
                & models.Q(scopes__len__gte=1),
                name="apikey_scopes_known",
            ),
            models.CheckConstraint(
                condition=~models.Q(name=""), name="apikey_name_not_blank"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now
