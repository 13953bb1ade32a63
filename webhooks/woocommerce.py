"""WooCommerce: how a store talks to us.

Each webhook is created with a secret; ``X-WC-Webhook-Signature`` is the base64 of HMAC-SHA256
over the raw body with it (``WC_Webhook::generate_signature``). A webhook answers its creation
with an unsigned ping whose form body is ``webhook_id=N``; it must get a 200 or the store shows
the webhook as failing. WooCommerce never retries and disables a webhook after 5 failed
deliveries, so every valid request here is answered 2xx, including topics we do not use.

Payloads are the REST v3 resources of the topic ("for API resources the response is exactly the
same as if requested via the REST API"); ``order.deleted`` carries only ``{"id": N}``.
https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks (headers, topics, statuses)
https://woocommerce.github.io/woocommerce-rest-api-docs/#order-properties (order resource)
https://woocommerce.github.io/woocommerce-rest-api-docs/#customer-properties (customer resource)

There are no paid or cancelled topics: :func:`_order` reads them from the order's status.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from plugin.events import CanonicalEvent, CustomerRef, CustomerUpdated, LineItem, OrderSnapshot, Refund
from webhooks.base import (
    InboxItem,
    MalformedDelivery,
    Reply,
    Verification,
    WebhookSource,
    constant_time_equal,
)
from webhooks.reading import as_object as _as_object
from webhooks.reading import header as _header
from webhooks.reading import identifier as _identifier
from webhooks.reading import money as _money

SIGNATURE_HEADER = "X-WC-Webhook-Signature"
TOPIC_HEADER = "X-WC-Webhook-Topic"
WEBHOOK_ID_HEADER = "X-WC-Webhook-ID"
DELIVERY_ID_HEADER = "X-WC-Webhook-Delivery-ID"
KEPT_HEADERS = (
    TOPIC_HEADER,
    WEBHOOK_ID_HEADER,
    DELIVERY_ID_HEADER,
    "X-WC-Webhook-Source",
    "X-WC-Webhook-Resource",
    "X-WC-Webhook-Event",
)

ORDER_TOPICS = frozenset({"order.created", "order.updated", "order.deleted", "order.restored"})
CUSTOMER_TOPICS = frozenset({"customer.created", "customer.updated"})
TOPICS = ORDER_TOPICS | CUSTOMER_TOPICS

# Order statuses (https://woocommerce.github.io/woocommerce-rest-api-docs/#order-properties).
# A refunded order was paid once. A failed payment is not a cancellation: the shopper may pay
# the same order again (failed -> pending -> processing), and the ledger's cancelled is sticky.
PAID_STATUSES = frozenset({"processing", "completed", "refunded"})
CANCELLED_STATUSES = frozenset({"cancelled", "refunded"})
UNPAID_STATUSES = frozenset({"pending", "on-hold", "failed", "cancelled", "checkout-draft", "trash"})

PING_BODY = re.compile(rb"^webhook_id=\d+$")


def sign(body: bytes, secret: str) -> str:
    """The ``X-WC-Webhook-Signature`` value WooCommerce sends for ``body`` signed with ``secret``."""
    return base64.b64encode(_digest(body, secret)).decode("ascii")


def _digest(body: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()


class WooCommerceSource(WebhookSource):
    platform = "woocommerce"
    secret_settings = ("webhook_secret", "previous_webhook_secret")

    def reply_without_storing(self, body: bytes, headers: Mapping[str, str]) -> Reply | None:
        """The creation ping: ``webhook_id=N``, form-encoded and unsigned. Answered 200, kept nowhere."""
        if _header(headers, SIGNATURE_HEADER) is None and PING_BODY.match(body.strip()):
            return Reply(200, "")
        return None

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        url: str,
        method: str = "POST",
    ) -> Verification:
        """Check the body HMAC against the current secret, then the previous one during rotation."""
        received = _header(headers, SIGNATURE_HEADER)
        if received is None:
            return Verification.failed(f"missing {SIGNATURE_HEADER} header")
        try:
            received_digest = base64.b64decode(received, validate=True)
        except (binascii.Error, ValueError):
            return Verification.failed(f"{SIGNATURE_HEADER} is not base64")
        if len(received_digest) != hashlib.sha256().digest_size:
            return Verification.failed(f"{SIGNATURE_HEADER} is not a SHA-256 digest")
        candidates = [secret for secret in secrets if secret]
        if not candidates:
            return Verification.failed("no webhook secret is configured for this store")
        for position, secret in enumerate(candidates):
            if constant_time_equal(_digest(body, secret), received_digest):
                if position == 0:
                    return Verification.passed()
                return Verification(True, "signed with the previous webhook secret")
        return Verification.failed(f"{SIGNATURE_HEADER} does not match the body")

    def items(self, body: bytes, headers: Mapping[str, str]) -> list[InboxItem]:
        topic = _header(headers, TOPIC_HEADER)
        if topic is None:
            raise MalformedDelivery(f"missing {TOPIC_HEADER} header")
        topic = topic.lower()
        if topic not in TOPICS:
            # A signed delivery of a topic we do not use (product.*, coupon.*, action.*):
            # acknowledged, so WooCommerce does not count it as a failure and disable the webhook.
            return []
        try:
            text = body.decode("utf-8")
            payload = json.loads(text)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: absurd nesting
            raise MalformedDelivery("body is not valid JSON") from exc
        if not isinstance(payload, dict):
            raise MalformedDelivery("body is not a JSON object")
        resource_id = _identifier(payload.get("id"), "id")
        kept = {name: value for name in KEPT_HEADERS if (value := _header(headers, name)) is not None}
        return [
            InboxItem(
                topic=topic,
                delivery_key=_delivery_key(topic, resource_id, payload, body, headers),
                body=text,
                webhook_id=_header(headers, WEBHOOK_ID_HEADER),
                headers=kept,
            )
        ]

    def normalize(self, topic: str, payload: Any) -> list[CanonicalEvent]:
        data = _as_object(payload)
        if topic == "order.deleted":
            # Trashing keeps the order's status and history; restoring it sends order.restored
            # with the whole order. Nothing to change until then.
            return []
        if topic in ORDER_TOPICS:
            return [_order(data)]
        if topic in CUSTOMER_TOPICS:
            return [CustomerUpdated(customer=_customer(data))]
        raise MalformedDelivery(f"unknown topic {topic!r}")


def _delivery_key(
    topic: str, resource_id: str, payload: Mapping[str, Any], body: bytes, headers: Mapping[str, str]
) -> str:
    """The inbox dedupe key: topic, resource id and the resource's ``date_modified_gmt``.

    Never the delivery id alone: WooCommerce builds it from the webhook id and the current
    second, so two real events can share it. ``date_modified_gmt`` has one-second resolution,
    so a digest of the body is kept too: two different states saved in the same second are both
    stored (the ledger merges them idempotently), while a re-sent identical state is not.
    ``order.deleted`` carries only the id; its delivery id (or body) tells deliveries apart.
    """
    digest = hashlib.sha256(body).hexdigest()[:16]
    modified = payload.get("date_modified_gmt")
    if isinstance(modified, str) and modified.strip():
        return f"{topic}:{resource_id}:{modified.strip()}:{digest}"
    delivery = _header(headers, DELIVERY_ID_HEADER)
    if delivery is not None:
        return f"{topic}:{resource_id}:delivery:{hashlib.sha256(delivery.encode()).hexdigest()[:32]}"
    return f"{topic}:{resource_id}:sha256:{digest}"


# --- reading payloads ------------------------------------------------------------------------


def _gmt(value: Any, field: str) -> datetime:
    """``*_gmt`` fields are UTC without an offset ("2017-03-22T19:28:02")."""
    if not isinstance(value, str):
        raise MalformedDelivery(f"{field} is missing or not a timestamp")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedDelivery(f"{field} is not a timestamp: {value!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _optional_gmt(value: Any, field: str) -> datetime | None:
    return None if value in (None, "") else _gmt(value, field)


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _list(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise MalformedDelivery(f"{key} is not a list of objects")
    return value


def _customer(data: Mapping[str, Any]) -> CustomerRef:
    billing = _object(data, "billing")
    return CustomerRef(
        external_id=_identifier(data.get("id"), "id"),
        email=_text(data.get("email")) or _text(billing.get("email")),
        first_name=_text(data.get("first_name")) or _text(billing.get("first_name")),
        last_name=_text(data.get("last_name")) or _text(billing.get("last_name")),
        company_name=_text(billing.get("company")),
        created_at=_optional_gmt(data.get("date_created_gmt"), "date_created_gmt"),
    )


def _order_customer(data: Mapping[str, Any]) -> CustomerRef | None:
    """The registered customer (``customer_id`` > 0), or a guest known only by billing email."""
    billing = _object(data, "billing")
    email = _text(billing.get("email"))
    customer_id = data.get("customer_id")
    registered = (
        not isinstance(customer_id, bool)
        and isinstance(customer_id, int | str)
        and str(customer_id).strip() not in ("", "0")
    )
    if not registered and email is None:
        return None
    return CustomerRef(
        external_id=str(customer_id).strip() if registered else None,
        email=email,
        first_name=_text(billing.get("first_name")),
        last_name=_text(billing.get("last_name")),
        company_name=_text(billing.get("company")),
    )


def _paid(status: str, data: Mapping[str, Any]) -> bool:
    if status in PAID_STATUSES:
        return True
    # A status a plugin added ("shipped", "delivered"): paid if WooCommerce recorded a payment.
    return status not in UNPAID_STATUSES and _text(data.get("date_paid_gmt")) is not None


def _order(data: Mapping[str, Any]) -> OrderSnapshot:
    status = (_text(data.get("status")) or "").lower()
    currency = _text(data.get("currency"))
    if currency is None:
        raise MalformedDelivery("currency is missing")
    placed_at = _gmt(data.get("date_created_gmt"), "date_created_gmt")
    return OrderSnapshot(
        external_id=_identifier(data.get("id"), "id"),
        customer=_order_customer(data),
        currency=currency.upper(),
        total=_money(data.get("total"), "total"),
        placed_at=placed_at,
        updated_at=_optional_gmt(data.get("date_modified_gmt"), "date_modified_gmt") or placed_at,
        paid=_paid(status, data),
        cancelled=status in CANCELLED_STATUSES,
        refunds=tuple(_refund(r, f"refunds[{i}]") for i, r in enumerate(_list(data, "refunds"))),
        line_items=tuple(_line_item(li, f"line_items[{i}]") for i, li in enumerate(_list(data, "line_items"))),
    )


def _refund(data: Mapping[str, Any], field: str) -> Refund:
    """An order's refund summary: ``{"id", "reason", "total": "-10.00"}`` (total is negative)."""
    return Refund(
        refund_id=_identifier(data.get("id"), f"{field}.id"),
        amount=abs(_money(data.get("total"), f"{field}.total")),
    )


def _line_item(data: Mapping[str, Any], field: str) -> LineItem:
    quantity = data.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise MalformedDelivery(f"{field}.quantity is missing or not a whole number")
    product_id = data.get("product_id")
    if data.get("price") is not None:
        price = _money(data.get("price"), f"{field}.price")
    else:  # the unit price from the line total when a filter dropped ``price``
        line_total = _money(data.get("total"), f"{field}.total")
        price = line_total / quantity if quantity else line_total
    return LineItem(
        product_id=None if product_id in (None, 0, "0", "") else _identifier(product_id, f"{field}.product_id"),
        title=_text(data.get("name")) or "",
        quantity=quantity,
        price=price,
    )
