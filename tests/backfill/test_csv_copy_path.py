"""On PostgreSQL a clean CSV page is read by COPY; it must land exactly as the Python reader lands it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from plugin.backfill import csv_copy, importer
from plugin.db import transaction
from plugin.models import Customer, Order
from plugin.workspaces import create_workspace
from tests.backfill.support import backfill, csv_file
from tests.conftest import add_connection, services_of

COLUMNS = ("order_id", "customer_id", "email", "first_name", "last_name", "customer_created_at", "placed_at",
           "updated_at", "total", "currency", "status", "refunded", "ignored")
ROWS = [
    {"order_id": "1", "customer_id": "77", "email": " Mia@Example.com ", "first_name": "Mia", "last_name": "Ito",
     "customer_created_at": "2021-02-03T04:05:06+02:00", "placed_at": "2021-03-01", "total": "12.5",
     "currency": "eur", "ignored": "x"},
    {"order_id": "2", "customer_id": "77", "email": "mia@example.com", "placed_at": "2021-03-02 10:00:00",
     "updated_at": "2022-01-01T00:00:00Z", "total": "30.00", "currency": "EUR", "status": "Refunded"},
    {"order_id": "3", "email": "guest@example.com", "placed_at": "2021-03-03T10:00:00.123456Z", "total": "40",
     "currency": "EUR", "status": "partially_refunded", "refunded": "4.50", "first_name": "Gus"},
    {"order_id": "4", "customer_id": "78", "placed_at": "2021-03-04T10:00:00Z", "total": "5.00", "currency": "EUR",
     "status": "cancelled"},
    {"order_id": "5", "email": "guest@example.com", "placed_at": "2021-03-05T10:00:00Z", "total": "7.00",
     "currency": "EUR", "status": "pending"},
]


def _ledger(app: Any, connection_id: Any) -> list[tuple[Any, ...]]:
    with services_of(app).sessions() as session:
        rows = session.execute(
            select(Order.external_id, Order.currency, Order.total, Order.refunded, Order.refunds, Order.paid,
                   Order.cancelled, Order.counted, Order.placed_at, Order.source_updated_at, Order.line_items,
                   Customer.email, Customer.first_name, Customer.last_name, Customer.customer_since,
                   Customer.since_local)
            .outerjoin(Customer, Customer.id == Order.customer_id)
            .where(Order.connection_id == connection_id)
            .order_by(Order.external_id)
        ).all()
    return [tuple(r) for r in rows]


def test_the_copy_path_and_the_row_reader_import_the_same_rows(app, workspace, shop, tmp_path, monkeypatch):
    path = str(csv_file(tmp_path / "h.csv", ROWS, COLUMNS))
    read_in_python = []
    monkeypatch.setattr(importer, "parse_chunk", lambda chunk: read_in_python.append(chunk) or [])
    backfill(app, shop.id, file=path)
    assert read_in_python == []  # the clean page went through COPY
    monkeypatch.undo()

    with transaction(services_of(app).sessions) as session:
        other, _ = create_workspace(session, "Other shop", slug="other-shop")
    second = add_connection(app, other.id, "shopify", {"shop_domain": "other.myshopify.com", "access_token": "x",
                                                       "api_secret": "y"})
    monkeypatch.setattr(csv_copy, "stage", lambda session, chunk: False)
    backfill(app, second.id, file=path)

    by_copy, by_python = _ledger(app, shop.id), _ledger(app, second.id)
    assert by_copy == by_python
    assert [r[7] for r in by_copy] == [True, False, True, False, False]  # counted
    assert by_copy[0][14] == datetime(2021, 2, 3, 2, 5, 6, tzinfo=UTC)  # customer since, in UTC
    assert by_copy[2][4] == {"csv": "4.50"}


def test_a_page_with_an_unusual_row_is_read_in_python_and_the_row_reported(app, shop, tmp_path):
    rows = [*ROWS, {"order_id": "6", "placed_at": "2021-02-30", "total": "1", "currency": "EUR"}]
    result = backfill(app, shop.id, file=str(csv_file(tmp_path / "h.csv", rows, COLUMNS)))
    assert (result.orders, result.skipped) == (5, 1)
    assert "placed_at" in result.problems[0]


def test_an_order_twice_in_one_page_is_merged_by_the_ledger_rules(app, shop, tmp_path):
    rows = [{"order_id": "9", "customer_id": "1", "placed_at": "2021-03-01", "total": "10", "currency": "USD",
             "status": "paid"},
            {"order_id": "9", "customer_id": "1", "placed_at": "2021-03-01", "updated_at": "2021-03-05",
             "total": "10", "currency": "USD", "status": "cancelled"}]
    result = backfill(app, shop.id, file=str(csv_file(tmp_path / "h.csv", rows, COLUMNS)))
    assert (result.orders, result.known_orders) == (2, 1)
    with services_of(app).sessions() as session:
        order = session.execute(select(Order)).scalar_one()
    assert (order.paid, order.cancelled, order.counted) == (True, True, False)  # sticky, like webhooks
