from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Upper
from django.urls import reverse
from django.utils import timezone

from core.ids import IdField

# Lower-case host names only: the check constraint below then makes the plain
# unique constraint case-insensitive without an expression index.
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN_REGEX = rf"^{_LABEL}(\.{_LABEL})+$"

# How long a soft-deleted app stays in its owner's trash (restorable by them);
# after that only staff see it, in the admin.
TRASH_RETENTION = timedelta(days=30)


class ConstraintErrorsOnFields(models.Model):
    """Report a database constraint's violation on the form field it concerns.

    Each constraint carries ``violation_error_code`` = its name; ``CONSTRAINT_FIELDS``
    maps that name to a field, so "SUBSCRIPTION without interval" shows next to
    the interval instead of at the top of the form.
    """

    CONSTRAINT_FIELDS: dict[str, str] = {}

    class Meta:
        abstract = True

    def validate_constraints(self, exclude=None):
        try:
            super().validate_constraints(exclude=exclude)
        except ValidationError as exc:
            raise ValidationError(
                constraint_errors_on_fields(exc.error_dict, self.CONSTRAINT_FIELDS)
            ) from exc


def constraint_errors_on_fields(error_dict, constraint_fields) -> dict:
    errors: dict[str, list] = {}
    for field, field_errors in error_dict.items():
        for error in field_errors:
            target = field
            if field == NON_FIELD_ERRORS and error.code in constraint_fields:
                target = constraint_fields[error.code]
            errors.setdefault(target, []).append(error)
    return errors


class AppQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Apps ``user`` may look at: every ACTIVE app, plus their own DRAFT and
        ARCHIVED ones. DELETED apps are for the admin only."""
        visible = models.Q(status=App.Status.ACTIVE)
        if user is not None and user.is_authenticated:
            visible |= models.Q(
                owner=user, status__in=[App.Status.DRAFT, App.Status.ARCHIVED]
            )
        return self.filter(visible)

    def owned_by(self, user):
        """The owner's apps that are not soft-deleted (what the owner may edit)."""
        if user is None or not user.is_authenticated:
            return self.none()
        return self.filter(owner=user).exclude(status=App.Status.DELETED)

    def in_trash_of(self, user, *, now=None):
        """The owner's apps deleted less than :data:`TRASH_RETENTION` ago (what
        the owner may still see and restore), served by ``app_owner_trash_idx``.
        A DELETED app without ``deleted_at`` (written by hand) is past it."""
        if user is None or not user.is_authenticated:
            return self.none()
        cutoff = (now or timezone.now()) - TRASH_RETENTION
        return self.filter(
            owner=user, status=App.Status.DELETED, deleted_at__gte=cutoff
        )


