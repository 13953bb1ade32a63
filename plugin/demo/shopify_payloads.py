"""Shopify webhook deliveries as a shop sends them: REST order JSON, signed headers.

Used by the demo, the benchmark and the tests to speak to ``POST /webhooks/shopify`` exactly
as Shopify does (https://shopify.dev/docs/api/webhooks?reference=toml — orders/create payload;
https://shopify.dev/docs/apps/build/webhooks/verify-deliveries — headers and HMAC).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from webhooks.shopify import sign


@dataclass(frozen=True)
class SampleCustomer:
    id: int
    email: str
    first_name: str
    last_name: str
    created_at: datetime


@dataclass
class SampleOrder:
    id: int
    customer: SampleCustomer | None
    total: Decimal
    created_at: datetime
    currency: str = "USD"
    email: str | None = None
    line_items: list[tuple[int, str, int, Decimal]] = field(default_factory=list)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def order_payload(
    order: SampleOrder,
    *,
    financial_status: str = "paid",
    updated_at: datetime | None = None,
    cancelled_at: datetime | None = None,
    refunds: list[tuple[int, Decimal, datetime]] | None = None,
) -> dict[str, Any]:
    money = f"{order.total:.2f}"
    customer = order.customer
    return {
        "id": order.id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order.id}",
        "name": f"#{order.id}",
        "email": (customer.email if customer else order.email) or "",
        "contact_email": (customer.email if customer else order.email),
        "created_at": _iso(order.created_at),
        "updated_at": _iso(updated_at or order.created_at),
        "processed_at": _iso(order.created_at),
        "cancelled_at": _iso(cancelled_at) if cancelled_at else None,
        "cancel_reason": "customer" if cancelled_at else None,
        "currency": order.currency,
        "presentment_currency": order.currency,
        "financial_status": financial_status,
        "fulfillment_status": None,
        "test": False,
        "total_price": money,
        "subtotal_price": money,
        "total_tax": "0.00",
        "total_price_set": {
            "shop_money": {"amount": money, "currency_code": order.currency},
            "presentment_money": {"amount": money, "currency_code": order.currency},
        },
        "customer": (
            {
                "id": customer.id,
                "email": customer.email,
                "first_name": customer.first_name,
                "last_name": customer.last_name,
                "created_at": _iso(customer.created_at),
                "updated_at": _iso(customer.created_at),
                "state": "enabled",
                "currency": order.currency,
            }
            if customer
            else None
        ),
        "line_items": [
            {
                "id": order.id * 100 + index,
                "product_id": product_id,
                "title": title,
                "name": title,
                "quantity": quantity,
                "price": f"{price:.2f}",
            }
            for index, (product_id, title, quantity, price) in enumerate(order.line_items)
        ],
        "refunds": [
            {
                "id": refund_id,
                "order_id": order.id,
                "created_at": _iso(when),
                "note": None,
                "refund_line_items": [],
                "transactions": [
                    {
                        "id": refund_id * 10,
                        "order_id": order.id,
                        "kind": "refund",
                        "status": "success",
                        "amount": f"{amount:.2f}",
                        "currency": order.currency,
                    }
                ],
            }
            for refund_id, amount, when in (refunds or [])
        ],
    }


def signed_delivery(
    payload: dict[str, Any], *, topic: str, shop_domain: str, secret: str, event_id: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery, signed like Shopify signs it."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        "X-Shopify-Shop-Domain": shop_domain,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-API-Version": "2025-07",
        "X-Shopify-Triggered-At": _iso(datetime.now(UTC)),
    }
    return body, headers


def refund_payload(order: SampleOrder, refund_id: int, amount: Decimal, created_at: datetime) -> dict[str, Any]:
    """A ``refunds/create`` body: the Refund resource, its money in a successful refund transaction.

    https://shopify.dev/docs/api/admin-rest/latest/resources/refund (the webhook sends this object)
    """
    money = f"{amount:.2f}"
    return {
        "id": refund_id,
        "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}",
        "order_id": order.id,
        "created_at": _iso(created_at),
        "processed_at": _iso(created_at),
        "note": None,
        "restock": False,
        "user_id": None,
        "refund_line_items": [],
        "order_adjustments": [],
        "transactions": [
            {
                "id": refund_id * 10,
                "order_id": order.id,
                "kind": "refund",
                "gateway": "shopify_payments",
                "status": "success",
                "amount": money,
                "currency": order.currency,
                "created_at": _iso(created_at),
            }
        ],
    }
