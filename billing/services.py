"""Billing writes: the webhook inbox, subscription state on the user, Checkout.

Stripe delivers each event at least once, sometimes twice at the same moment and
not necessarily in order. Two database mechanisms make processing exactly-once:

1. ``webhook_event_receive`` claims the event id with ``INSERT … ON CONFLICT (id)
   DO NOTHING`` — the primary key, not a read, decides that there is one row;
2. a redelivery locks that row (``SELECT … FOR UPDATE``) and runs the handler
   only while its status is RECEIVED or FAILED, writing the outcome in the same
   transaction (a handler error rolls it all back; the FAILED attempt is then
   recorded in a transaction of its own). A concurrent duplicate waits for the
   lock (milliseconds) and then finds PROCESSED, so every delivery's answer
   tells the truth: a duplicate never answers 200 for an attempt that is still
   going to fail.

Ordering: ``user.subscription_updated_at`` holds the Stripe time (``event.created``)
of the last subscription change applied; handlers lock the user row and skip any
event older than that.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import stripe
from allauth.account.adapter import get_adapter as get_account_adapter
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import BILLING_STATE_FIELDS, SUBSCRIBED_STATUSES
from billing import stripe_api
from billing.models import WebhookEvent
from core.mail import mail_enqueue
from core.models import AuditLog
from core.services import audit_log_changes, audit_log_record, model_snapshot

logger = logging.getLogger(__name__)

# Subscription statuses (Stripe's values) that give the plan's tier. past_due keeps
# access while Stripe retries the card (smart retries / dunning), but only until
# the last paid period ends (``paid_until``; accounts.selectors.tier_effective).
ACCESS_STATUSES = {"active", "trialing", "past_due"}


# How long a delivery waits for an event row another delivery holds before it
# gives up (503 to Stripe, which retries): never queued behind a stuck one.
WEBHOOK_LOCK_TIMEOUT_MS = 10_000


def _lock_timeout_set(cursor) -> None:
    cursor.execute(f"SET LOCAL lock_timeout = {int(WEBHOOK_LOCK_TIMEOUT_MS)}")


class WebhookHandlingError(Exception):
    """An event that cannot be applied yet; the event is marked FAILED and retried."""


# --- webhook inbox ------------------------------------------------------------------


class _HandlerFailed(Exception):
    """A handler raised: leaves the delivery's transaction so that everything the
    handler wrote rolls back; the failure is then recorded on its own."""

    def __init__(self, event: WebhookEvent, error: str) -> None:
        super().__init__(error)
        self.event = event
        self.error = error


def webhook_event_receive(*, event: dict) -> WebhookEvent:
    """Record a verified Stripe event (once per id) and process it if not done yet.

    Returns the event row after this delivery; its status says what happened
    (PROCESSED / IGNORED, or FAILED with ``error`` when the handler raised).
    """
    now = timezone.now()
    table = WebhookEvent._meta.db_table
    handler = EVENT_HANDLERS.get(event["type"])
    Status = WebhookEvent.Status
    status = Status.IGNORED if handler is None else Status.PROCESSED
    # The claim, the handler and the outcome share one transaction and no
    # savepoint: one commit (one WAL flush) and the fewest round trips per
    # delivery, the hot path. The claim is written with its outcome already
    # (processed, first attempt): if the handler raises, the whole transaction
    # rolls back, row included, and _webhook_event_failure_record commits a
    # FAILED row; so the common delivery needs no second write to its row. A
    # duplicate delivery racing this one waits on the uncommitted row, then
    # finds it PROCESSED under the lock.
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # The lock timeout is set by the claim itself (set_config(…, true)
            # is SET LOCAL): the row's values are read from that CTE, so it
            # applies before the INSERT can wait on a concurrent delivery's
            # uncommitted row, and costs no round trip of its own.
            cursor.execute(
                f"""
                WITH lock_wait AS (
                    SELECT set_config('lock_timeout', %s, true)
                )
                INSERT INTO {table}
                    (id, type, provider, status, attempts, error, note,
                     needs_attention, payload, last_attempt_at, processed_at,
                     created_at, updated_at)
                SELECT %s, %s, %s, %s, 1, '', '', false, %s::jsonb, %s, %s, %s, %s
                FROM lock_wait
                ON CONFLICT (id) DO NOTHING
                RETURNING id
                """,  # noqa: S608 - the table name is the model's, values are parameters
                [
                    f"{int(WEBHOOK_LOCK_TIMEOUT_MS)}ms",
                    event["id"],
                    event["type"],
                    WebhookEvent.Provider.STRIPE,
                    status,
                    json.dumps(event),
                    now,
                    now,
                    now,
                    now,
                ],
            )
            if cursor.fetchone() is None:
                logger.info("Stripe event %s delivered again", event["id"])
                return _webhook_event_process_locked(event_id=event["id"])
            # Just inserted by this transaction, so already ours alone (a
            # concurrent delivery's INSERT waits for our commit): no read back.
            record = WebhookEvent(
                id=event["id"],
                type=event["type"],
                provider=WebhookEvent.Provider.STRIPE,
                status=status,
                attempts=1,
                payload=event,
                last_attempt_at=now,
                processed_at=now,
                created_at=now,
                updated_at=now,
            )
            record._state.adding = False
            if handler is not None:
                note = _handler_run(record, handler)
                if note:
                    _webhook_event_outcome_write(record, note=note, now=now)
            return record
    except _HandlerFailed as failed:
        return _webhook_event_failure_record(failed)


def webhook_event_process(*, event_id: str) -> WebhookEvent:
    """Run the handler of a recorded event unless it already ran; exactly once.

    Used by the admin's "reprocess" action (and by a redelivery, inside
    :func:`webhook_event_receive`'s transaction). The event row is locked for the
    duration; on a handler error everything the handler wrote is rolled back and
    the event is marked FAILED with the error and the attempt counted.
    """
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            _lock_timeout_set(cursor)
            return _webhook_event_process_locked(event_id=event_id)
    except _HandlerFailed as failed:
        return _webhook_event_failure_record(failed)


# What a reprocess can change on an event row (never the payload).
WEBHOOK_EVENT_OUTCOME_FIELDS = (
    "status",
    "attempts",
    "error",
    "note",
    "needs_attention",
    "last_attempt_at",
    "processed_at",
)


def webhook_event_reprocess_by_staff(
    *, event_id: str, actor, request=None
) -> WebhookEvent:
    """The admin's "reprocess": :func:`webhook_event_process`, then one audit
    row with the event's outcome fields before and after (status, attempts,
    error…), so the trail says who retried which event and what came of it.
    Not one transaction: a failed handler's outcome must still be committed."""
    before = model_snapshot(
        WebhookEvent.objects.only(*WEBHOOK_EVENT_OUTCOME_FIELDS).get(pk=event_id),
        fields=WEBHOOK_EVENT_OUTCOME_FIELDS,
    )
    event = webhook_event_process(event_id=event_id)
    audit_log_changes(
        action=AuditLog.Action.UPDATED,
        actor=actor,
        target=event,
        before=before,
        after=model_snapshot(event, fields=WEBHOOK_EVENT_OUTCOME_FIELDS),
        request=request,
    )
    return event


