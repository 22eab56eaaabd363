"""Stripe-shaped test data: events, subscriptions, signatures, WebhookEvent rows."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time

import factory

from billing.models import WebhookEvent

WEBHOOK_SECRET = "whsec_test_0123456789abcdef"
PRICE_PRO = "price_test_pro"
PRICE_ENTERPRISE = "price_test_enterprise"
SECRET_KEY = "sk_test_local"

_event_ids = itertools.count(1)


def stripe_signature(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp=None):
    """The ``Stripe-Signature`` header exactly as Stripe documents it:
    ``t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    signed = f"{t}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def stripe_event(event_type: str, obj: dict, *, created=None, event_id=None) -> dict:
    return {
        "id": event_id or f"evt_test_{next(_event_ids):06d}",
        "object": "event",
        "api_version": "2025-03-31.basil",
        "type": event_type,
        "created": int(time.time()) if created is None else int(created),
        "livemode": False,
        "pending_webhooks": 1,
        "data": {"object": obj},
    }


def subscription_object(
    *,
    status="active",
    customer="cus_test",
    subscription_id="sub_test",
    price=PRICE_PRO,
    period_end=1_900_000_000,
    user_id=None,
    ended_at=None,
) -> dict:
    # API 2025-03-31: the period lives on the subscription item.
    return {
        "id": subscription_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "ended_at": ended_at,
        "canceled_at": ended_at,
        "metadata": {"user_id": user_id} if user_id else {},
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_test",
                    "object": "subscription_item",
                    "current_period_end": period_end,
                    "price": {"id": price, "object": "price"},
                }
            ],
        },
    }


def invoice_object(*, customer="cus_test", subscription_id="sub_test") -> dict:
    return {
        "id": "in_test",
        "object": "invoice",
        "customer": customer,
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": subscription_id, "metadata": {}},
        },
    }


def checkout_session_object(
    *, user_id, customer="cus_test", subscription_id="sub_test"
):
    return {
        "id": "cs_test_1",
        "object": "checkout.session",
        "mode": "subscription",
        "client_reference_id": user_id,
        "customer": customer,
        "subscription": subscription_id,
    }


def deliver(client, event, *, secret: str = WEBHOOK_SECRET, **headers):
    """POST an event to the webhook signed like Stripe does; return the response."""
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    return client.post(
        "/billing/webhook/",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": stripe_signature(body, secret=secret), **headers},
    )


class WebhookEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEvent

    id = factory.Sequence(lambda n: f"evt_factory_{n:06d}")
    type = "customer.subscription.updated"
    status = WebhookEvent.Status.PROCESSED
    attempts = 1
    payload = factory.LazyAttribute(
        lambda o: stripe_event(o.type, {"id": "sub_x"}, event_id=o.id)
    )
