"""Reads reused by the accounts pages."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.adapter import get_adapter as get_social_adapter
from allauth.socialaccount.models import SocialAccount
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db.models import CharField, Exists, F, Func, OuterRef, QuerySet, Value
from django.db.models.functions import Coalesce, NullIf
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from procrastinate.contrib.django.models import ProcrastinateJob

from accounts.models import PUBLIC_NAME_FALLBACK, MagicLink, User
from core.models import AuditLog


def public_name_sql(prefix: str = "") -> Coalesce:
    """:attr:`User.public_name` computed by the database, for lists that
    show it per row without loading users: ``prefix`` is the path to the user
    ("owner__"). Same rule: the name, else first and last name, else the
    fallback; never the email."""

    def column(name: str) -> NullIf:
        return NullIf(F(f"{prefix}{name}"), Value(""))

    full = Func(
        Value(" "),
        column("first_name"),
        column("last_name"),
        function="CONCAT_WS",
        output_field=CharField(),
    )
    return Coalesce(
        column("name"),
        NullIf(full, Value("")),
        Value(PUBLIC_NAME_FALLBACK),
        output_field=CharField(),
    )


def user_sessions_active(*, user) -> QuerySet[UserSession]:
    """The user's sessions that still exist and have not expired, newest
    activity first, in one query (allauth's purge_and_list checks each one)."""
    live = Session.objects.filter(
        session_key=OuterRef("session_key"), expire_date__gt=timezone.now()
    )
    return (
        UserSession.objects.filter(user_id=user.pk)
        .filter(Exists(live))
        .order_by("-last_seen_at")
    )


def social_accounts_for(*, user) -> QuerySet[SocialAccount]:
    return SocialAccount.objects.filter(user_id=user.pk).order_by("provider", "pk")


def oauth_providers(*, request: HttpRequest) -> list:
    """Providers with credentials (settings or SocialApp rows); others hidden."""
    return get_social_adapter().list_providers(request)


def tier_effective(user, *, now=None) -> str:
    """The tier the user may use now.

    A past_due subscription keeps its tier only until the end of the last
    period actually paid for (``paid_until``, moved by invoice.paid), as
    Stripe's dunning expects; a renewal while past_due extends nothing. After
    that the user is treated as FREE until a payment (or the subscription's
    deletion) arrives. :func:`tier_effective_sql` is the same rule inside an
    UPDATE.
    """
    now = now or timezone.now()
    if user.subscription_status == "past_due" and (
        user.paid_until is None or user.paid_until <= now
    ):
        return User.Tier.FREE
    return user.tier


def tier_effective_sql(*, now) -> tuple[str, list]:
    """:func:`tier_effective` as a SQL expression over the user's row."""
    return (
        "(CASE WHEN subscription_status = 'past_due'"
        " AND (paid_until IS NULL OR paid_until <= %s)"
        " THEN %s ELSE tier END)",
        [now, User.Tier.FREE],
    )


# --- keyword usage: the counters on the user row ----------------------------------

# The meter turns amber and offers an upgrade when this share of the monthly
# quota is used.
NEAR_LIMIT_RATIO = 0.8


def next_reset_at(now: dt.datetime) -> dt.datetime:
    """Start of the next calendar month (UTC) after ``now``."""
    now = now.astimezone(dt.UTC)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return dt.datetime(year, month, 1, tzinfo=dt.UTC)


def upgrades_available() -> bool:
    """Whether a paid plan can be bought on this site: a Stripe API key and
    both prices are set. The one rule: ``billing.stripe_api.billing_configured``
    asks this too. Without it the meter and the quota message offer no upgrade
    (it would lead to a page that cannot sell one) and say when the quota
    resets instead."""
    return bool(
        settings.STRIPE_SECRET_KEY
        and settings.STRIPE_PRICE_PRO
        and settings.STRIPE_PRICE_ENTERPRISE
    )


def quota_limit(tier: str) -> int | None:
    """Keywords a month for ``tier`` (None: unlimited), from ``KEYWORD_QUOTAS``."""
    quotas = settings.KEYWORD_QUOTAS
    return quotas.get(tier, quotas.get("FREE"))


@dataclass(frozen=True)
class Usage:
    used: int
    limit: int | None  # None: unlimited
    reset_at: dt.datetime
    upgrade_url: str
    near_limit: bool
    # A paid plan can be bought (upgrades_available()): links to upgrade only then.
    upgrades_available: bool = False

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    @property
    def at_limit(self) -> bool:
        return self.limit is not None and self.used >= self.limit

    def as_json(self) -> dict:
        return {
            "used": self.used,
            "limit": self.limit,
            "remaining": self.remaining,
            "reset_at": self.reset_at.isoformat(),
        }


def usage_for(user, *, now: dt.datetime | None = None) -> Usage:
    """The user's keyword usage this month: the one rule every meter renders
    (``templates/_usage_meter.html``) and the quota check agrees with.

    The limit is the *effective* tier's (:func:`tier_effective`), and a month
    whose reset date has passed counts as zero even before the next search or
    ``reset_monthly_usage`` writes the reset.
    """
    now = now or timezone.now()
    reset_at = user.monthly_reset_at
    used = user.keyword_searches_this_month
    if reset_at is None or reset_at <= now:
        used = 0 if reset_at is not None else used
        reset_at = next_reset_at(now)
    limit = quota_limit(tier_effective(user, now=now))
    return Usage(
        used=used,
        limit=limit,
        reset_at=reset_at,
        upgrade_url=reverse("billing"),
        near_limit=limit is not None and used >= limit * NEAR_LIMIT_RATIO,
        upgrades_available=upgrades_available(),
    )


# --- "Download my data": the archive's files and accounts' own sections -----------

# How long an archive can be downloaded; data_exports_prune deletes it after.
DATA_EXPORT_TTL = dt.timedelta(days=7)
_DATA_EXPORT_SUFFIX = ".json"


def data_export_dir() -> Path:
    """Where archives are written: ``DATA_EXPORT_DIR`` or ``var/exports``, one
    directory per user. Private: nothing serves it except the download view,
    which only opens files in the signed-in user's own directory."""
    return Path(settings.DATA_EXPORT_DIR)


def _path_safe(value: str) -> bool:
    # Ids (core.ids) are short ASCII letters and digits: anything else (dots,
    # slashes) never reaches a path.
    return 0 < len(value) <= 64 and value.isascii() and value.isalnum()


def data_export_path(*, user_id: str, export_id: str) -> Path | None:
    """The file of archive ``export_id`` of ``user_id``; None for a malformed id."""
    user_id, export_id = str(user_id), str(export_id)
    if not (_path_safe(user_id) and _path_safe(export_id)):
        return None
    return data_export_dir() / user_id / f"{export_id}{_DATA_EXPORT_SUFFIX}"


def data_export_lock(user_id: str) -> str:
    """The job queue's queueing lock: one archive waits per user at a time."""
    return f"accounts.data_export:{user_id}"


@dataclass(frozen=True)
class DataExport:
    id: str
    path: Path
    created_at: dt.datetime
    size: int

    @property
    def expires_at(self) -> dt.datetime:
        return self.created_at + DATA_EXPORT_TTL


def _data_export_from(path: Path) -> DataExport | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    created_at = dt.datetime.fromtimestamp(stat.st_mtime, tz=dt.UTC)
    return DataExport(
        id=path.name.removesuffix(_DATA_EXPORT_SUFFIX),
        path=path,
        created_at=created_at,
        size=stat.st_size,
    )


def data_export_get(*, user, export_id: str, now=None) -> DataExport | None:
    """``user``'s archive ``export_id`` while it may be downloaded; None when it
    is unknown, expired, or someone else's (it is not in ``user``'s directory)."""
    path = data_export_path(user_id=user.pk, export_id=export_id)
    export = _data_export_from(path) if path is not None else None
    if export is None or export.expires_at <= (now or timezone.now()):
        return None
    return export


def data_exports_of(*, user, now=None) -> list[DataExport]:
    """``user``'s archives that may still be downloaded, newest first."""
    now = now or timezone.now()
    folder = data_export_dir() / str(user.pk)
    if not _path_safe(str(user.pk)) or not folder.is_dir():
        return []
    exports = [
        export
        for path in folder.glob(f"*{_DATA_EXPORT_SUFFIX}")
        if (export := _data_export_from(path)) is not None and export.expires_at > now
    ]
    return sorted(exports, key=lambda export: export.created_at, reverse=True)


def data_export_pending(*, user) -> bool:
    """Whether an archive of ``user``'s is waiting for (or being built by) a
    worker: its job holds the user's queueing lock."""
    return ProcrastinateJob.objects.filter(
        queueing_lock=data_export_lock(user.pk), status__in=("todo", "doing")
    ).exists()


def user_data_export_sections(*, user) -> dict[str, object]:
    """accounts' part of the archive: the profile, sign-in methods, sessions,
    sign-in links and the audit rows about the user. Never a secret (tokens,
    session keys, link hashes, second-factor seeds) and nothing of another
    user: audit rows name who acted only as "you", "staff" or "system"."""
    profile = {
        field: getattr(user, field)
        for field in (
            "id",
            "email",
            "name",
            "first_name",
            "last_name",
            "image",
            "email_verified_at",
            "role",
            "is_active",
            "tier",
            "keyword_searches_this_month",
            "keyword_searches_total",
            "monthly_reset_at",
            "trial_ends_at",
            "last_login",
            "created_at",
            "updated_at",
        )
    }
    profile["public_name"] = user.public_name
    audit = (
        AuditLog.objects.filter(target_type=User._meta.label, target_id=str(user.pk))
        .order_by("created_at", "id")
        .values(
            "created_at", "action", "actor_id", "changes", "ip_address", "user_agent"
        )
    )
    return {
        "profile": profile,
        "email_addresses": list(
            EmailAddress.objects.filter(user_id=user.pk)
            .order_by("email")
            .values("email", "verified", "primary")
        ),
        "connected_accounts": list(
            SocialAccount.objects.filter(user_id=user.pk)
            .order_by("provider", "pk")
            .values("provider", "uid", "date_joined", "last_login")
        ),
        "two_factor_methods": list(
            Authenticator.objects.filter(user_id=user.pk)
            .order_by("created_at")
            .values("type", "created_at", "last_used_at")
        ),
        "sessions": list(
            UserSession.objects.filter(user_id=user.pk)
            .order_by("-last_seen_at")
            .values("ip", "user_agent", "created_at", "last_seen_at")
        ),
        "sign_in_links": list(
            MagicLink.objects.filter(user_id=user.pk)
            .order_by("created_at")
            .values("email", "created_at", "expires_at", "used_at", "requested_ip")
        ),
        "audit_log": (_audit_row(row, user) for row in audit.iterator(chunk_size=2000)),
    }


def _audit_row(row: dict, user) -> dict:
    by = "system" if row["actor_id"] is None else "staff"
    if row["actor_id"] == user.pk:
        by = "you"
    item = {"at": row["created_at"], "action": row["action"], "by": by}
    item["changes"] = row["changes"]
    if by != "staff":
        # A staff member's own address and browser are theirs, not the user's.
        item["ip_address"] = row["ip_address"]
        item["user_agent"] = row["user_agent"]
    return item
