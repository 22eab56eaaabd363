"""Billing reads: the plans on offer and a user's plan as the pages show it."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model

from accounts.models import SUBSCRIBED_STATUSES
from accounts.selectors import Usage, quota_limit, tier_effective, usage_for
from billing import stripe_api


@dataclass(frozen=True)
class Plan:
    tier: str
    name: str
    price_text: str
    keyword_quota: int | None  # None = unlimited
    purchasable: bool


def plans() -> list[Plan]:
    """The three tiers with their monthly keyword quota (``KEYWORD_QUOTAS``)."""
    User = get_user_model()
    quotas = settings.KEYWORD_QUOTAS
    return [
        Plan(User.Tier.FREE, "Free", "$0", quotas.get(User.Tier.FREE), False),
        Plan(
            User.Tier.PRO,
            "Pro",
            settings.BILLING_PRICE_PRO_TEXT,
            quotas.get(User.Tier.PRO),
            True,
        ),
        Plan(
            User.Tier.ENTERPRISE,
            "Enterprise",
            settings.BILLING_PRICE_ENTERPRISE_TEXT,
            quotas.get(User.Tier.ENTERPRISE),
            True,
        ),
    ]


@dataclass(frozen=True)
class BillingOverview:
    configured: bool
    tier: str
    tier_label: str
    status: str
    status_label: str
    status_badge: str  # app.css badge class
    ends_at: object
    ends_label: str
    has_subscription: bool
    can_manage: bool
    keyword_quota: int | None
    usage: Usage


_STATUS_BADGES = {
    "active": "ok",
    "trialing": "ok",
    "past_due": "warn",
    "incomplete": "warn",
    "canceled": "",
}


def billing_overview(user) -> BillingOverview:
    """What the billing page shows; reads only the user row (no queries)."""
    User = get_user_model()
    tier = tier_effective(user)
    status = user.subscription_status
    if status == "canceled":
        ends_label = "Ended"
    elif status == "past_due":
        ends_label = "Access until"
    elif user.subscription_ends_at:
        ends_label = "Current period ends"
    else:
        ends_label = ""
    return BillingOverview(
        configured=stripe_api.billing_configured(),
        tier=tier,
        tier_label=User.Tier(tier).label,
        status=status,
        status_label=status.replace("_", " ").capitalize(),
        status_badge=_STATUS_BADGES.get(status, "error"),
        ends_at=user.subscription_ends_at,
        ends_label=ends_label,
        has_subscription=bool(user.stripe_subscription_id)
        and status in SUBSCRIBED_STATUSES,
        can_manage=bool(user.stripe_customer_id),
        keyword_quota=quota_limit(tier),
        usage=usage_for(user),
    )
