"""Shopify inbound: signature, dedupe keys and payload normalisation. Pure, no database.

Payloads are trimmed from Shopify's documented webhook samples
(https://shopify.dev/docs/api/webhooks, topics orders/create, refunds/create, customers/update),
keeping the real field names and shapes.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from plugin.events import (
    ConnectionUninstalled,
    CustomerRef,
    CustomerUpdated,
    LineItem,
    OrderRefunded,
    OrderSnapshot,
    Refund,
)
from webhooks import shopify
from webhooks.base import MalformedDelivery
from webhooks.shopify import ShopifySource, sign

SOURCE = ShopifySource()
URL = "https://milestones.example.com/webhooks/shopify"
CURRENT = "hush-current-secret"
PREVIOUS = "hush-previous-secret"

# A known-good vector: this body signed with CURRENT, computed once with hmac + base64.
VECTOR_BODY = b'{"id":820982911946154508,"email":"jon@example.com","total_price":"404.95"}'
VECTOR_SIGNATURE = "Opy9SuQ44wEEFqDfP6IkC2Zv77H6dcfJVPp2/2Y6b/Y="

# orders/create, trimmed from Shopify's documented sample payload.
DOCUMENTED_ORDER: dict[str, Any] = {
    "id": 820982911946154508,
    "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
    "cancel_reason": "customer",
    "cancelled_at": "2021-12-31T19:00:00-05:00",
    "contact_email": "jon@example.com",
    "created_at": "2021-12-31T19:00:00-05:00",
    "currency": "USD",
    "email": "jon@example.com",
    "financial_status": "voided",
    "name": "#9999",
    "order_number": 1234,
    "presentment_currency": "USD",
    "processed_at": "2021-12-31T19:00:00-05:00",
    "test": True,
    "total_price": "404.95",
    "total_price_set": {
        "shop_money": {"amount": "404.95", "currency_code": "USD"},
        "presentment_money": {"amount": "404.95", "currency_code": "USD"},
    },
    "updated_at": "2021-12-31T19:00:00-05:00",
    "customer": {
        "id": 115310627314723954,
        "created_at": None,
        "updated_at": None,
        "first_name": "John",
        "last_name": "Smith",
        "state": "disabled",
        "email": "john@example.com",
        "currency": "USD",
        "admin_graphql_api_id": "gid://shopify/Customer/115310627314723954",
    },
    "line_items": [
        {
            "id": 487817672276298554,
            "name": "Aviator sunglasses",
            "price": "89.99",
            "price_set": {
                "shop_money": {"amount": "89.99", "currency_code": "USD"},
                "presentment_money": {"amount": "89.99", "currency_code": "USD"},
            },
            "product_id": 788032119674292922,
            "quantity": 1,
            "sku": "SKU2006-001",
            "title": "Aviator sunglasses",
            "variant_id": None,
        }
    ],
    "refunds": [],
}

# refunds/create, trimmed from Shopify's documented refund resource.
DOCUMENTED_REFUND: dict[str, Any] = {
    "id": 929361464,
    "order_id": 450789469,
    "created_at": "2020-01-14T10:34:55-05:00",
    "note": "wrong size",
    "processed_at": "2020-01-14T10:34:55-05:00",
    "restock": True,
    "admin_graphql_api_id": "gid://shopify/Refund/929361464",
    "refund_line_items": [
        {
            "id": 1058498311,
            "quantity": 1,
            "line_item_id": 518995019,
            "restock_type": "return",
            "subtotal": 199.0,
            "total_tax": 3.98,
            "subtotal_set": {
                "shop_money": {"amount": "199.00", "currency_code": "USD"},
                "presentment_money": {"amount": "199.00", "currency_code": "USD"},
            },
        }
    ],
    "transactions": [
        {
            "id": 1072844685,
            "order_id": 450789469,
            "kind": "refund",
            "gateway": "bogus",
            "status": "success",
            "amount": "41.94",
            "currency": "USD",
            "parent_id": 801038806,
        }
    ],
}

# customers/update, trimmed from Shopify's documented sample payload.
DOCUMENTED_CUSTOMER: dict[str, Any] = {
    "id": 706405506930370084,
    "created_at": "2021-12-31T19:00:00-05:00",
    "updated_at": "2021-12-31T19:00:00-05:00",
    "first_name": "Bob",
    "last_name": "Biller",
    "state": "disabled",
    "note": "This customer loves ice cream",
    "verified_email": True,
    "email": "bob@biller.com",
    "phone": None,
    "currency": "USD",
    "addresses": [],
    "admin_graphql_api_id": "gid://shopify/Customer/706405506930370084",
}


def order(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(DOCUMENTED_ORDER)
    payload.update(changes)
    return payload


def snapshot(topic: str = "orders/create", **changes: Any) -> OrderSnapshot:
    (event,) = SOURCE.normalize(topic, order(**changes))
    assert isinstance(event, OrderSnapshot)
    return event


def signed_headers(body: bytes, secret: str = CURRENT, **extra: str) -> dict[str, str]:
    return {
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": "jsmith.myshopify.com",
        **extra,
    }


def delivery_headers(topic: str = "orders/create", **extra: str) -> dict[str, str]:
    return {"X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": "jsmith.myshopify.com", **extra}


# --- signing and verification ----------------------------------------------------------------


def test_sign_produces_the_base64_hmac_sha256_of_the_raw_body() -> None:
    independent = base64.b64encode(hmac.new(CURRENT.encode(), VECTOR_BODY, hashlib.sha256).digest()).decode()

    assert independent == VECTOR_SIGNATURE
    assert sign(VECTOR_BODY, CURRENT) == VECTOR_SIGNATURE


def test_known_good_vector_verifies() -> None:
    headers = {"X-Shopify-Hmac-Sha256": VECTOR_SIGNATURE}

    verdict = SOURCE.verify(VECTOR_BODY, headers, [CURRENT], url=URL)

    assert verdict.ok is True


def test_tampered_body_fails_verification() -> None:
    tampered = VECTOR_BODY.replace(b"404.95", b"4.95")

    verdict = SOURCE.verify(tampered, {"X-Shopify-Hmac-Sha256": VECTOR_SIGNATURE}, [CURRENT], url=URL)

    assert verdict.ok is False
    assert "does not match" in verdict.reason


def test_wrong_secret_fails_verification() -> None:
    verdict = SOURCE.verify(VECTOR_BODY, signed_headers(VECTOR_BODY, "someone-else"), [CURRENT], url=URL)

    assert verdict.ok is False
    assert "does not match" in verdict.reason


def test_missing_signature_header_fails_with_a_clear_reason() -> None:
    verdict = SOURCE.verify(VECTOR_BODY, {"X-Shopify-Topic": "orders/create"}, [CURRENT], url=URL)

    assert verdict.ok is False
    assert verdict.reason == "missing X-Shopify-Hmac-Sha256 header"


def test_signature_that_is_not_base64_fails_with_a_clear_reason() -> None:
    headers = {"X-Shopify-Hmac-Sha256": "not base64 at all!"}

    verdict = SOURCE.verify(VECTOR_BODY, headers, [CURRENT], url=URL)

    assert verdict.ok is False
    assert verdict.reason == "X-Shopify-Hmac-Sha256 is not base64"


def test_hex_digest_instead_of_base64_fails() -> None:
    hex_digest = hmac.new(CURRENT.encode(), VECTOR_BODY, hashlib.sha256).hexdigest()

    verdict = SOURCE.verify(VECTOR_BODY, {"X-Shopify-Hmac-Sha256": hex_digest}, [CURRENT], url=URL)

    assert verdict.ok is False


def test_previous_secret_is_accepted_during_rotation() -> None:
    headers = signed_headers(VECTOR_BODY, PREVIOUS)

    verdict = SOURCE.verify(VECTOR_BODY, headers, [CURRENT, PREVIOUS], url=URL)

    assert verdict.ok is True
    assert "previous" in verdict.reason


def test_previous_secret_is_refused_once_rotation_is_over() -> None:
    headers = signed_headers(VECTOR_BODY, PREVIOUS)

    verdict = SOURCE.verify(VECTOR_BODY, headers, [CURRENT, ""], url=URL)

    assert verdict.ok is False


def test_current_secret_is_checked_before_the_previous_one(monkeypatch: pytest.MonkeyPatch) -> None:
    signed_with_current = signed_headers(VECTOR_BODY, CURRENT)
    signed_with_previous = signed_headers(VECTOR_BODY, PREVIOUS)
    tried: list[str] = []
    real_digest = shopify._digest

    def recording_digest(body: bytes, secret: str) -> bytes:
        tried.append(secret)
        return real_digest(body, secret)

    monkeypatch.setattr(shopify, "_digest", recording_digest)

    current_verdict = SOURCE.verify(VECTOR_BODY, signed_with_current, [CURRENT, PREVIOUS], url=URL)
    tried_for_current = list(tried)
    tried.clear()
    previous_verdict = SOURCE.verify(VECTOR_BODY, signed_with_previous, [CURRENT, PREVIOUS], url=URL)

    assert current_verdict.ok is True
    assert current_verdict.reason == ""
    assert tried_for_current == [CURRENT]
    assert previous_verdict.ok is True
    assert tried == [CURRENT, PREVIOUS]


def test_no_configured_secret_fails_verification() -> None:
    verdict = SOURCE.verify(VECTOR_BODY, signed_headers(VECTOR_BODY), ["", ""], url=URL)

    assert verdict.ok is False
    assert "no API secret" in verdict.reason


def test_signature_header_is_found_whatever_its_case() -> None:
    headers = {"x-shopify-hmac-sha256": VECTOR_SIGNATURE}

    assert SOURCE.verify(VECTOR_BODY, headers, [CURRENT], url=URL).ok is True


def test_signature_covers_the_raw_bytes_not_the_parsed_json() -> None:
    raw = b'{ "total_price": "404.95",  "id": 820982911946154508 }'
    reserialised = json.dumps(json.loads(raw)).encode()
    headers = signed_headers(raw)

    assert SOURCE.verify(raw, headers, [CURRENT], url=URL).ok is True
    assert SOURCE.verify(reserialised, headers, [CURRENT], url=URL).ok is False


# --- finding the connection ------------------------------------------------------------------


def test_connection_is_looked_up_by_the_lowercased_shop_domain() -> None:
    ref = SOURCE.connection_ref({"X-Shopify-Shop-Domain": " JSmith.MyShopify.com "}, None)

    assert ref.lookup_key == "jsmith.myshopify.com"


def test_delivery_without_a_shop_domain_is_malformed() -> None:
    with pytest.raises(MalformedDelivery, match="X-Shopify-Shop-Domain"):
        SOURCE.connection_ref({"X-Shopify-Topic": "orders/create"}, None)


# --- inbox items -----------------------------------------------------------------------------


def test_event_id_is_preferred_as_the_dedupe_key() -> None:
    headers = delivery_headers(**{"X-Shopify-Event-Id": "evt-1", "X-Shopify-Webhook-Id": "wh-1"})

    (item,) = SOURCE.items(VECTOR_BODY, headers)

    assert item.delivery_key == "orders/create:event:evt-1"


def test_webhook_id_is_the_dedupe_key_when_there_is_no_event_id() -> None:
    (item,) = SOURCE.items(VECTOR_BODY, delivery_headers(**{"X-Shopify-Webhook-Id": "wh-1"}))

    assert item.delivery_key == "orders/create:webhook:wh-1"


def test_body_hash_is_the_dedupe_key_when_there_is_no_id_header() -> None:
    expected = hashlib.sha256(b"orders/create" + VECTOR_BODY).hexdigest()

    (first,) = SOURCE.items(VECTOR_BODY, delivery_headers())
    (again,) = SOURCE.items(VECTOR_BODY, delivery_headers())
    (other_topic,) = SOURCE.items(VECTOR_BODY, delivery_headers("orders/updated"))

    assert first.delivery_key == f"orders/create:sha256:{expected}"
    assert again.delivery_key == first.delivery_key
    assert other_topic.delivery_key != first.delivery_key


def test_one_merchant_action_on_two_topics_is_not_a_duplicate() -> None:
    """Shopify shares one event id across every delivery of a merchant action (create + paid)."""
    (created,) = SOURCE.items(
        VECTOR_BODY, delivery_headers("orders/create", **{"X-Shopify-Event-Id": "evt-1"})
    )
    (paid,) = SOURCE.items(VECTOR_BODY, delivery_headers("orders/paid", **{"X-Shopify-Event-Id": "evt-1"}))

    assert created.delivery_key != paid.delivery_key


def test_item_keeps_the_raw_body_the_webhook_id_and_only_useful_headers() -> None:
    raw = b'{ "id": 820982911946154508,\n  "email": "j\xc3\xb6n@example.com" }'
    headers = {
        **signed_headers(raw),
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "7b8c9d0a-1234-5678-90ab-cdef12345678",
        "X-Shopify-Triggered-At": "2026-01-29T15:00:00.000Z",
        "X-Shopify-API-Version": "2026-01",
        "User-Agent": "Shopify-Captain-Hook",
    }

    (item,) = SOURCE.items(raw, headers)

    assert item.topic == "orders/create"
    assert item.body == raw.decode("utf-8")
    assert item.webhook_id == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert item.headers == {
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": "jsmith.myshopify.com",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "7b8c9d0a-1234-5678-90ab-cdef12345678",
        "X-Shopify-Triggered-At": "2026-01-29T15:00:00.000Z",
        "X-Shopify-API-Version": "2026-01",
    }


@pytest.mark.parametrize("body", [b'{"id": 1,', b"", b"\xff\xfe{}", b"null"])
def test_body_that_is_not_json_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedDelivery, match="not valid JSON|not a JSON object"):
        SOURCE.items(body, delivery_headers())


def test_body_that_is_a_json_array_is_malformed() -> None:
    with pytest.raises(MalformedDelivery, match="not a JSON object"):
        SOURCE.items(b"[1, 2]", delivery_headers())


def test_unknown_topic_is_malformed() -> None:
    with pytest.raises(MalformedDelivery, match="unknown topic 'products/update'"):
        SOURCE.items(VECTOR_BODY, delivery_headers("products/update"))


def test_missing_topic_is_malformed() -> None:
    with pytest.raises(MalformedDelivery, match="missing X-Shopify-Topic"):
        SOURCE.items(VECTOR_BODY, {"X-Shopify-Shop-Domain": "jsmith.myshopify.com"})


@pytest.mark.parametrize(
    "topic", ["customers/data_request", "customers/redact", "shop/redact", "app/uninstalled"]
)
def test_mandatory_and_lifecycle_topics_are_stored(topic: str) -> None:
    (item,) = SOURCE.items(
        b'{"shop_id": 954889, "shop_domain": "jsmith.myshopify.com"}', delivery_headers(topic)
    )

    assert item.topic == topic


# --- orders ----------------------------------------------------------------------------------


def test_documented_order_becomes_one_snapshot() -> None:
    events = SOURCE.normalize("orders/create", order())

    assert events == [
        OrderSnapshot(
            external_id="820982911946154508",
            customer=CustomerRef(
                external_id="115310627314723954",
                email="john@example.com",
                first_name="John",
                last_name="Smith",
                created_at=None,
            ),
            currency="USD",
            total=Decimal("404.95"),
            placed_at=datetime(2022, 1, 1, 0, 0, tzinfo=UTC),
            updated_at=datetime(2022, 1, 1, 0, 0, tzinfo=UTC),
            paid=False,
            cancelled=True,
            refunds=(),
            line_items=(
                LineItem(
                    product_id="788032119674292922",
                    title="Aviator sunglasses",
                    quantity=1,
                    price=Decimal("89.99"),
                ),
            ),
        )
    ]


def test_order_timestamps_with_offsets_become_aware_utc() -> None:
    event = snapshot(created_at="2026-01-29T10:00:00-05:00", updated_at="2026-01-30T09:30:00+05:30")

    assert event.placed_at == datetime(2026, 1, 29, 15, 0, tzinfo=UTC)
    assert event.placed_at.tzinfo is UTC
    assert event.updated_at == datetime(2026, 1, 30, 4, 0, tzinfo=UTC)


def test_order_total_is_a_decimal_in_shop_money_not_the_buyers_currency() -> None:
    event = snapshot(
        currency="USD",
        presentment_currency="CAD",
        total_price="110.10",
        total_price_set={
            "shop_money": {"amount": "110.10", "currency_code": "USD"},
            "presentment_money": {"amount": "150.00", "currency_code": "CAD"},
        },
    )

    assert event.total == Decimal("110.10")
    assert isinstance(event.total, Decimal)
    assert event.currency == "USD"


def test_order_total_falls_back_to_total_price_without_money_sets() -> None:
    payload = order(total_price="19.99", currency="EUR")
    del payload["total_price_set"]

    (event,) = SOURCE.normalize("orders/updated", payload)

    assert isinstance(event, OrderSnapshot)
    assert event.total == Decimal("19.99")
    assert event.currency == "EUR"


@pytest.mark.parametrize(
    ("financial_status", "paid"),
    [
        ("paid", True),
        ("partially_paid", True),
        ("partially_refunded", True),
        ("refunded", True),
        ("pending", False),
        ("authorized", False),
        ("voided", False),
        (None, False),
    ],
)
def test_order_is_paid_according_to_its_financial_status(financial_status: str | None, paid: bool) -> None:
    assert snapshot("orders/updated", financial_status=financial_status).paid is paid


def test_orders_paid_topic_means_paid_even_before_the_status_catches_up() -> None:
    assert snapshot("orders/paid", financial_status="pending").paid is True


def test_order_with_cancelled_at_is_cancelled() -> None:
    assert snapshot("orders/cancelled", cancelled_at="2026-02-01T12:00:00+01:00").cancelled is True
    assert snapshot("orders/updated", cancelled_at=None, cancel_reason=None).cancelled is False


def test_order_refunds_sum_only_successful_refund_transactions() -> None:
    refund = copy.deepcopy(DOCUMENTED_REFUND)
    refund["transactions"] = [
        {"id": 1, "kind": "refund", "status": "success", "amount": "41.94"},
        {"id": 2, "kind": "refund", "status": "success", "amount": "10.00"},
        {"id": 3, "kind": "refund", "status": "failure", "amount": "99.00"},
        {"id": 4, "kind": "refund", "status": "pending", "amount": "7.00"},
        {"id": 5, "kind": "sale", "status": "success", "amount": "500.00"},
    ]

    event = snapshot("orders/updated", financial_status="partially_refunded", refunds=[refund])

    assert event.refunds == (
        Refund(
            refund_id="929361464",
            amount=Decimal("51.94"),
            created_at=datetime(2020, 1, 14, 15, 34, 55, tzinfo=UTC),
        ),
    )


def test_refund_without_transactions_falls_back_to_its_refunded_line_items() -> None:
    refund = copy.deepcopy(DOCUMENTED_REFUND)
    refund["transactions"] = []

    event = snapshot("orders/updated", refunds=[refund])

    assert event.refunds[0].amount == Decimal("199.00")


def test_guest_checkout_is_identified_by_the_order_email() -> None:
    event = snapshot(customer=None, email="guest@example.com", contact_email="guest@example.com")

    assert event.customer == CustomerRef(external_id=None, email="guest@example.com")


def test_guest_checkout_without_any_email_has_no_customer() -> None:
    payload = order(email=None, contact_email=None)
    del payload["customer"]

    (event,) = SOURCE.normalize("orders/create", payload)

    assert isinstance(event, OrderSnapshot)
    assert event.customer is None


def test_customer_without_email_takes_the_order_email() -> None:
    customer = dict(DOCUMENTED_ORDER["customer"], email=None)

    event = snapshot(customer=customer, email="", contact_email="jon@example.com")

    assert event.customer is not None
    assert event.customer.external_id == "115310627314723954"
    assert event.customer.email == "jon@example.com"


def test_customer_account_creation_is_read_in_utc() -> None:
    customer = dict(DOCUMENTED_ORDER["customer"], created_at="2024-03-10T01:30:00-08:00")

    event = snapshot(customer=customer)

    assert event.customer is not None
    assert event.customer.created_at == datetime(2024, 3, 10, 9, 30, tzinfo=UTC)


def test_test_orders_are_still_normalised() -> None:
    event = snapshot(test=True, financial_status="paid", cancelled_at=None)

    assert event.external_id == "820982911946154508"
    assert event.paid is True


def test_stored_body_text_can_be_normalised_directly() -> None:
    (event,) = SOURCE.normalize("orders/create", json.dumps(order()))

    assert isinstance(event, OrderSnapshot)
    assert event.external_id == "820982911946154508"


def test_order_without_id_is_malformed() -> None:
    payload = order()
    del payload["id"]

    with pytest.raises(MalformedDelivery, match=r"^id is missing"):
        SOURCE.normalize("orders/create", payload)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"created_at": None}, "created_at"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"created_at": "2026-01-29T10:00:00"}, "created_at"),
        ({"total_price_set": {"shop_money": {"amount": "lots", "currency_code": "USD"}}}, "amount"),
        ({"total_price_set": {"shop_money": {"amount": "NaN", "currency_code": "USD"}}}, "amount"),
        ({"line_items": [{"title": "x", "quantity": "1", "price": "1.00"}]}, "line_items[0].quantity"),
        ({"refunds": [{"transactions": []}]}, "refunds[0].id"),
        ({"refunds": "none"}, "refunds"),
        ({"customer": {"id": True}}, "customer.id"),
    ],
)
def test_invalid_order_field_is_malformed_and_named(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(MalformedDelivery) as raised:
        SOURCE.normalize("orders/create", order(**changes))

    assert field in str(raised.value)


# --- other topics ----------------------------------------------------------------------------


def test_refunds_create_becomes_a_refund_of_its_order() -> None:
    events = SOURCE.normalize("refunds/create", copy.deepcopy(DOCUMENTED_REFUND))

    assert events == [
        OrderRefunded(
            order_external_id="450789469",
            customer=None,
            refund=Refund(
                refund_id="929361464",
                amount=Decimal("41.94"),
                created_at=datetime(2020, 1, 14, 15, 34, 55, tzinfo=UTC),
            ),
        )
    ]


def test_refunds_create_without_order_id_is_malformed() -> None:
    payload = copy.deepcopy(DOCUMENTED_REFUND)
    del payload["order_id"]

    with pytest.raises(MalformedDelivery, match="order_id"):
        SOURCE.normalize("refunds/create", payload)


@pytest.mark.parametrize("topic", ["customers/create", "customers/update"])
def test_customer_topics_become_customer_updates(topic: str) -> None:
    events = SOURCE.normalize(topic, copy.deepcopy(DOCUMENTED_CUSTOMER))

    assert events == [
        CustomerUpdated(
            customer=CustomerRef(
                external_id="706405506930370084",
                email="bob@biller.com",
                first_name="Bob",
                last_name="Biller",
                created_at=datetime(2022, 1, 1, 0, 0, tzinfo=UTC),
            )
        )
    ]


def test_customer_without_id_is_malformed() -> None:
    payload = copy.deepcopy(DOCUMENTED_CUSTOMER)
    del payload["id"]

    with pytest.raises(MalformedDelivery, match="customer.id"):
        SOURCE.normalize("customers/update", payload)


def test_app_uninstalled_becomes_connection_uninstalled() -> None:
    payload = {"id": 548380009, "name": "Super Toys", "myshopify_domain": "jsmith.myshopify.com"}

    assert SOURCE.normalize("app/uninstalled", payload) == [ConnectionUninstalled()]


# The privacy topics are read in tests/webhooks/test_shopify_privacy.py.


def test_unknown_topic_cannot_be_normalised() -> None:
    with pytest.raises(MalformedDelivery, match="unknown topic"):
        SOURCE.normalize("products/update", {"id": 1})


def test_non_object_payload_is_malformed() -> None:
    with pytest.raises(MalformedDelivery, match="not a JSON object"):
        SOURCE.normalize("orders/create", [order()])
