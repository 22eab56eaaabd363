from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.validators import EmailValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower, Upper
from django.urls import reverse
from django.utils import timezone

from core.ids import IdField

# The shape the database accepts (``user_email_valid``). Django's EmailValidator
# also lets through dot-less domains ("a@localhost", "a@[::1]"): forms that take
# an address for a new account check this too, so such an address is a form
# error instead of an IntegrityError or ValidationError when the account is made.
EMAIL_SHAPE_REGEX = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
validate_email_shape = RegexValidator(
    EMAIL_SHAPE_REGEX, "Enter a valid email address.", code="invalid"
)


class UserManager(BaseUserManager):
    """Email is the identity; nobody has a password (magic links and OAuth only)."""

    use_in_migrations = True

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)

    def create_user(self, email, password=None, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).strip(), **extra_fields)
        # Passwords are never used to sign in; keep Django's column unusable.
        user.set_unusable_password()
        user.full_clean(exclude=["password"], validate_unique=False)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("role", User.Role.ADMIN)
        return self.create_user(email, **extra_fields)


# Stripe subscription statuses under which a subscription still bills (or will):
# a second Checkout would charge twice, and the account cannot be deleted
# while Stripe keeps charging a card nobody could manage any more.
SUBSCRIBED_STATUSES = frozenset(
    {"active", "trialing", "past_due", "unpaid", "incomplete", "paused"}
)


# What pages show for a user who has given no name (User.public_name).
PUBLIC_NAME_FALLBACK = "A Launchpad user"
# The columns User.public_name reads: a query that loads owners or authors only
# to name them selects these (never the email).
PUBLIC_NAME_FIELDS = ("name", "first_name", "last_name")
# The plan and Stripe subscription state billing keeps on a user, in the model's
# field order: what a webhook loads and writes (billing.services), what the
# data archive exports (billing.selectors) and what staff may correct.
BILLING_STATE_FIELDS = (
    "tier",
    "trial_ends_at",
    "stripe_customer_id",
    "stripe_subscription_id",
    "subscription_status",
    "subscription_plan",
    "subscription_ends_at",
    "subscription_updated_at",
    "paid_until",
    "subscription_cancels_at",
    "billing_action_url",
)