def _webhook_event_process_locked(*, event_id: str) -> WebhookEvent:
    event = WebhookEvent.objects.select_for_update().get(pk=event_id)
    if event.status in (WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED):
        return event
    return _webhook_event_apply(event)


def _webhook_event_apply(event: WebhookEvent) -> WebhookEvent:
    """Run ``event``'s handler and record the outcome; the caller holds the
    row's lock inside a transaction. Raises :class:`_HandlerFailed` when the
    handler does, for the caller to roll back and record."""
    now = timezone.now()
    handler = EVENT_HANDLERS.get(event.type)
    note = ""
    if handler is None:
        event.status = WebhookEvent.Status.IGNORED
    else:
        note = _handler_run(event, handler)
        event.status = WebhookEvent.Status.PROCESSED
    event.processed_at = event.last_attempt_at = now
    event.attempts += 1  # attempts + 1 below: the row is locked until commit
    _webhook_event_outcome_write(event, note=note, now=now, attempt=True)
    return event


def _handler_run(event: WebhookEvent, handler) -> str:
    """The handler's note ("" when nothing needs staff); a handler error is
    logged and raised as :class:`_HandlerFailed`."""
    try:
        return handler(event=event.payload) or ""
    except Exception as exc:
        if isinstance(exc, WebhookHandlingError):
            logger.warning("Stripe event %s not applied: %s", event.id, exc)
        else:
            logger.exception("Stripe event %s failed", event.id)
        raise _HandlerFailed(event, f"{type(exc).__name__}: {exc}") from exc


