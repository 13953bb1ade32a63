"""Shopify history through the Admin GraphQL API, faked with ``responses`` on documented shapes.

Shapes: the ``customers`` and ``orders`` connections with ``pageInfo { hasNextPage endCursor }``
and ``nodes`` (https://shopify.dev/docs/api/usage/pagination-graphql), Customer
(legacyResourceId, firstName, lastName, createdAt, defaultEmailAddress { emailAddress } — 2025-04+),
Order (legacyResourceId, email, createdAt, processedAt, updatedAt, cancelledAt,
displayFinancialStatus, totalPriceSet.shopMoney, customer, refunds[].totalRefundedSet, lineItems).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import responses
from sqlalchemy import select

from connectors.errors import ConnectorError
from connectors.shopify import ShopifyConnector
from plugin.backfill.shopify import ShopifyHistory
from plugin.connections import view_of
from plugin.models import BackfillRun, Customer, Order
from plugin.models.backfill import FAILED, FINISHED
from tests.backfill.support import backfill, metrics, milestones
from tests.conftest import services_of
from tests.support import count

URL = "https://shop.test/admin/api/2025-07/graphql.json"


def customer(n: int, email: str, created: str = "2021-03-04T10:00:00Z") -> dict[str, Any]:
    return {"legacyResourceId": str(n), "firstName": f"First{n}", "lastName": f"Last{n}", "createdAt": created,
            "defaultEmailAddress": {"emailAddress": email}}


def order(n: int, who: dict[str, Any] | None, processed: str, *, total: str = "40.00", status: str = "PAID",
          cancelled: str | None = None, refunds: list[tuple[int, str]] = (), email: str | None = None) -> dict[str, Any]:
    return {
        "legacyResourceId": str(n),
        "email": email or ((who or {}).get("defaultEmailAddress") or {}).get("emailAddress"),
        "createdAt": "2026-02-01T08:00:00Z",  # the day it was imported into Shopify
        "processedAt": processed,  # when it was really placed
        "updatedAt": "2026-02-01T08:00:00Z",
        "cancelledAt": cancelled,
        "displayFinancialStatus": status,
        "totalPriceSet": {"shopMoney": {"amount": total, "currencyCode": "USD"}},
        "customer": who,
        "refunds": [{"legacyResourceId": str(r), "createdAt": "2026-02-02T08:00:00Z",
                     "totalRefundedSet": {"shopMoney": {"amount": amount, "currencyCode": "USD"}}}
                    for r, amount in refunds],
        "lineItems": {"nodes": [{"title": "Veg box", "quantity": 1, "product": {"legacyResourceId": "501"},
                                 "originalUnitPriceSet": {"shopMoney": {"amount": total}}}]},
    }


ANN = customer(11, "ann@example.com", "2020-05-06T10:00:00Z")
BEN = customer(12, "ben@example.com")
CUSTOMER_PAGES = {None: ([ANN], "c1", True), "c1": ([BEN], "c2", False)}
ORDER_PAGES = {
    None: ([order(101, ANN, "2019-01-01T10:00:00Z"), order(102, ANN, "2019-02-01T10:00:00Z", total="100.00",
                                                            status="PARTIALLY_REFUNDED", refunds=[(7, "30.00")])],
           "o1", True),
    "o1": ([order(103, BEN, "2024-03-01T10:00:00Z", cancelled="2024-03-02T10:00:00Z", status="REFUNDED"),
            order(104, None, "2024-04-01T10:00:00Z", email="guest@example.com", status="PAID"),
            order(105, ANN, "2024-05-01T10:00:00Z", status="PENDING")],
           "o2", False),
}


class FakeShopify:
    """Answers the backfill queries page by page; ``fail`` maps a cursor to an HTTP status."""

    def __init__(self, fail: dict[tuple[str, str | None], int] | None = None) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self.fail = fail or {}

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        assert request.headers["X-Shopify-Access-Token"] == "shpat_test"
        body = json.loads(request.body)
        field = "customers" if "customers(" in body["query"] else "orders"
        after = body["variables"]["after"]
        self.calls.append((field, after))
        if (field, after) in self.fail:
            return self.fail.pop((field, after)), {}, json.dumps({"errors": "Unavailable"})
        nodes, end, more = (CUSTOMER_PAGES if field == "customers" else ORDER_PAGES)[after]
        data = {field: {"pageInfo": {"hasNextPage": more, "endCursor": end}, "nodes": nodes}}
        return 200, {"Content-Type": "application/json"}, json.dumps({"data": data})


@pytest.fixture
def shopify() -> Iterator[FakeShopify]:
    fake = FakeShopify()
    with responses.RequestsMock() as mocked:
        mocked.add_callback(responses.POST, URL, callback=fake)
        yield fake


def test_customers_then_orders_are_read_page_by_page_into_the_ledger(app, shop, shopify):
    result = backfill(app, shop.id)

    assert shopify.calls == [("customers", None), ("customers", "c1"), ("orders", None), ("orders", "o1")]
    assert (result.source, result.pages, result.orders) == ("shopify", 4, 5)
    assert metrics(app, "ann@example.com") == {"order_count": 2, "lifetime_spend": Decimal("110.00")}
    assert metrics(app, "ben@example.com") == {"order_count": 0, "lifetime_spend": Decimal("0")}
    assert metrics(app, "guest@example.com")["order_count"] == 1
    with services_of(app).sessions() as session:
        first = session.execute(select(Order).where(Order.external_id == "101")).scalar_one()
        ann = session.execute(select(Customer).where(Customer.email == "ann@example.com")).scalar_one()
    assert first.placed_at == datetime(2019, 1, 1, 10, 0, tzinfo=UTC)  # processedAt, not createdAt
    assert first.line_items == [{"product_id": "501", "title": "Veg box", "quantity": 1, "price": "40.00"}]
    assert ann.customer_since == datetime(2019, 1, 1, 10, 0, tzinfo=UTC)  # first order before the account
    assert milestones(app, "ann@example.com")[("order-1", 1)] == ("historical", first.placed_at)


def test_a_refund_seen_in_the_import_and_by_webhook_counts_once(app, shop, shopify):
    backfill(app, shop.id)
    with services_of(app).sessions() as session:
        row = session.execute(select(Order).where(Order.external_id == "102")).scalar_one()
    assert row.refunds == {"7": "30.00"}  # the REST id a refunds/create webhook carries


def test_a_failed_page_stops_the_run_and_the_next_run_resumes_after_the_last_good_page(app, shop):
    fake = FakeShopify(fail={("orders", "o1"): 401})
    with responses.RequestsMock() as mocked:
        mocked.add_callback(responses.POST, URL, callback=fake)
        with pytest.raises(ConnectorError):
            backfill(app, shop.id)
        with services_of(app).sessions() as session:
            run = session.execute(select(BackfillRun)).scalar_one()
        assert (run.status, run.cursor) == (FAILED, {"stage": "orders", "after": "o1"})
        assert "401" in (run.error or "")
        assert count(services_of(app), Order) == 2

        fake.calls.clear()
        result = backfill(app, shop.id)
    assert fake.calls == [("orders", "o1")]  # neither customers nor the first orders page again
    assert result.resumed and result.orders == 5
    assert count(services_of(app), Order) == 5
    with services_of(app).sessions() as session:
        assert session.execute(select(BackfillRun.status)).scalar_one() == FINISHED


def test_a_transient_failure_waits_and_tries_again(app, shop):
    fake = FakeShopify(fail={("customers", "c1"): 503})
    waits: list[float] = []
    with services_of(app).sessions() as session:
        from plugin.models import Connection

        settings = view_of(session.get(Connection, shop.id), services_of(app).secrets).settings
    source = ShopifyHistory(ShopifyConnector(settings), sleep=waits.append)
    with responses.RequestsMock() as mocked:
        mocked.add_callback(responses.POST, URL, callback=fake)
        result = backfill(app, shop.id, source=source)
    assert fake.calls.count(("customers", "c1")) == 2 and len(waits) == 1
    assert result.orders == 5
