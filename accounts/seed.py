"""Demo users for `manage.py seed` (idempotent by email)."""

from __future__ import annotations

from datetime import timedelta

from allauth.account.models import EmailAddress
from django.utils import timezone

from accounts.models import User

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
    next_month = (now.replace(day=1) + timedelta(days=32)).replace(
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
            trial_ends_at=now + timedelta(days=trial_days) if trial_days else None,
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