def _webhook_event_outcome_write(
    event: WebhookEvent, *, note: str, now, attempt: bool = False
) -> None:
    """Write ``event``'s status and ``note`` (a note needs staff's attention),
    counting an attempt when ``attempt``. One plain UPDATE: the ORM's save()
    costs more Python than the webhook's whole signature check, on the hot
    path of every delivery."""
    event.error = ""
    event.note = note
    event.needs_attention = bool(note)
    event.updated_at = now
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {WebhookEvent._meta.db_table}
            SET status = %s, attempts = attempts + %s, last_attempt_at = %s,
                processed_at = %s, error = '', note = %s, needs_attention = %s,
                updated_at = %s
            WHERE id = %s
            """,  # noqa: S608 - the table name is the model's, values are parameters
            [
                event.status,
                int(attempt),
                event.last_attempt_at,
                event.processed_at,
                note,
                bool(note),
                now,
                event.id,
            ],
        )


def _webhook_event_failure_record(failed: _HandlerFailed) -> WebhookEvent:
    """Commit a FAILED attempt for an event whose handler raised.

    Runs after the delivery's transaction rolled back, so the event row may be
    missing (first delivery), RECEIVED/FAILED (a redelivery), or — if another
    delivery got in between and succeeded — PROCESSED, which is then left alone
    and returned: the event did get processed, once.
    """
    event = failed.event
    now = timezone.now()
    table = WebhookEvent._meta.db_table
    done = (WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED)
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_timeout_set(cursor)
        cursor.execute(
            f"""
            INSERT INTO {table} AS event
                (id, type, provider, status, attempts, error, note,
                 needs_attention, payload, last_attempt_at, created_at, updated_at)
            VALUES (%s, %s, %s, %s, 1, %s, '', false, %s::jsonb, %s, %s, %s)
            ON CONFLICT (id) DO UPDATE
            SET status = EXCLUDED.status, attempts = event.attempts + 1,
                error = EXCLUDED.error, last_attempt_at = EXCLUDED.last_attempt_at,
                updated_at = EXCLUDED.updated_at
            WHERE event.status NOT IN (%s, %s)
            """,  # noqa: S608 - the table name is the model's, values are parameters
            [
                event.id,
                event.type,
                event.provider,
                WebhookEvent.Status.FAILED,
                failed.error,
                json.dumps(event.payload),
                now,
                now,
                now,
                *done,
            ],
        )
    return WebhookEvent.objects.get(pk=event.id)


def webhook_payloads_prune(
    *,
    days: int | None = None,
    now: dt.datetime | None = None,
    batch_size: int = 10_000,
) -> int:
    """Clear the payload (to ``{}``) of PROCESSED and IGNORED events received
    more than ``days`` ago (default ``WEBHOOK_PAYLOAD_RETENTION_DAYS``); return
    how many were cleared.

    The row stays: its id is what refuses a late redelivery, and a PROCESSED or
    IGNORED event is never run again (``_webhook_event_process_locked``), so
    nothing reads the payload afterwards. FAILED and RECEIVED events keep
    theirs for the admin's "reprocess". One ``UPDATE … WHERE id IN (SELECT id …
    LIMIT n)`` per batch, each its own transaction (autocommit), found through
    ``webhookevent_payload_kept_idx`` (only the rows still to clear).
    """
    days = settings.WEBHOOK_PAYLOAD_RETENTION_DAYS if days is None else days
    now = now or timezone.now()
    with_payload = (
        WebhookEvent.objects.filter(
            status__in=[WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED],
            created_at__lt=now - dt.timedelta(days=days),
        )
        .exclude(payload={})
        .order_by()
        .values("pk")
    )
    cleared = 0
    while True:
        batch = WebhookEvent.objects.filter(pk__in=with_payload[:batch_size])
        count = batch.update(payload={}, updated_at=now)
        cleared += count
        if count < batch_size:
            return cleared


# --- helpers -----------------------------------------------------------------------


def _event_time(event: dict) -> dt.datetime:
    created = event.get("created")
    if not isinstance(created, int | float):
        raise WebhookHandlingError("The event has no 'created' timestamp.")
    return dt.datetime.fromtimestamp(created, tz=dt.UTC)


def _timestamp(value) -> dt.datetime | None:
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    return None


def _object_id(value) -> str:
    """Stripe references are ids, or the object itself when expanded."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _event_object(event: dict) -> dict:
    obj = (event.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        raise WebhookHandlingError("The event has no data.object.")
    return obj


def _items(subscription: dict) -> list[dict]:
    items = (subscription.get("items") or {}).get("data") or []
    return [item for item in items if isinstance(item, dict)]


def _plan_prices() -> dict[str, str]:
    """{Stripe price id: tier} for STRIPE_PRICE_PRO / STRIPE_PRICE_ENTERPRISE."""
    User = get_user_model()
    prices = {
        settings.STRIPE_PRICE_PRO: User.Tier.PRO,
        settings.STRIPE_PRICE_ENTERPRISE: User.Tier.ENTERPRISE,
    }
    prices.pop("", None)
    return prices


def plan_for_price(price_id: str) -> str:
    """The tier a Stripe price id buys (STRIPE_PRICE_PRO / STRIPE_PRICE_ENTERPRISE)."""
    try:
        return _plan_prices()[price_id]
    except KeyError:
        raise WebhookHandlingError(
            f"Price {price_id or '(none)'} is neither STRIPE_PRICE_PRO nor "
            "STRIPE_PRICE_ENTERPRISE."
        ) from None


def _plan_item(subscription: dict) -> tuple[str, dict]:
    """``(tier, item)`` of the subscription item whose price is a plan price,
    wherever it is in the list: add-ons (extra items with other prices) are
    kept in the payload and ignored. Raises WebhookHandlingError when no item
    has a plan price."""
    prices = _plan_prices()
    for item in _items(subscription):
        price_id = _object_id(item.get("price") or item.get("plan"))
        if price_id in prices:
            return prices[price_id], item
    legacy = _object_id(subscription.get("plan"))  # API versions before items
    if legacy in prices:
        return prices[legacy], {}
    seen = [_object_id(i.get("price") or i.get("plan")) for i in _items(subscription)]
    return plan_for_price(seen[0] if seen else legacy), {}


def _subscription_period_end(subscription: dict, item: dict) -> dt.datetime | None:
    # API 2025-03-31 moved current_period_end from the subscription to its items.
    return _timestamp(subscription.get("current_period_end")) or _timestamp(
        item.get("current_period_end")
    )


def _later(current: dt.datetime | None, candidate: dt.datetime | None):
    if candidate is None:
        return current
    return candidate if current is None or candidate > current else current


# What the handlers read and write on the user (and the audit row's label): the
# webhook loads only these, not the ~30 columns of the whole row.
# In the model's field order: Model.from_db needs it.
_BILLING_USER_FIELDS = ("id", "email", *BILLING_STATE_FIELDS)


def _locked_user(*, subscription_id="", customer_id="", user_id=""):
    """The user a Stripe object belongs to, row-locked; None if nobody matches.

    Plain SQL and ``Model.from_db`` rather than a queryset: this runs on every
    delivery, and building the ORM query cost more than the rest of the handler
    (bench/run.py's webhook load). Each key is unique, so no ORDER BY.
    """
    User = get_user_model()
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(User._meta.get_field(f).column) for f in _BILLING_USER_FIELDS
    )
    table = quote(User._meta.db_table)
    with connection.cursor() as cursor:
        for field, value in (
            ("stripe_subscription_id", subscription_id),
            ("stripe_customer_id", customer_id),
            ("id", user_id),
        ):
            if not value:
                continue
            cursor.execute(
                f"SELECT {columns} FROM {table} WHERE {quote(field)} = %s FOR UPDATE",  # noqa: S608 - model names only
                [value],
            )
            row = cursor.fetchone()
            if row is not None:
                return User.from_db(connection.alias, _BILLING_USER_FIELDS, row)
    return None