class App(ConstraintErrorsOnFields):
    class Status(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        ACTIVE = "ACTIVE", "Active"
        ARCHIVED = "ARCHIVED", "Archived"
        DELETED = "DELETED", "Deleted"

    CONSTRAINT_FIELDS = {
        "app_domain_unique": "domain",
        "app_domain_valid": "domain",
        "app_name_not_blank": "name",
    }

    id = IdField()
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="apps",
        db_index=False,  # served by app_owner_created_idx
    )
    forked_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="forks",
        db_index=False,  # served by app_forked_from_idx
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.DRAFT
    )
    domain = models.CharField(  # noqa: DJ001 - NULL keeps "unique when set" simple
        max_length=253,
        null=True,  # NULL, not "", so that many apps can have no domain
        blank=True,
        validators=[
            RegexValidator(DOMAIN_REGEX, "Enter a host name such as myapp.example.com.")
        ],
        help_text="Optional custom domain, e.g. myapp.example.com.",
    )
    # Direct forks that are not soft-deleted. Kept by the fork/delete/restore
    # services with F() updates so /explore/ can sort by it through an index
    # instead of counting forks of every ACTIVE app on each request.
    fork_count = models.PositiveIntegerField(default=0, editable=False)
    # When the app went to the trash; the owner may restore it for
    # TRASH_RETENTION. Set and cleared by the delete/restore services.
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AppQuerySet.as_manager()

    class Meta:
        constraints = [
            # NULLs are distinct in a unique index: "unique when set". Domains
            # are stored lower-case (app_domain_valid), so this is also
            # case-insensitive. The index also serves lookups by domain.
            models.UniqueConstraint(
                fields=["domain"],
                name="app_domain_unique",
                violation_error_code="app_domain_unique",
                violation_error_message="Another app already uses this domain.",
            ),
            models.CheckConstraint(
                condition=models.Q(domain__isnull=True)
                | models.Q(domain__regex=DOMAIN_REGEX),
                name="app_domain_valid",
                violation_error_code="app_domain_valid",
                violation_error_message="Enter a host name such as myapp.example.com.",
            ),
            models.CheckConstraint(
                condition=models.Q(name__regex=r"\S"),
                name="app_name_not_blank",
                violation_error_code="app_name_not_blank",
                violation_error_message="An app needs a name.",
            ),
            models.CheckConstraint(
                condition=models.Q(fork_count__gte=0),
                name="app_fork_count_non_negative",
            ),
            # One way only: a DELETED app without a date (bulk seeds, rows from
            # before the trash existed) simply counts as past the trash window.
            models.CheckConstraint(
                condition=models.Q(deleted_at__isnull=True)
                | models.Q(status="DELETED"),
                name="app_deleted_at_only_when_deleted",
            ),
        ]
        indexes = [
            # My apps: WHERE owner_id = ? ORDER BY created_at DESC (and the FK).
            models.Index(
                fields=["owner", "-created_at", "-id"], name="app_owner_created_idx"
            ),
            # Trash on My apps: WHERE owner_id = ? AND status = 'DELETED'
            # AND deleted_at >= ? ORDER BY deleted_at DESC; partial, so it only
            # holds the (few) deleted apps.
            models.Index(
                fields=["owner", "-deleted_at", "-id"],
                condition=models.Q(status="DELETED"),
                name="app_owner_trash_idx",
            ),
            # Admin changelist, unfiltered: ORDER BY created_at DESC LIMIT 50.
            models.Index(fields=["-created_at"], name="app_created_idx"),
            # Fork tree (recursive CTE walks children) and SET_NULL on delete.
            models.Index(fields=["forked_from"], name="app_forked_from_idx"),
            # Explore newest: WHERE status = 'ACTIVE' ORDER BY created_at DESC, id
            # DESC (id breaks ties so pages are stable; the index returns rows in
            # exactly that order, so LIMIT stops after one page).
            models.Index(
                fields=["status", "-created_at", "-id"], name="app_status_created_idx"
            ),
            # Explore most forked: WHERE status = 'ACTIVE'
            # ORDER BY fork_count DESC, created_at DESC, id DESC.
            models.Index(
                fields=["status", "-fork_count", "-created_at", "-id"],
                name="app_status_forks_idx",
            ),
            # Explore search: UPPER(name) LIKE UPPER('%q%') (Django's icontains).
            GinIndex(
                OpClass(Upper("name"), name="gin_trgm_ops"), name="app_name_trgm_idx"
            ),
            # Explore search: UPPER(description) LIKE UPPER('%q%').
            GinIndex(
                OpClass(Upper("description"), name="gin_trgm_ops"),
                name="app_description_trgm_idx",
            ),
            # Admin search by any part of the domain.
            GinIndex(
                OpClass(Upper("domain"), name="gin_trgm_ops"),
                name="app_domain_trgm_idx",
            ),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("app_detail", args=[self.pk])

    @property
    def trash_expires_at(self):
        """Until when the owner may restore this deleted app (None: never)."""
        if self.deleted_at is None:
            return None
        return self.deleted_at + TRASH_RETENTION


class Requirement(ConstraintErrorsOnFields):
    class Priority(models.TextChoices):
        LOW = "LOW", "Low"
        MEDIUM = "MEDIUM", "Medium"
        HIGH = "HIGH", "High"
        CRITICAL = "CRITICAL", "Critical"

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        IN_PROGRESS = "IN_PROGRESS", "In progress"
        COMPLETED = "COMPLETED", "Completed"
        REJECTED = "REJECTED", "Rejected"

    CONSTRAINT_FIELDS = {"requirement_description_not_blank": "description"}

    id = IdField()
    app = models.ForeignKey(
        App,
        on_delete=models.CASCADE,
        related_name="requirements",
        db_index=False,  # served by requirement_app_status_idx
    )
    description = models.TextField()
    priority = models.CharField(
        max_length=16, choices=Priority.choices, default=Priority.MEDIUM
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING
    )
    # Optimistic lock: +1 on every edit; an edit made against an older
    # version is refused (services.requirement_update).
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(description__regex=r"\S"),
                name="requirement_description_not_blank",
                violation_error_code="requirement_description_not_blank",
                violation_error_message="Describe the requirement.",
            ),
            models.CheckConstraint(
                condition=models.Q(version__gte=1),
                name="requirement_version_positive",
            ),
        ]
        indexes = [
            # Board: WHERE app_id = ? [AND status = ?] (and the FK, cascade).
            models.Index(fields=["app", "status"], name="requirement_app_status_idx"),
            # Board filtered by priority: WHERE app_id = ? AND priority = ?.
            models.Index(
                fields=["app", "priority"], name="requirement_app_priority_idx"
            ),
            # Admin list, newest first, and its status / priority filters.
            models.Index(fields=["-created_at"], name="requirement_created_idx"),
            models.Index(
                fields=["status", "-created_at"], name="requirement_status_created_idx"
            ),
            models.Index(
                fields=["priority", "-created_at"],
                name="requirement_priority_time_idx",
            ),
            # Admin search by any part of the text (UPPER(col) LIKE '%X%').
            GinIndex(
                OpClass(Upper("description"), name="gin_trgm_ops"),
                name="requirement_desc_trgm_idx",
            ),
        ]

    def __str__(self):
        return self.description[:60]

    def get_absolute_url(self):
        return reverse("requirement_edit", args=[self.app_id, self.pk])


