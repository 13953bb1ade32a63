"""Shopify's mandatory privacy topics read into canonical privacy events. Pure, no database.

The payloads are the documented examples of
https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance
(customers/data_request, customers/redact, shop/redact), including its note that a customer
record may contain only an email address.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from plugin.events import CustomerDataRequested, CustomerRedactRequested, CustomerRef, ShopRedactRequested
from webhooks.base import MalformedDelivery
from webhooks.shopify import ShopifySource, sign

SOURCE = ShopifySource()

DATA_REQUEST: dict[str, Any] = {
    "shop_id": 954889,
    "shop_domain": "{shop}.myshopify.com",
    "orders_requested": [299938, 280263, 220458],
    "customer": {"id": 191167, "email": "john@example.com", "phone": "555-625-1199"},
    "data_request": {"id": 9999},
}

CUSTOMER_REDACT: dict[str, Any] = {
    "shop_id": 954889,
    "shop_domain": "{shop}.myshopify.com",
    "customer": {"id": 191167, "email": "john@example.com", "phone": "555-625-1199"},
    "orders_to_redact": [299938, 280263, 220458],
}

SHOP_REDACT: dict[str, Any] = {"shop_id": 954889, "shop_domain": "{shop}.myshopify.com"}


def with_changes(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    changed.update(changes)
    return changed


def test_customers_redact_names_the_customer_and_the_orders_to_erase() -> None:
    assert SOURCE.normalize("customers/redact", CUSTOMER_REDACT) == [
        CustomerRedactRequested(
            customer=CustomerRef(external_id="191167", email="john@example.com"),
            order_external_ids=("299938", "280263", "220458"),
        )
    ]


def test_customers_redact_for_a_customer_known_only_by_email() -> None:
    payload = with_changes(CUSTOMER_REDACT, customer={"email": "john@example.com"})

    (event,) = SOURCE.normalize("customers/redact", payload)

    assert isinstance(event, CustomerRedactRequested)
    assert event.customer == CustomerRef(email="john@example.com")


@pytest.mark.parametrize("orders", [[], None])
def test_customers_redact_without_orders_redacts_no_orders(orders: Any) -> None:
    (event,) = SOURCE.normalize("customers/redact", with_changes(CUSTOMER_REDACT, orders_to_redact=orders))

    assert isinstance(event, CustomerRedactRequested)
    assert event.order_external_ids == ()


def test_customers_redact_keeps_no_phone_or_other_personal_field() -> None:
    (event,) = SOURCE.normalize("customers/redact", CUSTOMER_REDACT)

    assert "555-625-1199" not in repr(event)


def test_customers_data_request_carries_the_request_id() -> None:
    assert SOURCE.normalize("customers/data_request", DATA_REQUEST) == [
        CustomerDataRequested(
            customer=CustomerRef(external_id="191167", email="john@example.com"), request_id="9999"
        )
    ]


def test_customers_data_request_without_a_request_id_is_still_a_request() -> None:
    payload = copy.deepcopy(DATA_REQUEST)
    del payload["data_request"]

    (event,) = SOURCE.normalize("customers/data_request", payload)

    assert isinstance(event, CustomerDataRequested)
    assert event.request_id is None


def test_shop_redact_asks_to_erase_the_shop() -> None:
    assert SOURCE.normalize("shop/redact", SHOP_REDACT) == [ShopRedactRequested()]


@pytest.mark.parametrize("topic", ["customers/redact", "customers/data_request"])
@pytest.mark.parametrize(
    ("customer", "message"),
    [
        (None, "customer is missing"),
        ("191167", "customer is missing or not an object"),
        ({"phone": "555-625-1199"}, "neither an id nor an email"),
        ({"id": True, "email": "john@example.com"}, "customer.id"),
    ],
)
def test_a_customer_privacy_request_without_a_usable_customer_is_malformed(
    topic: str, customer: Any, message: str
) -> None:
    base = CUSTOMER_REDACT if topic == "customers/redact" else DATA_REQUEST
    payload = with_changes(base, customer=customer)

    with pytest.raises(MalformedDelivery, match=message):
        SOURCE.normalize(topic, payload)


@pytest.mark.parametrize("orders", ["299938", [299938, {"id": 1}], [299938, None]])
def test_orders_to_redact_that_are_not_ids_are_malformed(orders: Any) -> None:
    with pytest.raises(MalformedDelivery, match="orders_to_redact"):
        SOURCE.normalize("customers/redact", with_changes(CUSTOMER_REDACT, orders_to_redact=orders))


def test_a_signed_privacy_delivery_becomes_one_inbox_item_and_its_event() -> None:
    body = b'{"shop_id":954889,"shop_domain":"jsmith.myshopify.com","customer":{"id":191167,"email":"john@example.com","phone":"555-625-1199"},"orders_to_redact":[299938]}'
    headers = {
        "X-Shopify-Hmac-Sha256": sign(body, "hush"),
        "X-Shopify-Topic": "customers/redact",
        "X-Shopify-Shop-Domain": "jsmith.myshopify.com",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    }

    assert SOURCE.verify(body, headers, ["hush"], url="https://milestones.example.com/webhooks/shopify").ok
    (item,) = SOURCE.items(body, headers)
    (event,) = SOURCE.normalize(item.topic, item.body)

    assert item.delivery_key == "customers/redact:webhook:b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert event == CustomerRedactRequested(
        customer=CustomerRef(external_id="191167", email="john@example.com"), order_external_ids=("299938",)
    )