def _user_update(user, fields: list[str]) -> None:
    """``user.save(update_fields=[*fields, "updated_at"])`` as one plain UPDATE
    (same reason as :func:`_locked_user`; nothing listens to the user's save
    signals)."""
    User = type(user)
    quote = connection.ops.quote_name
    user.updated_at = timezone.now()
    model_fields = [User._meta.get_field(name) for name in [*fields, "updated_at"]]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in model_fields)
    values = [
        field.get_db_prep_save(getattr(user, field.attname), connection)
        for field in model_fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(User._meta.db_table)} SET {assignments} WHERE id = %s",  # noqa: S608 - model names only
            [*values, user.pk],
        )


def _is_stale(user, event_time: dt.datetime) -> bool:
    return (
        user.subscription_updated_at is not None
        and event_time < user.subscription_updated_at
    )


def _save_with_audit(user, *, old_tier: str, fields: list[str], event: dict) -> None:
    _user_update(user, fields)
    if user.tier != old_tier:
        audit_log_record(
            action=AuditLog.Action.PLAN_CHANGED,
            target=user,
            changes={
                "tier": [old_tier, user.tier],
                "subscription_status": user.subscription_status,
                "stripe_event": event.get("id", ""),
                "stripe_event_type": event.get("type", ""),
            },
        )