class MonetizationModel(ConstraintErrorsOnFields):
    class Type(models.TextChoices):
        FREE = "FREE", "Free"
        ONE_TIME = "ONE_TIME", "One-time purchase"
        SUBSCRIPTION = "SUBSCRIPTION", "Subscription"
        FREEMIUM = "FREEMIUM", "Freemium"
        USAGE_BASED = "USAGE_BASED", "Usage-based"

    class Interval(models.TextChoices):
        MONTHLY = "MONTHLY", "Monthly"
        QUARTERLY = "QUARTERLY", "Quarterly"
        YEARLY = "YEARLY", "Yearly"

    # Types that need a price, types that may have one (all but FREE) and
    # types with a billing interval: the editor shows only the fields a type
    # uses (forms.MonetizationForm), the constraints below hold the same rules.
    PRICED_TYPES = (Type.ONE_TIME, Type.SUBSCRIPTION)
    PRICE_TYPES = (Type.ONE_TIME, Type.SUBSCRIPTION, Type.FREEMIUM, Type.USAGE_BASED)
    INTERVAL_TYPES = (Type.SUBSCRIPTION,)
    CONSTRAINT_FIELDS = {
        "monetization_price_non_negative": "price",
        "monetization_price_required": "price",
        "monetization_free_no_price": "price",
        "monetization_interval_subscription_only": "subscription_interval",
    }

    id = IdField()
    app = models.ForeignKey(
        App,
        on_delete=models.CASCADE,
        related_name="monetization_models",
        db_index=False,  # served by monetization_app_idx
    )
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.FREE)
    price = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0, message="The price cannot be negative.")],
        help_text="Required for one-time purchases and subscriptions.",
    )
    subscription_interval = models.CharField(
        max_length=16,
        choices=Interval.choices,
        blank=True,
        help_text="Subscriptions only.",
    )
    features = ArrayField(models.CharField(max_length=255), default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price__isnull=True) | models.Q(price__gte=0),
                name="monetization_price_non_negative",
                violation_error_code="monetization_price_non_negative",
                violation_error_message="The price cannot be negative.",
            ),
            models.CheckConstraint(
                condition=~models.Q(type__in=["ONE_TIME", "SUBSCRIPTION"])
                | models.Q(price__isnull=False),
                name="monetization_price_required",
                violation_error_code="monetization_price_required",
                violation_error_message=(
                    "One-time purchases and subscriptions need a price."
                ),
            ),
            models.CheckConstraint(
                condition=~models.Q(type="FREE") | models.Q(price__isnull=True),
                name="monetization_free_no_price",
                violation_error_code="monetization_free_no_price",
                violation_error_message="A free model has no price.",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(type="SUBSCRIPTION") & ~models.Q(subscription_interval="")
                )
                | (~models.Q(type="SUBSCRIPTION") & models.Q(subscription_interval="")),
                name="monetization_interval_subscription_only",
                violation_error_code="monetization_interval_subscription_only",
                violation_error_message=(
                    "Subscriptions need a billing interval; other types have none."
                ),
            ),
        ]
        indexes = [
            # App page and editor: WHERE app_id = ? ORDER BY created_at (and FK).
            models.Index(
                fields=["app", "created_at", "id"], name="monetization_app_idx"
            ),
            # Explore filter: EXISTS (... WHERE type = ? AND app_id = app.id).
            models.Index(fields=["type", "app"], name="monetization_type_app_idx"),
            # Admin list, newest first, and its type / interval filters.
            models.Index(fields=["-created_at"], name="monetization_created_idx"),
            models.Index(
                fields=["type", "-created_at"], name="monetization_type_created_idx"
            ),
            models.Index(
                fields=["subscription_interval", "-created_at"],
                name="monetization_interval_idx",
            ),
        ]

    def __str__(self):
        return f"{self.get_type_display()} ({self.app_id})"

    @property
    def price_label(self) -> str:
        return price_label(self.price, self.subscription_interval)

    @property
    def badge_label(self) -> str:
        return pricing_badge_label(self.type, self.price, self.subscription_interval)


