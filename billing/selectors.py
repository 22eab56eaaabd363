"""Billing reads: the plans on offer and a user's plan as the pages show it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import BILLING_STATE_FIELDS, SUBSCRIBED_STATUSES
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
class Notice:
    """One sentence about the subscription, in a customer's words; the template
    renders ``text`` then ``date`` (if any), then the optional link."""

    tone: str  # app.css badge class: "ok", "warn", "error" or ""
    text: str
    date: dt.datetime | None = None
    after: str = ""
    link_url: str = ""
    link_label: str = ""


@dataclass(frozen=True)
class BillingOverview:
    configured: bool
    tier: str
    tier_label: str
    status: str
    status_label: str
    status_badge: str  # app.css badge class
    notices: list[Notice]
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
_MANAGE = "under “Manage billing”."


def billing_notices(user, *, now: dt.datetime | None = None) -> list[Notice]:
    """The real situation of the user's subscription, one sentence each: renews
    on, cancels on (and how to resume), payment failed and access until, a
    payment needing the customer's action, incomplete, trial ends on."""
    now = now or timezone.now()
    status = user.subscription_status
    notices = []
    if user.billing_action_url:
        notices.append(
            Notice(
                "warn",
                "Your bank asks you to confirm your latest payment.",
                link_url=user.billing_action_url,
                link_label="Confirm the payment on Stripe",
            )
        )
    if status == "canceled":
        notices.append(
            Notice("", "Your subscription ended on", user.subscription_ends_at)
        )
    elif status == "past_due":
        if user.paid_until and user.paid_until > now:
            notices.append(
                Notice(
                    "warn",
                    "Payment failed. You keep your plan until",
                    user.paid_until,
                    f"; update your card {_MANAGE}",
                )
            )
        else:
            notices.append(
                Notice(
                    "error",
                    "Payment failed and the paid period is over: you are on the "
                    "Free plan until a payment goes through. Update your card "
                    + _MANAGE,
                )
            )
    elif status == "incomplete":
        notices.append(
            Notice(
                "warn",
                "Your subscription is not active yet: its first payment has not "
                f"gone through. Finish it {_MANAGE}",
            )
        )
    elif status == "unpaid":
        notices.append(
            Notice(
                "error",
                f"Payments failed: the plan is suspended. Update your card {_MANAGE}",
            )
        )
    elif status == "paused":
        notices.append(
            Notice("warn", f"Your subscription is paused. Resume it {_MANAGE}")
        )
    if status == "trialing" and user.trial_ends_at:
        notices.append(Notice("ok", "Your trial ends on", user.trial_ends_at))
    if status in ("active", "trialing"):
        if user.subscription_cancels_at:
            notices.append(
                Notice(
                    "warn",
                    "Your plan cancels on",
                    user.subscription_cancels_at,
                    f" and will not renew. Changed your mind? Resume it {_MANAGE}",
                )
            )
        elif user.subscription_ends_at:
            notices.append(Notice("ok", "Renews on", user.subscription_ends_at))
    return notices


def billing_overview(user) -> BillingOverview:
    """What the billing page shows; reads only the user row (no queries)."""
    User = get_user_model()
    tier = tier_effective(user)
    status = user.subscription_status
    return BillingOverview(
        configured=stripe_api.billing_configured(),
        tier=tier,
        tier_label=User.Tier(tier).label,
        status=status,
        status_label=status.replace("_", " ").capitalize(),
        status_badge=_STATUS_BADGES.get(status, "error"),
        notices=billing_notices(user),
        has_subscription=bool(user.stripe_subscription_id)
        and status in SUBSCRIBED_STATUSES,
        can_manage=bool(user.stripe_customer_id),
        keyword_quota=quota_limit(tier),
        usage=usage_for(user),
    )


# --- the user's data archive ("Download my data", accounts.hooks) ---------------------


def user_export_billing(*, user) -> dict:
    """The user's plan and Stripe subscription state as this site keeps it
    (Stripe keeps the cards and invoices; the customer portal shows them)."""
    state = {field: getattr(user, field) for field in BILLING_STATE_FIELDS}
    state["tier_effective"] = tier_effective(user)
    return state