# --- event handlers (each runs inside the delivery's transaction) -------------------


def checkout_session_completed(*, event: dict) -> None:
    """Link the Stripe customer and subscription to the user who checked out."""
    session = _event_object(event)
    user_id = session.get("client_reference_id") or ""
    if not user_id:
        raise WebhookHandlingError("The Checkout session has no client_reference_id.")
    user = _locked_user(user_id=user_id)
    if user is None:
        raise WebhookHandlingError(f"No user with id {user_id}.")
    fields = []
    customer_id = _object_id(session.get("customer"))
    if customer_id and not user.stripe_customer_id:
        user.stripe_customer_id = customer_id
        fields.append("stripe_customer_id")
    elif customer_id and customer_id != user.stripe_customer_id:
        logger.warning(
            "Checkout for user %s used customer %s, the user has %s",
            user.pk,
            customer_id,
            user.stripe_customer_id,
        )
    subscription_id = _object_id(session.get("subscription"))
    # Linking does not move subscription_updated_at: the subscription events,
    # often stamped a moment earlier, must still apply after it.
    if (
        subscription_id
        and subscription_id != user.stripe_subscription_id
        and not _is_stale(user, _event_time(event))
    ):
        user.stripe_subscription_id = subscription_id
        fields.append("stripe_subscription_id")
    if fields:
        _user_update(user, fields)


def subscription_changed(*, event: dict) -> str:
    """customer.subscription.created / updated / deleted: tier, status, plan,
    period, scheduled cancellation, trial.

    Only the subscription linked to the user changes them. An event about
    another subscription of the same customer (a second Checkout from another
    tab, one made in Stripe's dashboard) is recorded for staff, not applied —
    unless the linked one is over and the other is alive (a new subscription
    after a cancellation), which it then replaces.
    """
    subscription = _event_object(event)
    event_time = _event_time(event)
    deleted = event.get("type") == "customer.subscription.deleted"
    subscription_id = _object_id(subscription)
    customer_id = _object_id(subscription.get("customer"))
    user = _locked_user(
        subscription_id=subscription_id,
        customer_id=customer_id,
        user_id=(subscription.get("metadata") or {}).get("user_id", ""),
    )
    if user is None:
        # Usually the subscription event overtook checkout.session.completed:
        # FAILED now, Stripe's retry finds the linked user.
        raise WebhookHandlingError(
            f"No user for subscription {subscription_id} (customer {customer_id})."
        )
    linked = user.stripe_subscription_id
    if linked and subscription_id != linked:
        linked_live = user.subscription_status in SUBSCRIBED_STATUSES
        if deleted or linked_live:
            return (
                f"Subscription {subscription_id} of customer {customer_id} is not "
                f"the one linked to user {user.pk} ({linked}, "
                f"{user.subscription_status or 'no status'}): not applied. If "
                "both bill, cancel one in Stripe."
            )
    if _is_stale(user, event_time):
        return ""
    status = "canceled" if deleted else str(subscription.get("status") or "")
    if (
        event_time == user.subscription_updated_at
        and user.subscription_status == "canceled"
        and user.stripe_subscription_id == subscription_id
    ):
        # Same second as the deletion: a canceled subscription stays canceled.
        return ""
    User = get_user_model()
    old_tier, old_status = user.tier, user.subscription_status
    if deleted:
        plan = ""
        user.tier = User.Tier.FREE
        first_item = next(iter(_items(subscription)), {})
        user.subscription_ends_at = (
            _timestamp(subscription.get("ended_at"))
            or _timestamp(subscription.get("canceled_at"))
            or _subscription_period_end(subscription, first_item)
            or event_time
        )
        user.subscription_cancels_at = None
        user.trial_ends_at = None
    else:
        plan, item = _plan_item(subscription)
        period_end = _subscription_period_end(subscription, item)
        user.tier = plan if status in ACCESS_STATUSES else User.Tier.FREE
        cancel_at = _timestamp(subscription.get("cancel_at"))
        user.subscription_ends_at = cancel_at or period_end
        user.subscription_cancels_at = cancel_at or (
            period_end if subscription.get("cancel_at_period_end") else None
        )
        user.trial_ends_at = (
            _timestamp(subscription.get("trial_end")) if status == "trialing" else None
        )
        if status in ("active", "trialing"):
            # An active (or trialing) subscription's current period is paid
            # for; a past_due one's is not, so a renewal then extends nothing.
            user.paid_until = _later(user.paid_until, period_end)
    user.subscription_status = status
    user.subscription_plan = plan
    user.subscription_updated_at = event_time
    fields = [
        "tier",
        "subscription_status",
        "subscription_plan",
        "subscription_ends_at",
        "subscription_updated_at",
        "subscription_cancels_at",
        "trial_ends_at",
        "paid_until",
    ]
    if subscription_id and subscription_id != user.stripe_subscription_id:
        user.stripe_subscription_id = subscription_id
        fields.append("stripe_subscription_id")
    if customer_id and not user.stripe_customer_id:
        user.stripe_customer_id = customer_id
        fields.append("stripe_customer_id")
    _save_with_audit(user, old_tier=old_tier, fields=fields, event=event)
    if deleted and old_status != "canceled":
        _billing_mail(user, "subscription_canceled", event=event)
    return ""