_TYPE_LABELS = dict(MonetizationModel.Type.choices)
_INTERVAL_LABELS = {
    value: label.lower() for value, label in MonetizationModel.Interval.choices
}


def price_label(price, interval: str) -> str:
    """ "$9.99 / monthly": ``price`` as stored (a Decimal, or its text from a
    JSON row), empty without a price."""
    if price is None:
        return ""
    label = f"${price}"
    if interval:
        label += f" / {_INTERVAL_LABELS.get(interval, interval.lower())}"
    return label


def pricing_badge_label(type_: str, price, interval: str) -> str:
    """A pricing badge's text, "Subscription · $9.99 / monthly"; lists build
    it from plain rows (selectors.explore_page) without model instances."""
    label = _TYPE_LABELS.get(type_, type_)
    if price is None:
        return label
    return f"{label} · {price_label(price, interval)}"


class Post(ConstraintErrorsOnFields):
    CONSTRAINT_FIELDS = {"post_title_not_blank": "title"}

    id = IdField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="posts",
        db_index=False,  # served by post_author_created_idx
    )
    app = models.ForeignKey(
        App,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="posts",
        db_index=False,  # served by post_app_created_idx
    )
    title = models.CharField(max_length=255)
    content = models.TextField(blank=True)
    published = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(title__regex=r"\S"),
                name="post_title_not_blank",
                violation_error_code="post_title_not_blank",
                violation_error_message="A post needs a title.",
            ),
        ]
        indexes = [
            # An author's posts, newest first (and the FK, cascade on user delete).
            models.Index(
                fields=["author", "-created_at"], name="post_author_created_idx"
            ),
            # Published feed: WHERE published ORDER BY created_at DESC.
            models.Index(
                fields=["published", "-created_at"], name="post_published_created_idx"
            ),
            # Posts on an app page: WHERE app_id = ? ORDER BY created_at DESC.
            models.Index(
                fields=["app", "-created_at", "-id"], name="post_app_created_idx"
            ),
            # Admin list, newest first, and its date filter.
            models.Index(fields=["-created_at"], name="post_created_idx"),
            # Admin search by title prefix ("^title": UPPER(title) LIKE 'AB%').
            models.Index(
                OpClass(Upper("title"), name="text_pattern_ops"),
                name="post_title_prefix_idx",
            ),
            # Admin search by any part of the title.
            GinIndex(
                OpClass(Upper("title"), name="gin_trgm_ops"),
                name="post_title_trgm_idx",
            ),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("post_list", args=[self.app_id]) if self.app_id else "/"
