"""Keyword research: saved searches, search history and API usage.

SearchHistory and APIUsage are append-only logs that grow by millions of rows;
their indexes are chosen for the queries that read them (a user's newest rows,
keyset pagination, admin filters) and nothing else, so inserts stay cheap.
"""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models.functions import Upper
from django.urls import reverse
from django.utils import timezone

from core.ids import IdField

MAX_KEYWORDS = 200
MAX_KEYWORD_LENGTH = 80


class MatchType(models.TextChoices):
    BROAD = "broad", "Broad"
    PHRASE = "phrase", "Phrase"
    EXACT = "exact", "Exact"


def _keywords_field():
    return ArrayField(models.CharField(max_length=MAX_KEYWORD_LENGTH))


class SavedSearch(models.Model):
    id = IdField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="saved_searches",
        # Served by the composite (user, ...) indexes below.
        db_index=False,
    )
    name = models.CharField(max_length=120)
    keywords = _keywords_field()
    location = models.CharField(max_length=8, default="US")
    language = models.CharField(max_length=8, default="en")
    match_type = models.CharField(
        max_length=8, choices=MatchType.choices, default=MatchType.BROAD
    )
    keyword_count = models.PositiveSmallIntegerField()
    # Results as shown when the search was saved: a list of keyword-data dicts
    # plus the provider that produced them.
    results = models.JSONField(default=list, blank=True)
    provider = models.CharField(max_length=32, default="sample")
    last_accessed_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "saved searches"
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(name=""),
                name="savedsearch_name_not_empty",
                violation_error_message="Give the search a name.",
            ),
            models.CheckConstraint(
                condition=models.Q(keyword_count__gte=1)
                & models.Q(keyword_count__lte=MAX_KEYWORDS),
                name="savedsearch_keyword_count_range",
                violation_error_message="A search has 1 to 200 keywords.",
            ),
            models.CheckConstraint(
                condition=models.Q(keywords__len__gte=1)
                & models.Q(keywords__len__lte=MAX_KEYWORDS),
                name="savedsearch_keywords_len_range",
                violation_error_message="A search has 1 to 200 keywords.",
            ),
            models.CheckConstraint(
                condition=models.Q(match_type__in=MatchType.values),
                name="savedsearch_match_type_valid",
            ),
        ]
        indexes = [
            # Admin and "newest saved" lists of one user; also serves user_id
            # lookups (FK cascade on user delete).
            models.Index(
                fields=["user", "created_at"], name="savedsearch_user_created_idx"
            ),
            # /search/saved/: a user's searches, most recently opened first, ties
            # by id (the page's ORDER BY, read without a sort).
            models.Index(
                fields=["user", "-last_accessed_at", "-id"],
                name="savedsearch_user_access_idx",
            ),
            # Admin list, newest first, and its match-type filter.
            models.Index(fields=["-created_at"], name="savedsearch_created_idx"),
            models.Index(
                fields=["match_type", "-created_at"],
                name="savedsearch_match_created_idx",
            ),
            # Admin search by any part of the name (UPPER(name) LIKE '%X%').
            GinIndex(
                OpClass(Upper("name"), name="gin_trgm_ops"),
                name="savedsearch_name_trgm_idx",
            ),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("searches:saved_detail", args=[self.pk])


class SearchHistory(models.Model):
    """One keyword search as it ran (signed in or anonymous). Append-only."""

    id = IdField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="search_history",
        # The (user, searched_at, id) index serves user_id lookups, including
        # the SET NULL update when a user is deleted; a second index on a table
        # of tens of millions of rows would only slow inserts.
        db_index=False,
    )
    keywords = _keywords_field()
    location = models.CharField(max_length=8, default="US")
    language = models.CharField(max_length=8, default="en")
    match_type = models.CharField(
        max_length=8, choices=MatchType.choices, default=MatchType.BROAD
    )
    provider = models.CharField(max_length=32)
    cache_hit = models.BooleanField(default=False)
    response_time_ms = models.PositiveIntegerField(default=0)
    keyword_count = models.PositiveSmallIntegerField()
    avg_volume = models.PositiveIntegerField(default=0)
    total_volume = models.PositiveBigIntegerField(default=0)
    searched_at = models.DateTimeField(default=timezone.now)
    user_agent = models.CharField(max_length=512, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name_plural = "search history"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(keyword_count__gte=1)
                & models.Q(keyword_count__lte=MAX_KEYWORDS),
                name="searchhist_keyword_count_range",
            ),
        ]
        indexes = [
            # /search/history/: WHERE user_id = %s AND (searched_at, id) < cursor
            # ORDER BY searched_at DESC, id DESC LIMIT n (keyset pagination);
            # its chart sums keyword_count per day over 30 days from the index
            # alone (an index-only scan: no heap page per search).
            models.Index(
                fields=["user", "-searched_at", "-id"],
                name="searchhist_user_time_idx",
                include=["keyword_count"],
            ),
            # Admin list (newest first, ties by id) and date filters; analytics
            # over a time range.
            models.Index(fields=["searched_at", "id"], name="searchhist_time_idx"),
            # Admin provider filter, newest first within a provider.
            models.Index(
                fields=["provider", "searched_at"], name="searchhist_provider_time_idx"
            ),
            # Admin filter "cache hits", newest first; partial, so misses (the
            # rows read along searchhist_time_idx) cost it nothing.
            models.Index(
                fields=["searched_at", "id"],
                condition=models.Q(cache_hit=True),
                name="searchhist_cache_hit_time_idx",
            ),
        ]

    def __str__(self):
        return f"{self.keyword_count} keywords at {self.searched_at:%Y-%m-%d %H:%M}"

    def get_absolute_url(self):
        return reverse("searches:history_detail", args=[self.pk])