def _invoice_subscription_id(invoice: dict) -> tuple[str, dict]:
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    legacy = invoice.get("subscription_details") or {}
    subscription_id = _object_id(invoice.get("subscription")) or _object_id(
        parent.get("subscription")
    )
    return subscription_id, parent.get("metadata") or legacy.get("metadata") or {}


def _invoice_paid_until(invoice: dict) -> dt.datetime | None:
    """End of the service period an invoice pays for: its plan lines' period
    (the invoice's own period_end is the *previous* period for renewals)."""
    prices = _plan_prices()
    ends = []
    for line in (invoice.get("lines") or {}).get("data") or []:
        if not isinstance(line, dict):
            continue
        pricing = line.get("pricing") or {}
        price_id = _object_id(line.get("price")) or _object_id(
            (pricing.get("price_details") or {}).get("price")
        )
        if price_id in prices or not prices:
            ends.append(_timestamp((line.get("period") or {}).get("end")))
    ends = [end for end in ends if end is not None]
    return max(ends) if ends else None


def invoice_changed(*, event: dict) -> str:
    """invoice.paid / invoice.payment_failed / invoice.payment_action_required.

    A paid invoice moves ``paid_until`` to the end of the period it pays for and
    brings a past_due / unpaid / incomplete subscription back to active; a
    failed one makes the subscription past_due (access until ``paid_until``);
    one needing the customer's action keeps Stripe's hosted invoice page for
    the billing page. Each failure or required action is emailed. Invoices of
    subscriptions not linked to a user (one-off invoices, the first invoice
    before checkout completes) change nothing: the subscription events carry
    that state.
    """
    invoice = _event_object(event)
    event_time = _event_time(event)
    subscription_id, metadata = _invoice_subscription_id(invoice)
    if not subscription_id:
        return ""
    user = _locked_user(
        subscription_id=subscription_id,
        customer_id=_object_id(invoice.get("customer")),
        user_id=metadata.get("user_id", ""),
    )
    if user is None:
        return ""
    if user.stripe_subscription_id != subscription_id:
        if not user.stripe_subscription_id:
            return ""  # not linked yet: the subscription events will carry it
        return (
            f"Invoice of subscription {subscription_id}, which is not the one "
            f"linked to user {user.pk} ({user.stripe_subscription_id}): not "
            "applied. If both bill, cancel one in Stripe."
        )
    kind = event.get("type")
    User = get_user_model()
    old_tier = user.tier
    fields = ["billing_action_url"]
    if kind == "invoice.paid":
        # Paid is paid, whatever the order of delivery: never stale.
        user.paid_until = _later(user.paid_until, _invoice_paid_until(invoice))
        user.billing_action_url = ""
        fields.append("paid_until")
        if user.subscription_status in {
            "past_due",
            "unpaid",
            "incomplete",
        } and not _is_stale(user, event_time):
            user.subscription_status = "active"
            if user.subscription_plan:
                user.tier = user.subscription_plan
            user.subscription_updated_at = event_time
            fields += ["tier", "subscription_status", "subscription_updated_at"]
    elif _is_stale(user, event_time):
        return ""
    elif kind == "invoice.payment_action_required":
        user.billing_action_url = str(invoice.get("hosted_invoice_url") or "")
        _billing_mail(user, "payment_action_required", event=event)
    else:
        if user.subscription_status in {"active", "trialing"}:
            user.subscription_status = "past_due"
            user.subscription_updated_at = event_time
            fields += ["subscription_status", "subscription_updated_at"]
        _billing_mail(user, "payment_failed", event=event)
    if user.tier not in User.Tier.values:
        user.tier = User.Tier.FREE
        fields.append("tier")
    _save_with_audit(user, old_tier=old_tier, fields=fields, event=event)
    return ""


