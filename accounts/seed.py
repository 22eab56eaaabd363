"""Users for `manage.py seed`: the demo users (idempotent by email) and the
volume users of ``--users N`` (every tier: about 70 % Free, 20 % Pro, 10 %
Enterprise).

The volume seeder also decides who owns the other apps' volume rows: the users
it has just added or, with ``--users 0``, users already in the database.
"""

from __future__ import annotations

import datetime as dt
import random

from allauth.account.models import EmailAddress
from django.utils import timezone

from accounts.models import User
from core.ids import new_id
from core.seeding import (
    ADJECTIVES,
    HISTORY_DAYS,
    NOUNS,
    SeedContext,
    copy_batches,
    seeder_register,
)

# Existing users that volume rows may be attached to when --users is 0.
EXISTING_USERS_LIMIT = 200_000
# Volume users' addresses end in @VOLUME_EMAIL_DOMAIN, so demo steps can tell
# them from real and demo users.
VOLUME_EMAIL_DOMAIN = "volume.example.com"
TIERS = ("FREE",) * 7 + ("PRO",) * 2 + ("ENTERPRISE",)

DEMO_USERS = [
    # email, name, tier, searches this month, trial days left
    ("demo-free@example.com", "Fran Free", User.Tier.FREE, 120, None),
    ("demo-free-busy@example.com", "Boris Busy", User.Tier.FREE, 280, None),
    ("demo-trial@example.com", "Tina Trial", User.Tier.PRO, 40, 10),
    ("demo-pro@example.com", "Priya Pro", User.Tier.PRO, 640, None),
    (
        "demo-enterprise@example.com",
        "Erik Enterprise",
        User.Tier.ENTERPRISE,
        4200,
        None,
    ),
]


def seed_demo(*, admin, stdout=None) -> dict[str, int]:
    now = timezone.now()
    next_month = (now.replace(day=1) + dt.timedelta(days=32)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    created = 0
    for email, name, tier, used, trial_days in DEMO_USERS:
        if User.objects.filter(email__iexact=email).exists():
            continue
        user = User.objects.create_user(
            email,
            name=name,
            tier=tier,
            keyword_searches_this_month=used,
            keyword_searches_total=used * 3,
            monthly_reset_at=next_month,
            trial_ends_at=now + dt.timedelta(days=trial_days) if trial_days else None,
            email_verified_at=now,
        )
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        created += 1
    if admin is not None and admin.email_verified_at is None:
        # The staff account is created from ADMIN_EMAIL, an address the operator
        # chose: treat it as verified so a magic link to it is a way in.
        admin.email_verified_at = now
        admin.save(update_fields=["email_verified_at", "updated_at"])
        EmailAddress.objects.get_or_create(
            user=admin, email=admin.email, defaults={"verified": True, "primary": True}
        )
    if stdout is not None:
        stdout.write(f"accounts: {created} demo users")
    return {"demo users": created}


# ---------------------------------------------------------------------------
# Volume

USER_COLUMNS = (
    "id",
    "password",
    "last_login",
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
    "stripe_customer_id",
    "stripe_subscription_id",
    "subscription_status",
    "subscription_plan",
    "subscription_ends_at",
    "subscription_updated_at",
    "paid_until",
    "subscription_cancels_at",
    "billing_action_url",
    "created_at",
    "updated_at",
)


def user_rows(n: int, *, rng: random.Random, now: dt.datetime) -> list[tuple]:
    """``n`` users in ``USER_COLUMNS`` order, created over the last HISTORY_DAYS;
    paid tiers carry an active Stripe subscription."""
    rows = []
    next_month = (now.replace(day=1) + dt.timedelta(days=32)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    for _ in range(n):
        uid = new_id()
        tier = rng.choice(TIERS)
        created = now - dt.timedelta(seconds=rng.randrange(HISTORY_DAYS * 86400))
        paid = tier != "FREE"
        first = rng.choice(ADJECTIVES).title()
        last = rng.choice(NOUNS).title()
        used = rng.randrange(300) if tier == "FREE" else rng.randrange(1000)
        rows.append(
            (
                uid,
                "!volume",  # unusable password: nobody signs in with one
                None,
                f"{uid}@{VOLUME_EMAIL_DOMAIN}",
                f"{first} {last}",
                first,
                last,
                "",
                created,
                "USER",
                True,
                tier,
                used,
                used + rng.randrange(5000),
                next_month,
                None,
                f"cus_v{uid}" if paid else "",
                f"sub_v{uid}" if paid else "",
                "active" if paid else "",
                tier.lower() if paid else "",
                next_month if paid else None,
                created if paid else None,
                next_month if paid else None,  # an active subscription is paid
                None,
                "",
                created,
                created,
            )
        )
    return rows


def existing_user_ids(limit: int = EXISTING_USERS_LIMIT) -> list[str]:
    """Active users, oldest first: the owners of volume rows when a run adds
    no users of its own."""
    return list(
        User.objects.filter(is_active=True)
        .order_by("created_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def seed_volume(context: SeedContext) -> None:
    """Add ``requested["users"]`` users and hand the owners on in
    ``context.owners``."""
    new_users: list[str] = []

    def user_batch(n: int) -> list[tuple]:
        rows = user_rows(n, rng=context.rng, now=context.now)
        new_users.extend(r[0] for r in rows)
        return rows

    with context.timed("users"):
        context.result.counts["users"] = copy_batches(
            context,
            label="users",
            total=context.requested.get("users", 0),
            make_batch=user_batch,
            table=User._meta.db_table,
            columns=USER_COLUMNS,
        )
    context.owners = new_users or existing_user_ids()


seeder_register(
    name="accounts",
    order=10,
    demo=seed_demo,
    volume=seed_volume,
    copies=[(User, USER_COLUMNS)],
)
