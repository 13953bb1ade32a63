"""The embedded demo's SQLite runs the same backfill (no COPY, slower, same results)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from plugin import connections
from plugin.app import create_app
from plugin.db import transaction
from plugin.models import Base, CustomerMilestone, Effect
from plugin.schema import upgrade
from plugin.workspaces import create_workspace
from tests.backfill.support import NOW, backfill, csv_file, metrics, milestones, orders_of
from tests.conftest import add_connection, make_settings, services_of
from tests.support import count


@pytest.fixture
def sqlite_app(tmp_path) -> Iterator[Flask]:
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    upgrade(url)
    connections.forget()
    application = create_app(make_settings(url))
    yield application
    application.extensions["milestones"].close()
    connections.forget()


@pytest.fixture
def sqlite_shop(sqlite_app) -> Any:
    with transaction(services_of(sqlite_app).sessions) as session:
        workspace, _ = create_workspace(session, "Corner Shop", currency="USD")
    return add_connection(sqlite_app, workspace.id, "shopify",
                          {"shop_domain": "corner.myshopify.com", "access_token": "shpat_x", "api_secret": "s"})


def _rows() -> list[dict[str, Any]]:
    old = orders_of("1", "ola@example.com", [datetime(2023, 1, 2, tzinfo=UTC) + timedelta(days=3 * i) for i in range(12)],
                    total="45.50", created=datetime(2022, 12, 24, tzinfo=UTC))
    old[3] |= {"status": "partially_refunded", "refunded": "5.50"}
    new = orders_of("2", "pia@example.com", [NOW - timedelta(days=2)], total="12.00")
    return old + new


def _row_counts(app: Flask) -> dict[str, int]:
    with services_of(app).sessions() as session:
        return {t.name: session.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def test_a_csv_backfill_on_sqlite_records_the_same_history(sqlite_app, sqlite_shop, tmp_path):
    path = str(csv_file(tmp_path / "h.csv", _rows()))
    before = _row_counts(sqlite_app)
    dry = backfill(sqlite_app, sqlite_shop.id, file=path, mode="recent", days=7, dry_run=True)
    assert _row_counts(sqlite_app) == before

    result = backfill(sqlite_app, sqlite_shop.id, file=path, mode="recent", days=7)
    assert [(o.key, o.recorded, o.celebrated) for o in result.outcomes] == \
        [(o.key, o.recorded, o.celebrated) for o in dry.outcomes]
    assert metrics(sqlite_app, "ola@example.com") == {"order_count": 12, "lifetime_spend": Decimal("540.5")}
    ola = milestones(sqlite_app, "ola@example.com")
    assert ola[("order-10", 1)] == ("historical", datetime(2023, 1, 29, tzinfo=UTC))
    assert ola[("spend-500", 1)] == ("historical", datetime(2023, 2, 4, tzinfo=UTC))  # 11th order: $495 -> $540.50
    assert ola[("anniversary-2y", 1)] == ("historical", datetime(2024, 12, 24, 9, 0, tzinfo=UTC))
    assert milestones(sqlite_app, "pia@example.com")[("order-1", 1)][0] == "active"
    assert count(services_of(sqlite_app), Effect) > 0
    with services_of(sqlite_app).sessions() as session:
        row = session.execute(
            select(CustomerMilestone).where(CustomerMilestone.milestone_value == "10")
        ).scalar_one()
    assert row.time_to_milestone == timedelta(days=36)  # Dec 24 -> Jan 29
    assert row.context["metrics"] == {"order_count": "10"}
    assert row.context["source"].startswith("backfill ")
