"""A WooCommerce store end to end: signed deliveries through the real endpoint, inline jobs, and
the credit coupon sent to a faked store (https://woocommerce.github.io/woocommerce-rest-api-docs/
#create-a-coupon). Orders are REST v3 order resources, as order.* webhooks deliver them
(https://woocommerce.github.io/woocommerce-rest-api-docs/#order-properties)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import responses
from flask.testing import FlaskClient
from sqlalchemy import select

from connectors.woocommerce import credit_code
from plugin.models import Customer, Effect, InboxDelivery, Order
from tests.conftest import add_connection, services_of
from tests.support import count, metric, milestone_keys
from webhooks.woocommerce import sign

SECRET = "woo-webhook-secret"
STORE_API = "https://woo.test/wp-json/wc/v3"
ALICE = "alice@example.com"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _gmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def woo_order(number: int, status: str = "processing", total: str = "12.00", *, modified: int = 0,
              refunds: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Order ``number`` of Alice (customer 7001), ``modified`` minutes after it was placed."""
    placed = T0 + timedelta(days=number)
    paid = status in ("processing", "completed", "refunded")
    return {
        "id": 5000 + number,
        "parent_id": 0,
        "number": str(5000 + number),
        "status": status,
        "currency": "USD",
        "date_created": _gmt(placed),
        "date_created_gmt": _gmt(placed),
        "date_modified": _gmt(placed + timedelta(minutes=modified)),
        "date_modified_gmt": _gmt(placed + timedelta(minutes=modified)),
        "total": total,
        "customer_id": 7001,
        "billing": {"first_name": "Alice", "last_name": "Nguyen", "company": "", "email": ALICE},
        "date_paid_gmt": _gmt(placed) if paid else None,
        "line_items": [
            {"id": 900 + number, "name": "Seasonal veg box", "product_id": 93, "variation_id": 0, "quantity": 1,
             "subtotal": total, "total": total, "sku": "", "price": float(total)},
        ],
        "refunds": refunds or [],
    }


def post(client: FlaskClient, connection_id: Any, payload: dict[str, Any], topic: str = "order.updated", *,
         secret: str = SECRET, delivery_id: str | None = None) -> Any:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": "https://red-hill-fresh.example/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": topic.split(".")[0],
        "X-WC-Webhook-Event": topic.split(".")[1],
        "X-WC-Webhook-Signature": sign(body, secret),
        "X-WC-Webhook-ID": "142",
        "X-WC-Webhook-Delivery-ID": delivery_id or uuid.uuid4().hex,
    }
    return client.post(f"/webhooks/woocommerce/{connection_id}", data=body, headers=headers)


@pytest.fixture
def store(app: Any, workspace: Any) -> Any:
    return add_connection(
        app,
        workspace.id,
        "woocommerce",
        {"store_url": "https://red-hill-fresh.example", "consumer_key": "ck_test", "consumer_secret": "cs_test",
         "webhook_secret": SECRET, "base_url": "https://woo.test"},
    )


