"""WooCommerce inbound: signature, ping, dedupe keys and payload normalisation. Pure, no database.

The order is the "Retrieve an order" example of the REST API v3 docs, which is what an order.*
webhook delivers (https://woocommerce.github.io/woocommerce-rest-api-docs/#retrieve-an-order);
the customer is the "Retrieve a customer" example
(https://woocommerce.github.io/woocommerce-rest-api-docs/#retrieve-a-customer). Headers are the
ones ``WC_Webhook::deliver`` sets (https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from plugin.events import CustomerRef, CustomerUpdated, LineItem, OrderSnapshot, Refund
from webhooks.base import MalformedDelivery, Reply
from webhooks.registry import source_for
from webhooks.woocommerce import WooCommerceSource, sign

SOURCE = WooCommerceSource()
URL = "https://milestones.example.com/webhooks/woocommerce/5b0c6f0e-0000-4000-8000-000000000001"
CURRENT = "woo-current-secret"
PREVIOUS = "woo-previous-secret"

# A known-good vector: this body signed with CURRENT, computed once with
# `printf %s "$BODY" | openssl dgst -sha256 -hmac woo-current-secret -binary | base64`.
VECTOR_BODY = b'{"id":727,"status":"processing","total":"29.35"}'
VECTOR_SIGNATURE = "L28hpX8x9auKWWKkL8FHtpeyJOZMcoWOwJIsSyKKa5o="

# "Retrieve an order" JSON response example (trimmed of tax/shipping lines and _links).
DOCUMENTED_ORDER: dict[str, Any] = {
    "id": 727,
    "parent_id": 0,
    "number": "727",
    "order_key": "wc_order_58d2d042d1d",
    "created_via": "rest-api",
    "version": "3.0.0",
    "status": "processing",
    "currency": "USD",
    "date_created": "2017-03-22T16:28:02",
    "date_created_gmt": "2017-03-22T19:28:02",
    "date_modified": "2017-03-22T16:28:08",
    "date_modified_gmt": "2017-03-22T19:28:08",
    "discount_total": "0.00",
    "discount_tax": "0.00",
    "shipping_total": "10.00",
    "shipping_tax": "0.00",
    "cart_tax": "1.35",
    "total": "29.35",
    "total_tax": "1.35",
    "prices_include_tax": False,
    "customer_id": 0,
    "customer_ip_address": "",
    "customer_user_agent": "",
    "customer_note": "",
    "billing": {
        "first_name": "John",
        "last_name": "Doe",
        "company": "",
        "address_1": "969 Market",
        "address_2": "",
        "city": "San Francisco",
        "state": "CA",
        "postcode": "94103",
        "country": "US",
        "email": "john.doe@example.com",
        "phone": "(555) 555-5555",
    },
    "payment_method": "bacs",
    "payment_method_title": "Direct Bank Transfer",
    "transaction_id": "",
    "date_paid": "2017-03-22T16:28:08",
    "date_paid_gmt": "2017-03-22T19:28:08",
    "date_completed": None,
    "date_completed_gmt": None,
    "cart_hash": "",
    "meta_data": [{"id": 13106, "key": "_download_permissions_granted", "value": "yes"}],
    "line_items": [
        {
            "id": 315,
            "name": "Woo Single #1",
            "product_id": 93,
            "variation_id": 0,
            "quantity": 2,
            "tax_class": "",
            "subtotal": "6.00",
            "subtotal_tax": "0.45",
            "total": "6.00",
            "total_tax": "0.45",
            "taxes": [{"id": 75, "total": "0.45", "subtotal": "0.45"}],
            "meta_data": [],
            "sku": "",
            "price": 3,
        },
        {
            "id": 316,
            "name": "Ship Your Idea &ndash; Color: Black, Size: M Test",
            "product_id": 22,
            "variation_id": 23,
            "quantity": 1,
            "tax_class": "",
            "subtotal": "12.00",
            "subtotal_tax": "0.90",
            "total": "12.00",
            "total_tax": "0.90",
            "taxes": [{"id": 75, "total": "0.9", "subtotal": "0.9"}],
            "meta_data": [],
            "sku": "Bar3",
            "price": 12,
        },
    ],
    "fee_lines": [],
    "coupon_lines": [],
    "refunds": [],
}

# "Retrieve a customer" JSON response example (trimmed of shipping and _links).
DOCUMENTED_CUSTOMER: dict[str, Any] = {
    "id": 25,
    "date_created": "2017-03-21T16:09:28",
    "date_created_gmt": "2017-03-21T19:09:28",
    "date_modified": "2017-03-21T16:09:30",
    "date_modified_gmt": "2017-03-21T19:09:30",
    "email": "john.doe@example.com",
    "first_name": "John",
    "last_name": "Doe",
    "role": "customer",
    "username": "john.doe",
    "billing": {
        "first_name": "John",
        "last_name": "Doe",
        "company": "",
        "email": "john.doe@example.com",
        "phone": "(555) 555-5555",
    },
    "is_paying_customer": False,
    "avatar_url": "https://secure.gravatar.com/avatar/8eb1b522f60d11fa897de1dc6351b7e8?s=96",
    "meta_data": [],
}


def order(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(DOCUMENTED_ORDER)
    data.update(changes)
    return data


def headers(topic: str = "order.updated", body: bytes = b"", secret: str = CURRENT, **extra: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": "https://example.com/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": topic.split(".")[0],
        "X-WC-Webhook-Event": topic.split(".")[-1],
        "X-WC-Webhook-Signature": sign(body, secret),
        "X-WC-Webhook-ID": "142",
        "X-WC-Webhook-Delivery-ID": "6a4b1b0c1f0e8f0d2c3b4a5968778695",
        **extra,
    }


def encoded(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def normalized(payload: dict[str, Any], topic: str = "order.updated") -> Any:
    events = SOURCE.normalize(topic, encoded(payload).decode())
    assert len(events) == 1
    return events[0]


# --- signature ---------------------------------------------------------------------------------


def test_the_known_good_vector_verifies() -> None:
    assert sign(VECTOR_BODY, CURRENT) == VECTOR_SIGNATURE
    verdict = SOURCE.verify(VECTOR_BODY, {"X-WC-Webhook-Signature": VECTOR_SIGNATURE}, [CURRENT], url=URL)
    assert verdict.ok and verdict.reason == ""


def test_a_tampered_body_fails() -> None:
    tampered = VECTOR_BODY.replace(b"29.35", b"2935.00")
    verdict = SOURCE.verify(tampered, {"X-WC-Webhook-Signature": VECTOR_SIGNATURE}, [CURRENT], url=URL)
    assert not verdict.ok and "does not match" in verdict.reason


def test_a_wrong_secret_fails() -> None:
    verdict = SOURCE.verify(VECTOR_BODY, {"X-WC-Webhook-Signature": VECTOR_SIGNATURE}, ["another-secret"], url=URL)
    assert not verdict.ok


def test_a_missing_signature_header_fails() -> None:
    verdict = SOURCE.verify(VECTOR_BODY, {"X-WC-Webhook-Topic": "order.updated"}, [CURRENT], url=URL)
    assert not verdict.ok and "missing X-WC-Webhook-Signature" in verdict.reason


@pytest.mark.parametrize("value", ["not base64!", "c2hvcnQ="])
def test_a_signature_that_is_not_a_sha256_digest_fails(value: str) -> None:
    assert not SOURCE.verify(VECTOR_BODY, {"X-WC-Webhook-Signature": value}, [CURRENT], url=URL).ok


def test_the_previous_secret_is_accepted_during_rotation_and_said_so() -> None:
    signature = sign(VECTOR_BODY, PREVIOUS)
    verdict = SOURCE.verify(VECTOR_BODY, {"x-wc-webhook-signature": signature}, [CURRENT, PREVIOUS], url=URL)
    assert verdict.ok and "previous" in verdict.reason


def test_no_configured_secret_fails_rather_than_accepting() -> None:
    verdict = SOURCE.verify(VECTOR_BODY, {"X-WC-Webhook-Signature": VECTOR_SIGNATURE}, [], url=URL)
    assert not verdict.ok and "no webhook secret" in verdict.reason


# --- the creation ping -------------------------------------------------------------------------


def test_the_unsigned_creation_ping_is_answered_200_without_storing() -> None:
    # WC_Webhook::deliver_ping posts the form body "webhook_id=<id>" and no WooCommerce headers.
    reply = SOURCE.reply_without_storing(b"webhook_id=142", {"Content-Type": "application/x-www-form-urlencoded"})
    assert reply == Reply(200, "")


@pytest.mark.parametrize(
    ("body", "extra"),
    [
        (b"webhook_id=142", {"X-WC-Webhook-Signature": "c2ln"}),  # signed: a delivery, not a ping
        (b"webhook_id=142&x=1", {}),
        (b'{"id": 727}', {}),
    ],
)
def test_anything_else_is_not_a_ping(body: bytes, extra: dict[str, str]) -> None:
    assert SOURCE.reply_without_storing(body, extra) is None


# --- inbox items and dedupe keys ---------------------------------------------------------------


def test_an_order_delivery_is_one_item_keyed_by_topic_id_and_modification_time() -> None:
    body = encoded(order())
    [item] = SOURCE.items(body, headers("order.updated", body))
    assert item.topic == "order.updated"
    assert item.delivery_key.startswith("order.updated:727:2017-03-22T19:28:08:")
    assert item.webhook_id == "142"
    assert item.body == body.decode()
    assert item.headers is not None and item.headers["X-WC-Webhook-Delivery-ID"]


def test_the_same_state_delivered_again_under_another_delivery_id_has_the_same_key() -> None:
    body = encoded(order())
    first = SOURCE.items(body, headers("order.updated", body))[0]
    again = SOURCE.items(body, headers("order.updated", body, **{"X-WC-Webhook-Delivery-ID": "f" * 32}))[0]
    assert first.delivery_key == again.delivery_key


def test_two_events_sharing_a_delivery_id_keep_different_keys() -> None:
    # The delivery id is wp_hash(webhook id . current second): two updates in that second share it.
    pending, paid = encoded(order(status="pending")), encoded(order(status="processing", date_modified_gmt="2017-03-22T19:28:09"))
    one = SOURCE.items(pending, headers("order.updated", pending))[0]
    two = SOURCE.items(paid, headers("order.updated", paid))[0]
    assert one.delivery_key != two.delivery_key


def test_two_states_saved_in_the_same_second_are_both_kept() -> None:
    first, second = encoded(order(status="processing")), encoded(order(status="cancelled"))
    one = SOURCE.items(first, headers("order.updated", first))[0]
    two = SOURCE.items(second, headers("order.updated", second))[0]
    assert one.delivery_key != two.delivery_key


def test_created_and_updated_of_one_state_are_separate_items() -> None:
    body = encoded(order())
    created = SOURCE.items(body, headers("order.created", body))[0]
    updated = SOURCE.items(body, headers("order.updated", body))[0]
    assert created.delivery_key != updated.delivery_key


def test_a_deleted_order_is_keyed_by_its_delivery() -> None:
    body = b'{"id":727}'
    [item] = SOURCE.items(body, headers("order.deleted", body))
    assert item.delivery_key.startswith("order.deleted:727:delivery:")


def test_a_topic_we_do_not_use_is_acknowledged_without_an_item() -> None:
    # Answering 400 would count as a failed delivery, and five of those disable the webhook.
    body = b'{"id":93,"name":"Woo Single #1"}'
    assert SOURCE.items(body, headers("product.updated", body)) == []


@pytest.mark.parametrize(
    ("body", "topic", "message"),
    [
        (b'{"id": 727, "total": ', "order.updated", "JSON"),
        (b"[1, 2]", "order.updated", "JSON object"),
        (b'{"status": "processing"}', "order.updated", "id"),
    ],
)
def test_malformed_deliveries_are_refused(body: bytes, topic: str, message: str) -> None:
    with pytest.raises(MalformedDelivery, match=message):
        SOURCE.items(body, headers(topic, body))


def test_a_missing_topic_header_is_refused() -> None:
    body = encoded(order())
    without = {k: v for k, v in headers("order.updated", body).items() if k != "X-WC-Webhook-Topic"}
    with pytest.raises(MalformedDelivery, match="X-WC-Webhook-Topic"):
        SOURCE.items(body, without)


# --- normalisation -----------------------------------------------------------------------------


def test_the_documented_order_becomes_a_paid_snapshot_of_a_guest() -> None:
    snapshot = normalized(order())
    assert snapshot == OrderSnapshot(
        external_id="727",
        customer=CustomerRef(email="john.doe@example.com", first_name="John", last_name="Doe"),
        currency="USD",
        total=Decimal("29.35"),
        placed_at=datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC),
        updated_at=datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC),
        paid=True,
        cancelled=False,
        refunds=(),
        line_items=(
            LineItem(product_id="93", title="Woo Single #1", quantity=2, price=Decimal("3")),
            LineItem(
                product_id="22",
                title="Ship Your Idea &ndash; Color: Black, Size: M Test",
                quantity=1,
                price=Decimal("12"),
            ),
        ),
    )


def test_a_registered_customer_is_known_by_their_customer_id() -> None:
    snapshot = normalized(order(customer_id=25))
    assert snapshot.customer.external_id == "25"
    assert snapshot.customer.email == "john.doe@example.com"


def test_an_order_without_customer_or_email_has_no_customer() -> None:
    assert normalized(order(billing={"email": ""})).customer is None


@pytest.mark.parametrize(
    ("status", "paid", "cancelled"),
    [
        ("pending", False, False),
        ("on-hold", False, False),
        ("processing", True, False),
        ("completed", True, False),
        ("cancelled", False, True),
        ("refunded", True, True),
        # A failed payment may be retried on the same order: not counted, not sticky-cancelled.
        ("failed", False, False),
    ],
)
def test_paid_and_cancelled_come_from_the_status(status: str, paid: bool, cancelled: bool) -> None:
    snapshot = normalized(order(status=status, date_paid=None, date_paid_gmt=None))
    assert (snapshot.paid, snapshot.cancelled) == (paid, cancelled)


def test_a_plugin_status_counts_as_paid_only_when_a_payment_was_recorded() -> None:
    assert normalized(order(status="shipped")).paid is True
    assert normalized(order(status="shipped", date_paid=None, date_paid_gmt=None)).paid is False


def test_refunds_are_read_as_positive_amounts() -> None:
    # WC_REST_Orders_V2_Controller: refunds are {"id", "reason", "total": "-" . amount}.
    snapshot = normalized(
        order(status="refunded", refunds=[{"id": 726, "reason": "", "total": "-10.00"}, {"id": 730, "reason": "damaged", "total": "-19.35"}])
    )
    assert snapshot.refunds == (Refund("726", Decimal("10.00")), Refund("730", Decimal("19.35")))
    assert snapshot.cancelled is True


def test_a_missing_modification_time_falls_back_to_creation() -> None:
    snapshot = normalized(order(date_modified_gmt=None))
    assert snapshot.updated_at == snapshot.placed_at


def test_a_restored_order_is_read_like_an_update() -> None:
    assert normalized(order(), "order.restored").external_id == "727"


def test_a_deleted_order_changes_nothing() -> None:
    assert SOURCE.normalize("order.deleted", '{"id": 727}') == []


def test_a_customer_becomes_a_customer_update_with_its_creation_date() -> None:
    event = normalized(DOCUMENTED_CUSTOMER, "customer.updated")
    assert event == CustomerUpdated(
        customer=CustomerRef(
            external_id="25",
            email="john.doe@example.com",
            first_name="John",
            last_name="Doe",
            created_at=datetime(2017, 3, 21, 19, 9, 28, tzinfo=UTC),
        )
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"currency": None}, "currency"),
        ({"total": "twenty"}, "total"),
        ({"date_created_gmt": None}, "date_created_gmt"),
        ({"line_items": [{"name": "x", "quantity": "2", "price": 3}]}, "quantity"),
        ({"refunds": [{"id": 1, "total": None}]}, "refunds"),
    ],
)
def test_unreadable_orders_are_malformed(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedDelivery, match=message):
        SOURCE.normalize("order.updated", encoded(order(**changes)).decode())


def test_the_source_is_registered_for_its_platform() -> None:
    assert isinstance(source_for("woocommerce"), WooCommerceSource)