class APIUsage(models.Model):
    """One call of the JSON API, refused calls included. Append-only."""

    id = IdField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="api_usage",
        # Served by the (user, timestamp) index.
        db_index=False,
    )
    endpoint = models.CharField(max_length=200)
    method = models.CharField(max_length=10)
    status_code = models.PositiveSmallIntegerField()
    duration_ms = models.PositiveIntegerField(default=0)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    # The API key's visible prefix (lp_live_ab12) for /api/v1/ calls made with
    # one; empty for the session endpoint and unauthenticated calls.
    key_prefix = models.CharField(max_length=16, blank=True, default="", db_default="")
    timestamp = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "API usage"
        verbose_name_plural = "API usage"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status_code__gte=100)
                & models.Q(status_code__lte=599),
                name="apiusage_status_code_http",
            ),
        ]
        indexes = [
            # A user's calls over a period (rate analytics, billing data).
            models.Index(fields=["user", "timestamp"], name="apiusage_user_time_idx"),
            # One key's calls over a period (which script is this?); only rows
            # made with a key are in it.
            models.Index(
                fields=["key_prefix", "timestamp"],
                name="apiusage_key_time_idx",
                condition=~models.Q(key_prefix=""),
            ),
            # Calls of one endpoint over a period; admin endpoint filter.
            models.Index(
                fields=["endpoint", "timestamp"], name="apiusage_endpoint_time_idx"
            ),
            # Calls from one IP over a period (abuse checks).
            models.Index(
                fields=["ip_address", "timestamp"], name="apiusage_ip_time_idx"
            ),
            # Admin list, newest first.
            models.Index(fields=["timestamp", "id"], name="apiusage_time_idx"),
            # Admin filter "4xx" / "5xx", newest first; partial: errors only.
            models.Index(
                fields=["timestamp", "id"],
                condition=models.Q(status_code__gte=400),
                name="apiusage_error_time_idx",
            ),
        ]

    def __str__(self):
        return f"{self.method} {self.endpoint} {self.status_code}"