class User(AbstractBaseUser):
    class Role(models.TextChoices):
        USER = "USER", "User"
        ADMIN = "ADMIN", "Admin"

    class Tier(models.TextChoices):
        FREE = "FREE", "Free"
        PRO = "PRO", "Pro"
        ENTERPRISE = "ENTERPRISE", "Enterprise"

    id = IdField()
    email = models.EmailField(max_length=255, validators=[EmailValidator()])
    name = models.CharField(max_length=255, blank=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    image = models.URLField(max_length=2048, blank=True)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.USER)
    is_active = models.BooleanField(default=True)

    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.FREE)
    keyword_searches_this_month = models.PositiveIntegerField(default=0)
    keyword_searches_total = models.PositiveBigIntegerField(default=0)
    monthly_reset_at = models.DateTimeField(null=True, blank=True)
    trial_ends_at = models.DateTimeField(null=True, blank=True)

    stripe_customer_id = models.CharField(max_length=255, blank=True)
    stripe_subscription_id = models.CharField(max_length=255, blank=True)
    subscription_status = models.CharField(max_length=32, blank=True)
    subscription_plan = models.CharField(max_length=32, blank=True)
    subscription_ends_at = models.DateTimeField(null=True, blank=True)
    # Stripe event time of the last subscription change applied, so an older
    # event delivered late never overwrites newer state.
    subscription_updated_at = models.DateTimeField(null=True, blank=True)
    # End of the last period actually paid for (invoice.paid, or the period of
    # an active subscription): a past_due subscription keeps its tier until
    # then, and a renewal while past_due extends nothing (tier_effective).
    paid_until = models.DateTimeField(null=True, blank=True)
    # A scheduled cancellation (cancel_at_period_end or cancel_at): the plan
    # ends then instead of renewing.
    subscription_cancels_at = models.DateTimeField(null=True, blank=True)
    # Stripe's hosted invoice page while a payment needs the customer's action
    # (3-D Secure and the like); cleared when the invoice is paid.
    billing_action_url = models.URLField(max_length=2048, blank=True)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        constraints = [
            # Sign-in looks users up by email whatever its case.
            models.UniqueConstraint(
                Lower("email"),
                name="user_email_ci_unique",
                violation_error_message="A user with this email already exists.",
            ),
            models.CheckConstraint(
                condition=models.Q(email__regex=EMAIL_SHAPE_REGEX),
                name="user_email_valid",
                violation_error_message="Enter a valid email address.",
            ),
            models.UniqueConstraint(
                fields=["stripe_customer_id"],
                condition=~models.Q(stripe_customer_id=""),
                name="user_stripe_customer_unique",
            ),
            models.UniqueConstraint(
                fields=["stripe_subscription_id"],
                condition=~models.Q(stripe_subscription_id=""),
                name="user_stripe_subscription_unique",
            ),
        ]
        indexes = [
            # Admin and reports list newest users first.
            models.Index(fields=["created_at"], name="user_created_at_idx"),
            # Admin search by email prefix ("^email": UPPER(email) LIKE 'ANN%').
            models.Index(
                OpClass(Upper("email"), name="text_pattern_ops"),
                name="user_email_prefix_idx",
            ),
            # Admin search by name prefix ("^name": UPPER(name) LIKE 'ANN%').
            models.Index(
                OpClass(Upper("name"), name="text_pattern_ops"),
                name="user_name_prefix_idx",
            ),
            # Admin filters, newest first: WHERE role|tier|is_active = ?
            # ORDER BY created_at DESC.
            models.Index(fields=["role", "-created_at"], name="user_role_created_idx"),
            models.Index(fields=["tier", "-created_at"], name="user_tier_created_idx"),
            models.Index(
                fields=["is_active", "-created_at"], name="user_active_created_idx"
            ),
            # Admin search by any part of the email or names (plain search
            # fields: UPPER(col) LIKE '%TERM%', what icontains compiles to).
            GinIndex(
                OpClass(Upper("email"), name="gin_trgm_ops"),
                name="user_email_trgm_idx",
            ),
            GinIndex(
                OpClass(Upper("name"), name="gin_trgm_ops"),
                name="user_name_trgm_idx",
            ),
            GinIndex(
                OpClass(Upper("first_name"), name="gin_trgm_ops"),
                name="user_first_name_trgm_idx",
            ),
            GinIndex(
                OpClass(Upper("last_name"), name="gin_trgm_ops"),
                name="user_last_name_trgm_idx",
            ),
        ]

    def __str__(self):
        return self.email

    def get_absolute_url(self):
        return reverse("admin:accounts_user_change", args=[self.pk])

    def clean(self):
        super().clean()
        self.email = (self.email or "").strip()

    @property
    def is_staff(self) -> bool:
        """ADMIN users may enter the Django admin; nobody else may."""
        return self.is_active and self.role == self.Role.ADMIN

    @property
    def is_superuser(self) -> bool:
        return self.is_staff

    @property
    def has_chosen_name(self) -> bool:
        """Whether the user gave a name (display name, or first or last name)."""
        return bool(self.name or self.first_name or self.last_name)

    @property
    def public_name(self) -> str:
        """How other people see this user on any page: the name they gave
        (``name``, else first and last name), else a neutral fallback. Never
        the email address nor anything derived from it: an address is shown
        only to its owner and to staff. :data:`PUBLIC_NAME_FIELDS` are the
        columns it reads (for ``only()``)."""
        full = " ".join(part for part in (self.first_name, self.last_name) if part)
        return self.name or full or PUBLIC_NAME_FALLBACK

    @property
    def display_name(self) -> str:
        """The signed-in user's own label (the menu): their public name, or
        their email while they have none. Pages about someone else use
        :attr:`public_name`."""
        return self.public_name if self.has_chosen_name else self.email

    def has_perm(self, perm, obj=None) -> bool:
        return self.is_staff

    def has_perms(self, perm_list, obj=None) -> bool:
        return self.is_staff

    def has_module_perms(self, app_label) -> bool:
        return self.is_staff


class MagicLink(models.Model):
    """A single-use sign-in link sent by email (seeds 000 and 001).

    Only the SHA-256 of the link's secret is stored: a database leak gives no
    working links. ``user`` is empty when the address had no account yet; the
    account is created when the link is redeemed.
    """

    id = IdField()
    email = models.EmailField(max_length=255)
    user = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="magic_links",
    )
    token_hash = models.CharField(max_length=64, editable=False)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    requested_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            # Redemption looks the link up by the hash of the secret in the URL.
            models.UniqueConstraint(
                fields=["token_hash"], name="magiclink_token_hash_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")),
                name="magiclink_expires_after_created",
            ),
        ]
        indexes = [
            # cleanup_expired deletes links past their expiry.
            models.Index(fields=["expires_at"], name="magiclink_expires_idx"),
            # Admin list, newest first.
            models.Index(fields=["-created_at"], name="magiclink_created_idx"),
            # Admin filter on the use date (today, past 7 days, …).
            models.Index(fields=["used_at"], name="magiclink_used_idx"),
            # Admin search by email prefix ("^email": UPPER(email) LIKE 'ANN%').
            models.Index(
                OpClass(Upper("email"), name="text_pattern_ops"),
                name="magiclink_email_prefix_idx",
            ),
            # Admin search by any part of the email (UPPER(email) LIKE '%X%').
            GinIndex(
                OpClass(Upper("email"), name="gin_trgm_ops"),
                name="magiclink_email_trgm_idx",
            ),
        ]

    def __str__(self):
        return f"Sign-in link for {self.email}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()
