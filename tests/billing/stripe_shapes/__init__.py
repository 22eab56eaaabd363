"""Stripe's own published object shapes (``openapi/fixtures3.json`` of the public
stripe/openapi repository), at API 2024-06-20 and at the latest version, turned
into the objects a test needs by changing only the fields that matter."""

from __future__ import annotations

import copy
import json
from pathlib import Path

HERE = Path(__file__).parent
VERSIONS = ("2024-06-20", "latest")
_CACHE: dict[str, dict] = {}


def resource(version: str, name: str) -> dict:
    if version not in _CACHE:
        _CACHE[version] = json.loads((HERE / f"{version}.json").read_text())[
            "resources"
        ]
    return copy.deepcopy(_CACHE[version][name])


def subscription(
    version: str,
    *,
    id: str,
    customer: str,
    status: str = "active",
    items: list[tuple[str, int]],
    cancel_at_period_end: bool = False,
    trial_end: int | None = None,
    metadata: dict | None = None,
) -> dict:
    """``items``: (price id, current period end) per item, in Stripe's order.
    At 2024-06-20 the period end lives on the subscription (its first item's);
    from 2025-03-31 on each item."""
    obj = resource(version, "subscription")
    template = obj["items"]["data"][0]
    data = []
    for index, (price, period_end) in enumerate(items):
        item = copy.deepcopy(template)
        item["id"] = f"si_{id}_{index}"
        item["subscription"] = id
        item["price"] = {**item["price"], "id": price}
        if item.get("plan"):
            item["plan"] = {**item["plan"], "id": price}
        if version != "2024-06-20":
            item["current_period_end"] = period_end
        data.append(item)
    obj["items"]["data"] = data
    obj.update(
        id=id,
        customer=customer,
        status=status,
        cancel_at_period_end=cancel_at_period_end,
        cancel_at=None,
        canceled_at=None,
        ended_at=None,
        trial_end=trial_end,
        metadata=metadata or {},
    )
    if version == "2024-06-20":
        obj["current_period_end"] = items[0][1]
    else:
        obj.pop("current_period_end", None)
    return obj


def invoice(
    version: str,
    *,
    id: str,
    customer: str,
    subscription: str,
    price: str,
    period_end: int,
    hosted_invoice_url: str = "https://invoice.stripe.com/i/acct_test/inv",
) -> dict:
    obj = resource(version, "invoice")
    line = copy.deepcopy(obj["lines"]["data"][0])
    line["period"] = {"start": period_end - 2_592_000, "end": period_end}
    if version == "2024-06-20":
        obj["subscription"] = subscription
        line["price"] = {**line["price"], "id": price}
        line["subscription"] = subscription
    else:
        obj["parent"] = {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": subscription},
        }
        line["pricing"] = {
            "type": "price_details",
            "price_details": {"price": price, "product": "prod_test"},
            "unit_amount_decimal": "1900",
        }
    obj["lines"]["data"] = [line]
    obj.update(id=id, customer=customer, hosted_invoice_url=hosted_invoice_url)
    return obj


def customer(version: str, *, id: str, deleted: bool = False) -> dict:
    obj = resource(version, "customer")
    obj["id"] = id
    if deleted:
        obj["deleted"] = True
    return obj


def checkout_session(version: str, *, id: str, user_id: str, customer: str) -> dict:
    obj = resource(version, "checkout.session")
    obj.update(
        id=id,
        client_reference_id=user_id,
        customer=customer,
        status="expired",
        subscription=None,
        mode="subscription",
    )
    return obj