def trial_will_end(*, event: dict) -> str:
    """customer.subscription.trial_will_end (three days before): tell the user."""
    subscription = _event_object(event)
    user = _locked_user(subscription_id=_object_id(subscription))
    if user is None:
        return ""
    user.trial_ends_at = _timestamp(subscription.get("trial_end"))
    _user_update(user, ["trial_ends_at"])
    _billing_mail(user, "trial_ending", event=event)
    return ""


def customer_deleted(*, event: dict) -> str:
    """customer.deleted: unlink the customer and its subscription, so the next
    upgrade creates a new customer instead of failing with "No such customer".
    Stripe cancels the customer's subscriptions with it: the plan ends now."""
    customer = _event_object(event)
    user = _locked_user(customer_id=_object_id(customer))
    if user is None:
        return ""
    User = get_user_model()
    old_tier = user.tier
    user.stripe_customer_id = ""
    user.stripe_subscription_id = ""
    user.billing_action_url = ""
    user.subscription_cancels_at = None
    fields = [
        "stripe_customer_id",
        "stripe_subscription_id",
        "billing_action_url",
        "subscription_cancels_at",
    ]
    if user.subscription_status in SUBSCRIBED_STATUSES:
        user.subscription_status = "canceled"
        user.subscription_plan = ""
        user.tier = User.Tier.FREE
        user.subscription_ends_at = _event_time(event)
        fields += ["subscription_status", "subscription_plan", "tier"]
        fields.append("subscription_ends_at")
    _save_with_audit(user, old_tier=old_tier, fields=fields, event=event)
    return ""


def checkout_session_expired(*, event: dict) -> str:
    """checkout.session.expired: the upgrade was not finished; say so, with the
    way back to the pricing page (only for a user without a live plan)."""
    session = _event_object(event)
    user = _locked_user(user_id=session.get("client_reference_id") or "")
    if user is None or user.subscription_status in SUBSCRIBED_STATUSES:
        return ""
    _billing_mail(user, "checkout_expired", event=event)
    return ""


# --- billing emails (queued in the delivery's transaction: once per event) ---------

_MAIL_SUBJECTS = {
    "payment_failed": "Your payment failed",
    "payment_action_required": "Your payment needs your confirmation",
    "trial_ending": "Your trial ends soon",
    "subscription_canceled": "Your subscription has ended",
    "checkout_expired": "Your upgrade was not completed",
}


def _billing_mail(user, kind: str, *, event: dict) -> None:
    """Queue the ``kind`` email to ``user`` and audit it. Runs inside the
    delivery's transaction, so a rolled-back or redelivered event sends
    nothing twice."""
    from accounts.selectors import tier_effective

    context = {
        "user": user,
        "site_url": settings.SITE_URL.rstrip("/"),
        "access_until": user.paid_until,
        "action_url": user.billing_action_url,
        "trial_ends_at": user.trial_ends_at,
        "tier_now": tier_effective(user),
    }
    body = render_to_string(f"billing/email/{kind}.txt", context).strip()
    mail_enqueue(
        subject=get_account_adapter().format_email_subject(_MAIL_SUBJECTS[kind]),
        body=body,
        to=[user.email],
        from_email=settings.DEFAULT_FROM_EMAIL,
    )
    audit_log_record(
        action=AuditLog.Action.BILLING_EMAIL,
        target=user,
        changes={
            "email": kind,
            "stripe_event": event.get("id", ""),
            "stripe_event_type": event.get("type", ""),
        },
    )


EVENT_HANDLERS = {
    "checkout.session.completed": checkout_session_completed,
    "checkout.session.expired": checkout_session_expired,
    "customer.deleted": customer_deleted,
    "customer.subscription.created": subscription_changed,
    "customer.subscription.updated": subscription_changed,
    "customer.subscription.deleted": subscription_changed,
    "customer.subscription.trial_will_end": trial_will_end,
    "invoice.paid": invoice_changed,
    "invoice.payment_failed": invoice_changed,
    "invoice.payment_action_required": invoice_changed,
}


