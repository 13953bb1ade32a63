"""WooCommerce history through the REST API v3, faked with ``responses`` on documented shapes.

``GET /wp-json/wc/v3/customers`` and ``/orders`` answer a JSON list per ``page``/``per_page`` with
``X-WP-Total`` and ``X-WP-TotalPages`` (https://woocommerce.github.io/woocommerce-rest-api-docs/#pagination);
the resources are the "Retrieve a customer" / "Retrieve an order" examples, trimmed
(https://woocommerce.github.io/woocommerce-rest-api-docs/#customer-properties, #order-properties).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import responses
from sqlalchemy import select

from connectors.errors import ConnectorError
from plugin.models import BackfillRun, Order
from plugin.models.backfill import FAILED
from tests.backfill.support import backfill, metrics, milestones
from tests.conftest import add_connection, services_of
from tests.support import count

STORE = "https://woo.test"
FIRST = datetime(2022, 1, 3, 10, 0, tzinfo=UTC)


def _gmt(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat()


def customer(n: int) -> dict[str, Any]:
    return {
        "id": n, "date_created": "2021-06-01T09:00:00", "date_created_gmt": "2021-06-01T12:00:00",
        "date_modified": "2021-06-01T09:00:00", "date_modified_gmt": "2021-06-01T12:00:00",
        "email": f"shopper{n}@example.com", "first_name": "Shopper", "last_name": str(n), "role": "customer",
        "username": f"shopper{n}",
        "billing": {"first_name": "Shopper", "last_name": str(n), "company": "", "email": f"shopper{n}@example.com"},
        "is_paying_customer": True, "meta_data": [],
    }


def order(n: int, customer_id: int, status: str = "completed", total: str = "20.00",
          refunds: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    placed = FIRST + timedelta(days=n)
    return {
        "id": n, "parent_id": 0, "number": str(n), "status": status, "currency": "USD",
        "date_created": _gmt(placed), "date_created_gmt": _gmt(placed),
        "date_modified": _gmt(placed + timedelta(hours=1)), "date_modified_gmt": _gmt(placed + timedelta(hours=1)),
        "date_paid_gmt": _gmt(placed) if status in ("processing", "completed") else None,
        "total": total, "customer_id": customer_id,
        "billing": {"first_name": "Shopper", "last_name": str(customer_id), "company": "",
                    "email": f"shopper{customer_id}@example.com"},
        "line_items": [{"id": 1, "name": "Apples", "product_id": 93, "quantity": 2, "total": total, "price": 10}],
        "refunds": refunds or [],
    }


CUSTOMERS = [customer(n) for n in range(1, 121)]  # two pages of 100
ORDERS = [order(n, 1 + n % 120) for n in range(1, 151)]  # two pages of 100
ORDERS[0] = order(1, 2, refunds=[{"id": 726, "reason": "", "total": "-5.00"}])
ORDERS[1] = order(2, 2, status="cancelled")


class FakeWoo:
    def __init__(self, fail: dict[tuple[str, int], int] | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.fail = fail or {}

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        assert request.headers["Authorization"].startswith("Basic ")
        resource = request.path_url.split("?")[0].rsplit("/", 1)[1]
        params = request.params
        page, size = int(params["page"]), int(params["per_page"])
        assert (params["orderby"], params["order"]) == ("id", "asc")
        self.calls.append((resource, page))
        if (resource, page) in self.fail:
            return self.fail.pop((resource, page)), {}, json.dumps({"code": "woocommerce_rest_cannot_view"})
        items = CUSTOMERS if resource == "customers" else ORDERS
        headers = {"X-WP-Total": str(len(items)), "X-WP-TotalPages": str(math.ceil(len(items) / size))}
        return 200, headers, json.dumps(items[(page - 1) * size : page * size])


@pytest.fixture
def store(app, workspace) -> Any:
    return add_connection(app, workspace.id, "woocommerce",
                          {"store_url": STORE, "consumer_key": "ck_test", "consumer_secret": "cs_test"})


def mocked(fake: FakeWoo) -> responses.RequestsMock:
    rsps = responses.RequestsMock()
    for resource in ("customers", "orders"):
        rsps.add_callback(responses.GET, f"{STORE}/wp-json/wc/v3/{resource}", callback=fake)
    return rsps


@pytest.fixture
def woo() -> Iterator[FakeWoo]:
    fake = FakeWoo()
    with mocked(fake):
        yield fake


def test_customers_then_orders_are_read_page_by_page_into_the_ledger(app, store, woo):
    result = backfill(app, store.id)
    assert woo.calls == [("customers", 1), ("customers", 2), ("orders", 1), ("orders", 2)]
    assert (result.source, result.pages, result.orders, result.new_customers) == ("woocommerce", 4, 150, 120)
    # shopper2: order 1 (20 - 5 refunded), order 2 cancelled, order 121 → 2 counted, $35
    assert metrics(app, "shopper2@example.com") == {"order_count": 2, "lifetime_spend": Decimal("35.00")}
    with services_of(app).sessions() as session:
        first = session.execute(select(Order).where(Order.external_id == "1")).scalar_one()
    assert first.refunds == {"726": "5.00"} and first.placed_at == FIRST + timedelta(days=1)
    assert milestones(app, "shopper2@example.com")[("order-1", 1)] == ("historical", first.placed_at)


def test_a_failed_page_stops_the_run_and_the_next_run_resumes_there(app, store):
    fake = FakeWoo(fail={("orders", 2): 403})
    with mocked(fake):
        with pytest.raises(ConnectorError):
            backfill(app, store.id)
        with services_of(app).sessions() as session:
            run = session.execute(select(BackfillRun)).scalar_one()
        assert (run.status, run.cursor) == (FAILED, {"stage": "orders", "page": 1})
        assert count(services_of(app), Order) == 100
        fake.calls.clear()
        result = backfill(app, store.id)
    assert fake.calls == [("orders", 2)]
    assert result.resumed and result.orders == 150
    assert count(services_of(app), Order) == 150
