"""Helpers for backfill tests: CSV files, running a backfill, reading back what it wrote."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select, text

from plugin.backfill.rows import Page, Source
from plugin.backfill.runner import Options, Result, run_backfill
from plugin.models import Base, Customer, CustomerMetric, CustomerMilestone, MilestoneDefinition
from tests.conftest import services_of

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
COLUMNS = ("order_id", "customer_id", "email", "first_name", "last_name", "customer_created_at", "placed_at",
           "total", "currency", "status", "refunded")


def csv_file(path: Path, rows: list[Mapping[str, Any]], columns: tuple[str, ...] = COLUMNS) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


def orders_of(customer_id: str, email: str, placed: list[datetime], total: str = "40.00", *,
              first_id: int = 1, created: datetime | None = None, **extra: Any) -> list[dict[str, Any]]:
    """One CSV row per placement date, order ids ``first_id``… prefixed with the customer id."""
    return [
        {"order_id": f"{customer_id}-{first_id + i}", "customer_id": customer_id, "email": email,
         "first_name": email.split("@")[0].title(), "customer_created_at": created.isoformat() if created else "",
         "placed_at": when.isoformat(), "total": total, "currency": "USD", "status": "paid", **extra}
        for i, when in enumerate(placed)
    ]


def backfill(app: Flask, connection_id: uuid.UUID, *, clock: datetime = NOW, source: Source | None = None,
             **options: Any) -> Result:
    return run_backfill(services_of(app), Options(connection_id, **options), clock=lambda: clock, source=source)


def customer_id(app: Flask, email: str) -> uuid.UUID:
    with services_of(app).sessions() as session:
        found = session.scalar(select(Customer.id).where(Customer.email == email))
    assert found is not None, email
    return found


def metrics(app: Flask, email: str) -> dict[str, Decimal]:
    with services_of(app).sessions() as session:
        rows = session.execute(
            select(CustomerMetric.metric, CustomerMetric.value)
            .join(Customer, Customer.id == CustomerMetric.customer_id)
            .where(Customer.email == email)
        ).all()
    return {m: Decimal(v) for m, v in rows}


def milestones(app: Flask, email: str) -> dict[tuple[str, int], tuple[str, datetime]]:
    """(definition key, occurrence) -> (status, achieved_at) of one customer."""
    with services_of(app).sessions() as session:
        rows = session.execute(
            select(MilestoneDefinition.key, CustomerMilestone.occurrence, CustomerMilestone.status,
                   CustomerMilestone.achieved_at)
            .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
            .join(Customer, Customer.id == CustomerMilestone.customer_id)
            .where(Customer.email == email)
        ).all()
    return {(key, occurrence): (status, achieved_at) for key, occurrence, status, achieved_at in rows}


def fingerprint(app: Flask) -> dict[str, str]:
    """Every table's rows, hashed: equal before and after means nothing changed."""
    found = {}
    with services_of(app).engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            found[table.name] = conn.execute(
                text(f'SELECT count(*) || \':\' || coalesce(md5(string_agg(t::text, \',\' ORDER BY t::text)), \'\') '
                     f'FROM "{table.name}" t')
            ).scalar_one()
    return found


class StopsAfter:
    """A source that dies (like a killed process) after handing out ``pages`` pages."""

    def __init__(self, inner: Source, pages: int) -> None:
        self.inner, self.limit, self.name = inner, pages, inner.name

    def pages(self, cursor: Mapping[str, Any]) -> Iterator[Page]:
        for number, page in enumerate(self.inner.pages(cursor), start=1):
            if number > self.limit:
                raise KeyboardInterrupt("killed mid-run")
            yield page