@pytest.fixture
def woo() -> Iterator[responses.RequestsMock]:
    """The store's REST API; any call not faked here fails the effect that made it (and the test)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(
            f"{STORE_API}/coupons",
            status=201,
            json={
                "id": 719, "code": "placeholder", "amount": "10.00", "discount_type": "fixed_cart",
                "date_expires": None, "date_expires_gmt": None, "usage_limit": 1, "usage_limit_per_user": 1,
                "individual_use": False, "email_restrictions": [ALICE], "used_by": [], "meta_data": [],
            },
        )
        yield rsps


def test_an_order_counts_once_when_it_is_paid_and_a_repeat_is_ignored(app, client, store, woo):
    services = services_of(app)
    assert post(client, store.id, woo_order(1, "pending"), "order.created").status_code == 200
    assert metric(services, ALICE, "order_count") == 0

    paid = woo_order(1, "processing", modified=3)
    assert post(client, store.id, paid).get_json()["status"] == "accepted"
    # The same state again, under another delivery id (WooCommerce re-sends on another hook).
    assert post(client, store.id, paid).get_json()["status"] == "duplicate"
    assert post(client, store.id, woo_order(1, "completed", modified=60)).status_code == 200

    assert metric(services, ALICE, "order_count") == 1
    assert metric(services, ALICE, "lifetime_spend") == Decimal("12.00")
    assert count(services, InboxDelivery) == 3
    assert milestone_keys(services, ALICE) == [("order-1", 1)]


def test_a_cancellation_stops_counting_and_a_refund_reduces_spend(app, client, store, woo):
    services = services_of(app)
    for number in (1, 2, 3):
        post(client, store.id, woo_order(number))
    post(client, store.id, woo_order(2, "cancelled", modified=30))
    post(client, store.id, woo_order(3, modified=45, refunds=[{"id": 81, "reason": "bruised", "total": "-5.00"}]))

    assert metric(services, ALICE, "order_count") == 2
    assert metric(services, ALICE, "lifetime_spend") == Decimal("19.00")


def test_the_25th_paid_order_issues_exactly_one_credit_coupon(app, client, store, woo):
    services = services_of(app)
    post(client, store.id, woo_order(1, "pending"), "order.created")
    post(client, store.id, woo_order(2, "failed"))  # never paid: does not count
    for number in range(1, 25):
        post(client, store.id, woo_order(number, modified=1))
    assert metric(services, ALICE, "order_count") == 24
    assert not woo.calls
    post(client, store.id, woo_order(25, modified=1))
    post(client, store.id, woo_order(25, modified=1))  # the 25th paid order, delivered twice
    post(client, store.id, woo_order(26, modified=1))

    coupon_posts = [c for c in woo.calls if c.request.method == "POST" and c.request.url == f"{STORE_API}/coupons"]
    assert len(coupon_posts) == 1
    sent = json.loads(coupon_posts[0].request.body)
    assert sent["email_restrictions"] == [ALICE]
    assert sent["amount"] == "10.00"
    assert (sent["discount_type"], sent["usage_limit"], sent["usage_limit_per_user"]) == ("fixed_cart", 1, 1)

    with services.sessions() as session:
        effect = session.execute(select(Effect).where(Effect.kind == "store_credit")).scalar_one()
        customer = session.execute(select(Customer).where(Customer.email == ALICE)).scalar_one()
    assert effect.status == "succeeded"
    assert effect.external_id == "719"
    assert sent["code"] == credit_code(effect.payload["request"]["idempotency_key"])
    assert effect.payload["result"]["code"] == sent["code"]  # what the celebration email quotes
    assert effect.payload["request"]["customer_external_id"] == "7001"
    assert customer.first_name == "Alice"
    assert ("order-25", 1) in milestone_keys(services, ALICE)


def test_a_bad_signature_is_refused_with_401_and_stores_nothing(app, client, store, woo):
    services = services_of(app)
    response = post(client, store.id, woo_order(1), secret="not-the-secret")
    assert response.status_code == 401
    assert count(services, InboxDelivery) == 0
    assert count(services, Order) == 0


def test_an_unknown_connection_is_404(app, client, store, woo):
    response = post(client, uuid.uuid4(), woo_order(1))
    assert response.status_code == 404
    assert count(services_of(app), InboxDelivery) == 0


def test_the_creation_ping_is_answered_200_and_stores_nothing(app, client, store, woo):
    response = client.post(
        f"/webhooks/woocommerce/{store.id}",
        data=b"webhook_id=142",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert count(services_of(app), InboxDelivery) == 0


def test_a_signed_topic_we_do_not_use_is_acknowledged_and_not_stored(app, client, store, woo):
    response = post(client, store.id, {"id": 93, "name": "Woo Single #1"}, "product.updated")
    assert response.status_code == 200
    assert count(services_of(app), InboxDelivery) == 0
