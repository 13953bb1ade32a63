"""Shopify: how a shop talks to us.

Deliveries are signed with the app's API secret: ``X-Shopify-Hmac-Sha256`` is the base64 of
HMAC-SHA256 over the raw body (https://shopify.dev/docs/apps/build/webhooks/verify-deliveries).
Payloads are the REST resources of the topic (https://shopify.dev/docs/api/webhooks), read here
into canonical events. Money comes from ``shop_money`` so every order of a shop is in one
currency, whatever the buyer paid in.

The mandatory privacy topics carry their own small payloads
(https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance): ``customers/redact``
``{shop_id, shop_domain, customer: {id, email, phone}, orders_to_redact: [ids]}``,
``customers/data_request`` ``{shop_id, shop_domain, orders_requested: [ids], customer: {…},
data_request: {id}}`` and ``shop/redact`` ``{shop_id, shop_domain}``. Shopify notes that a
customer record may hold only an email address, so either the id or the email is enough.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from plugin.events import (
    CanonicalEvent,
    ConnectionUninstalled,
    CustomerDataRequested,
    CustomerRedactRequested,
    CustomerRef,
    CustomerUpdated,
    LineItem,
    OrderRefunded,
    OrderSnapshot,
    Refund,
    ShopRedactRequested,
)
from webhooks.base import (
    ConnectionRef,
    InboxItem,
    MalformedDelivery,
    Verification,
    WebhookSource,
    constant_time_equal,
)
from webhooks.reading import as_object as _as_object
from webhooks.reading import header as _header
from webhooks.reading import identifier as _identifier
from webhooks.reading import money as _money

HMAC_HEADER = "X-Shopify-Hmac-Sha256"
TOPIC_HEADER = "X-Shopify-Topic"
SHOP_HEADER = "X-Shopify-Shop-Domain"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
EVENT_ID_HEADER = "X-Shopify-Event-Id"
KEPT_HEADERS = (
    TOPIC_HEADER,
    SHOP_HEADER,
    WEBHOOK_ID_HEADER,
    EVENT_ID_HEADER,
    "X-Shopify-Triggered-At",
    "X-Shopify-API-Version",
)

ORDER_TOPICS = frozenset({"orders/create", "orders/paid", "orders/updated", "orders/cancelled"})
CUSTOMER_TOPICS = frozenset({"customers/create", "customers/update"})
# Mandatory compliance topics: requests to show or erase personal data.
PRIVACY_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
TOPICS = ORDER_TOPICS | CUSTOMER_TOPICS | PRIVACY_TOPICS | {"refunds/create", "app/uninstalled"}

# A refunded order was paid once; "authorized", "pending" and "voided" never were.
PAID_STATUSES = frozenset({"paid", "partially_paid", "partially_refunded", "refunded"})


def sign(body: bytes, secret: str) -> str:
    """The ``X-Shopify-Hmac-Sha256`` value Shopify sends for ``body`` signed with ``secret``."""
    return base64.b64encode(_digest(body, secret)).decode("ascii")


def _digest(body: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()


class ShopifySource(WebhookSource):
    platform = "shopify"
    secret_settings = ("api_secret", "previous_api_secret")
    after_uninstall_topics = PRIVACY_TOPICS

    def connection_ref(self, headers: Mapping[str, str], connection_id: str | None) -> ConnectionRef:
        shop = _header(headers, SHOP_HEADER)
        if shop is None:
            raise MalformedDelivery(f"missing {SHOP_HEADER} header")
        return ConnectionRef(connection_id=connection_id, lookup_key=shop.lower())

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        url: str,
        method: str = "POST",
    ) -> Verification:
        """Check the body HMAC against the current secret, then the previous one during rotation.

        Only the raw bytes are signed, so ``url`` and ``method`` play no part.
        """
        received = _header(headers, HMAC_HEADER)
        if received is None:
            return Verification.failed(f"missing {HMAC_HEADER} header")
        try:
            received_digest = base64.b64decode(received, validate=True)
        except (binascii.Error, ValueError):
            return Verification.failed(f"{HMAC_HEADER} is not base64")
        if len(received_digest) != hashlib.sha256().digest_size:
            return Verification.failed(f"{HMAC_HEADER} is not a SHA-256 digest")
        candidates = [secret for secret in secrets if secret]
        if not candidates:
            return Verification.failed("no API secret is configured for this shop")
        for position, secret in enumerate(candidates):
            if constant_time_equal(_digest(body, secret), received_digest):
                if position == 0:
                    return Verification.passed()
                # Worth logging: the shop still signs with a secret the admin means to retire.
                return Verification(True, "signed with the previous API secret")
        return Verification.failed(f"{HMAC_HEADER} does not match the body")

    def items(self, body: bytes, headers: Mapping[str, str]) -> list[InboxItem]:
        topic = _header(headers, TOPIC_HEADER)
        if topic is None:
            raise MalformedDelivery(f"missing {TOPIC_HEADER} header")
        topic = topic.lower()
        if topic not in TOPICS:
            raise MalformedDelivery(f"unknown topic {topic!r}")
        try:
            text = body.decode("utf-8")
            payload = json.loads(text)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: absurd nesting
            raise MalformedDelivery("body is not valid JSON") from exc
        if not isinstance(payload, dict):
            raise MalformedDelivery("body is not a JSON object")
        webhook_id = _header(headers, WEBHOOK_ID_HEADER)
        kept = {name: value for name in KEPT_HEADERS if (value := _header(headers, name)) is not None}
        return [
            InboxItem(
                topic=topic,
                delivery_key=_delivery_key(topic, body, headers),
                body=text,
                webhook_id=webhook_id,
                headers=kept,
            )
        ]

    def normalize(self, topic: str, payload: Any) -> list[CanonicalEvent]:
        data = _as_object(payload)
        if topic in ORDER_TOPICS:
            return [_order(topic, data)]
        if topic == "refunds/create":
            order_id = _identifier(data.get("order_id"), "order_id")
            return [OrderRefunded(order_external_id=order_id, customer=None, refund=_refund(data, "refund"))]
        if topic in CUSTOMER_TOPICS:
            return [CustomerUpdated(customer=_customer(data, "customer"))]
        if topic == "app/uninstalled":
            return [ConnectionUninstalled()]
        if topic == "customers/redact":
            return [
                CustomerRedactRequested(
                    customer=_privacy_customer(data),
                    order_external_ids=_ids(data.get("orders_to_redact"), "orders_to_redact"),
                )
            ]
        if topic == "customers/data_request":
            request = data.get("data_request")
            request_id = request.get("id") if isinstance(request, Mapping) else None
            return [
                CustomerDataRequested(
                    customer=_privacy_customer(data),
                    request_id=None if request_id is None else _identifier(request_id, "data_request.id"),
                )
            ]
        if topic == "shop/redact":
            return [ShopRedactRequested()]
        raise MalformedDelivery(f"unknown topic {topic!r}")


def _delivery_key(topic: str, body: bytes, headers: Mapping[str, str]) -> str:
    """The inbox dedupe key: the event id, else the delivery id, else a hash of what was sent.

    The topic is part of the key because Shopify gives one event id to every delivery a merchant
    action produces: a checkout's ``orders/create`` and ``orders/paid`` share it and must both count.
    """
    for kind, name in (("event", EVENT_ID_HEADER), ("webhook", WEBHOOK_ID_HEADER)):
        value = _header(headers, name)
        if value is not None:
            if len(value) > 128:  # keep the key within the column, still unique
                value = hashlib.sha256(value.encode("utf-8")).hexdigest()
            return f"{topic}:{kind}:{value}"
    return f"{topic}:sha256:{hashlib.sha256(topic.encode('utf-8') + body).hexdigest()}"


# --- reading payloads ------------------------------------------------------------------------


def _shop_money_of(data: Mapping[str, Any], set_key: str) -> Mapping[str, Any]:
    money_set = data.get(set_key)
    shop_money = money_set.get("shop_money") if isinstance(money_set, Mapping) else None
    return shop_money if isinstance(shop_money, Mapping) else {}


def _shop_money(data: Mapping[str, Any], set_key: str, plain_key: str, field: str) -> Decimal:
    """``<x>_set.shop_money.amount`` when Shopify sends it, else the plain ``<x>`` string."""
    shop_money = _shop_money_of(data, set_key)
    if shop_money.get("amount") is not None:
        return _money(shop_money["amount"], f"{field}.{set_key}.shop_money.amount")
    return _money(data.get(plain_key), f"{field}.{plain_key}")


def _timestamp(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise MalformedDelivery(f"{field} is missing or not a timestamp")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise MalformedDelivery(f"{field} is not a timestamp: {value!r}") from exc
    if moment.tzinfo is None:
        raise MalformedDelivery(f"{field} has no UTC offset: {value!r}")
    return moment.astimezone(UTC)


def _optional_timestamp(value: Any, field: str) -> datetime | None:
    return None if value is None else _timestamp(value, field)


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _customer(data: Mapping[str, Any], field: str, fallback_email: str | None = None) -> CustomerRef:
    return CustomerRef(
        external_id=_identifier(data.get("id"), f"{field}.id"),
        email=_text(data.get("email")) or fallback_email,
        first_name=_text(data.get("first_name")),
        last_name=_text(data.get("last_name")),
        created_at=_optional_timestamp(data.get("created_at"), f"{field}.created_at"),
    )


def _order(topic: str, data: Mapping[str, Any]) -> OrderSnapshot:
    order_email = _text(data.get("email")) or _text(data.get("contact_email"))
    customer_data = data.get("customer")
    customer: CustomerRef | None
    if isinstance(customer_data, Mapping) and customer_data.get("id") is not None:
        customer = _customer(customer_data, "customer", fallback_email=order_email)
    elif order_email:  # guest checkout: the order's email is all we know
        customer = CustomerRef(email=order_email)
    else:
        customer = None

    currency = _text(_shop_money_of(data, "total_price_set").get("currency_code")) or _text(
        data.get("currency")
    )
    if currency is None:
        raise MalformedDelivery("currency is missing")
    placed_at = _timestamp(data.get("created_at"), "created_at")
    return OrderSnapshot(
        external_id=_identifier(data.get("id"), "id"),
        customer=customer,
        currency=currency.upper(),
        total=_shop_money(data, "total_price_set", "total_price", "order"),
        placed_at=placed_at,
        updated_at=_optional_timestamp(data.get("updated_at"), "updated_at") or placed_at,
        paid=topic == "orders/paid" or data.get("financial_status") in PAID_STATUSES,
        cancelled=data.get("cancelled_at") is not None,
        refunds=tuple(_refund(r, f"refunds[{i}]") for i, r in enumerate(_list(data, "refunds"))),
        line_items=tuple(
            _line_item(li, f"line_items[{i}]") for i, li in enumerate(_list(data, "line_items"))
        ),
    )


def _list(data: Mapping[str, Any], key: str, field: str = "") -> list[Mapping[str, Any]]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise MalformedDelivery(f"{field + '.' if field else ''}{key} is not a list of objects")
    return value


def _refund(data: Mapping[str, Any], field: str) -> Refund:
    """A refund's amount is the money that actually went back: its successful refund transactions.

    A refund without transactions (restock only, or an API version that leaves them out) falls back
    to the subtotal of its refunded line items.
    """
    transactions = _list(data, "transactions", field)
    if transactions:
        amount = sum(
            (
                _shop_money(t, "amount_set", "amount", f"{field}.transactions[{i}]")
                for i, t in enumerate(transactions)
                if t.get("kind") == "refund" and t.get("status") == "success"
            ),
            Decimal("0"),
        )
    else:
        amount = sum(
            (
                _shop_money(rli, "subtotal_set", "subtotal", f"{field}.refund_line_items[{i}]")
                for i, rli in enumerate(_list(data, "refund_line_items", field))
            ),
            Decimal("0"),
        )
    return Refund(
        refund_id=_identifier(data.get("id"), f"{field}.id"),
        amount=amount,
        created_at=_optional_timestamp(data.get("created_at"), f"{field}.created_at"),
    )


def _line_item(data: Mapping[str, Any], field: str) -> LineItem:
    product_id = data.get("product_id")
    quantity = data.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise MalformedDelivery(f"{field}.quantity is missing or not a whole number")
    return LineItem(
        product_id=None if product_id is None else _identifier(product_id, f"{field}.product_id"),
        title=_text(data.get("title")) or _text(data.get("name")) or "",
        quantity=quantity,
        price=_shop_money(data, "price_set", "price", field),
    )


def _privacy_customer(data: Mapping[str, Any]) -> CustomerRef:
    """Who a privacy request is about: the id, the email, or both (never names: none are sent)."""
    customer = data.get("customer")
    if not isinstance(customer, Mapping):
        raise MalformedDelivery("customer is missing or not an object")
    raw_id = customer.get("id")
    ref = CustomerRef(
        external_id=None if raw_id is None else _identifier(raw_id, "customer.id"),
        email=_text(customer.get("email")),
    )
    if not ref.is_identifiable:
        raise MalformedDelivery("customer has neither an id nor an email")
    return ref


def _ids(value: Any, field: str) -> tuple[str, ...]:
    """A list of ids (``orders_to_redact``); absent or null is none."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise MalformedDelivery(f"{field} is not a list of ids")
    return tuple(_identifier(item, f"{field}[{i}]") for i, item in enumerate(value))