# --- Checkout and the customer portal -----------------------------------------------


def checkout_session_start(
    *, user, plan: str, success_url: str, cancel_url: str
) -> str:
    """Open a Stripe Checkout session for ``plan``; return the URL to send the user to.

    The user's Stripe customer is reused when there is one; ``client_reference_id``
    and the subscription's metadata name the user so every later event finds them.
    Raises ValidationError with a readable message (not configured, already
    subscribed, Stripe unreachable or refusing).
    """
    User = get_user_model()
    if not stripe_api.billing_configured():
        raise ValidationError("Billing is not configured on this site yet.")
    prices = {
        User.Tier.PRO: settings.STRIPE_PRICE_PRO,
        User.Tier.ENTERPRISE: settings.STRIPE_PRICE_ENTERPRISE,
    }
    if plan not in prices:
        raise ValidationError("Choose the Pro or the Enterprise plan.")
    if user.stripe_subscription_id and user.subscription_status in SUBSCRIBED_STATUSES:
        raise ValidationError(
            "You already have a subscription: change or cancel it with "
            "“Manage billing”."
        )
    customer_id = _customer_ensure(user=user)
    params = {
        "mode": "subscription",
        "line_items": [{"price": prices[plan], "quantity": 1}],
        "client_reference_id": str(user.pk),
        "success_url": success_url,
        "cancel_url": cancel_url,
        "subscription_data": {"metadata": {"user_id": str(user.pk)}},
        "metadata": {"user_id": str(user.pk)},
        # Always the user's one customer: two Checkouts from two tabs must not
        # make two customers (one of them unreachable from the portal).
        "customer": customer_id,
    }
    try:
        return stripe_api.checkout_session_create(**params)
    except stripe.StripeError as exc:
        logger.warning("Stripe Checkout failed for user %s: %s", user.pk, exc)
        raise ValidationError(_stripe_message(exc, "start checkout")) from exc


def _customer_ensure(*, user) -> str:
    """The user's Stripe customer id, created on first use.

    The user row is locked while the customer is created, so two Checkouts
    started at once (two tabs) wait for each other and share one customer.
    Raises ValidationError when Stripe cannot be reached.
    """
    User = get_user_model()
    with transaction.atomic():
        locked = (
            User.objects.select_for_update()
            .only("email", "stripe_customer_id")
            .get(pk=user.pk)
        )
        if not locked.stripe_customer_id:
            try:
                customer_id = stripe_api.customer_create(
                    email=locked.email, user_id=str(user.pk)
                )
            except stripe.StripeError as exc:
                logger.warning("Stripe customer failed for user %s: %s", user.pk, exc)
                raise ValidationError(_stripe_message(exc, "start checkout")) from exc
            User.objects.filter(pk=user.pk).update(
                stripe_customer_id=customer_id, updated_at=timezone.now()
            )
            locked.stripe_customer_id = customer_id
    user.stripe_customer_id = locked.stripe_customer_id
    return locked.stripe_customer_id


def portal_session_start(*, user, return_url: str) -> str:
    """Open the Stripe customer portal for the user; return its URL."""
    if not stripe_api.billing_configured():
        raise ValidationError("Billing is not configured on this site yet.")
    if not user.stripe_customer_id:
        raise ValidationError(
            "There is no billing account to manage yet: choose a plan first."
        )
    try:
        return stripe_api.portal_session_create(
            customer=user.stripe_customer_id, return_url=return_url
        )
    except stripe.StripeError as exc:
        logger.warning("Stripe portal failed for user %s: %s", user.pk, exc)
        raise ValidationError(_stripe_message(exc, "open the billing portal")) from exc


def _stripe_message(exc, what: str) -> str:
    detail = getattr(exc, "user_message", None)
    message = f"Stripe could not {what}"
    return f"{message}: {detail}" if detail else f"{message}; please try again later."


def user_deletion_refuse_while_subscribed(*, user) -> None:
    """An ``accounts.hooks`` deletion check: no account deletion while its
    subscription still bills (Stripe would keep charging a card nobody can
    manage any more)."""
    if user.stripe_subscription_id and user.subscription_status in SUBSCRIBED_STATUSES:
        raise ValidationError(
            "You have a running subscription. Cancel it on the billing page "
            "first, then delete your account."
        )
