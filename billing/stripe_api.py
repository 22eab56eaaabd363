"""The Stripe integration: every call to Stripe's SDK lives here.

Settings are read on each call (never at import time) so tests and deployments can
point ``STRIPE_API_BASE`` at another server.
"""

from __future__ import annotations

import json
import time

import stripe
from django.conf import settings

from accounts.selectors import upgrades_available


class WebhookVerificationError(Exception):
    """A delivery that cannot be proven to come from Stripe, or is not an event."""


def billing_configured() -> bool:
    """True when Checkout and the portal can be used (API key and both prices).
    The rule lives in accounts, where the usage meter needs it too."""
    return upgrades_available()


def stripe_client() -> stripe.StripeClient:
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE},
        http_client=stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT),
        # A user is waiting on the page: one retry on a network error, no more.
        max_network_retries=1,
    )


def checkout_session_create(**params) -> str:
    """Create a Checkout session with ``params``; return its hosted URL."""
    session = stripe_client().v1.checkout.sessions.create(params=params)
    return session.url


def portal_session_create(*, customer: str, return_url: str) -> str:
    """Create a customer-portal session; return its URL."""
    session = stripe_client().v1.billing_portal.sessions.create(
        params={"customer": customer, "return_url": return_url}
    )
    return session.url


def customer_create(*, email: str, user_id: str) -> str:
    """Create a Stripe customer for a user; return its id."""
    customer = stripe_client().v1.customers.create(
        params={"email": email, "metadata": {"user_id": user_id}}
    )
    return customer.id


def _signature_timestamp(sig_header: str) -> int | None:
    for part in sig_header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def webhook_payload_verify(*, payload: bytes, sig_header: str) -> dict:
    """Check ``Stripe-Signature`` over the raw body and return the event as a dict.

    The signature is checked on the raw bytes **before anything is parsed**
    (the official SDK's HMAC-SHA256 with the endpoint secret), so a stranger's
    body, however deep or large, costs one HMAC. The SDK only refuses
    timestamps older than its tolerance (300 s); one dated further in the
    future is refused here too. Raises WebhookVerificationError on any
    failure, including a missing secret, header or event id.
    """
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise WebhookVerificationError("STRIPE_WEBHOOK_SECRET is not set.")
    if not sig_header:
        raise WebhookVerificationError("The Stripe-Signature header is missing.")
    try:
        body = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookVerificationError("The body is not UTF-8.") from exc
    tolerance = stripe.Webhook.DEFAULT_TOLERANCE
    try:
        # The SDK's own check (what Webhook.construct_event runs before building
        # an Event object this code never uses).
        stripe.WebhookSignature.verify_header(body, sig_header, secret, tolerance)
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise WebhookVerificationError(str(exc)) from exc
    timestamp = _signature_timestamp(sig_header)
    if timestamp is None or timestamp > time.time() + tolerance:
        raise WebhookVerificationError("Timestamp outside the tolerance zone.")
    try:
        event = json.loads(body)
    except (ValueError, RecursionError) as exc:  # not JSON, or nested too deep
        raise WebhookVerificationError("The body is not a JSON event.") from exc
    if not isinstance(event, dict):
        raise WebhookVerificationError("The body is not a JSON object.")
    if "\\u0000" in body:
        # PostgreSQL's jsonb cannot store NUL characters.
        raise WebhookVerificationError("The event contains a NUL character.")
    event_id, event_type = event.get("id"), event.get("type")
    if not (isinstance(event_id, str) and event_id and len(event_id) <= 255):
        raise WebhookVerificationError("The event has no valid id.")
    if not (isinstance(event_type, str) and event_type and len(event_type) <= 100):
        raise WebhookVerificationError("The event has no valid type.")
    return event
