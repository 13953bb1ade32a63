"""A first import inserts; whatever meets a row already there is merged or left alone, never doubled."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from plugin.backfill import history, importer
from plugin.backfill.csv_file import CsvHistory
from plugin.models import Customer, CustomerIdentity, CustomerMilestone, MilestoneDefinition, Order, Workspace
from tests.backfill.support import backfill, csv_file, milestones, orders_of
from tests.conftest import services_of
from tests.support import count

JAN = datetime(2024, 1, 10, 15, 0, tzinfo=UTC)


def _spy_on_inserts(monkeypatch) -> list[bool]:
    """Whether each page was imported into an empty ledger (inserted first) or merged."""
    seen: list[bool] = []
    original = importer._merge_orders

    def spy(sql, target, now):
        seen.append(target.empty_ledger)
        return original(sql, target, now)

    monkeypatch.setattr(importer, "_merge_orders", spy)
    return seen


def test_a_first_import_inserts_and_a_page_repeating_an_order_is_merged(app, shop, tmp_path, monkeypatch):
    # page 1: orders 1 and 2 paid; page 2: order 2 again, cancelled since, and a new order 3
    rows = [
        {"order_id": "1", "customer_id": "7", "email": "kim@example.com", "placed_at": "2024-01-10T10:00:00",
         "total": "30.00", "currency": "USD", "status": "paid"},
        {"order_id": "2", "customer_id": "7", "email": "kim@example.com", "placed_at": "2024-01-11T10:00:00",
         "total": "20.00", "currency": "USD", "status": "paid"},
        {"order_id": "2", "customer_id": "7", "email": "kim@example.com", "placed_at": "2024-01-11T10:00:00",
         "updated_at": "2024-01-12T10:00:00", "total": "20.00", "currency": "USD", "status": "cancelled"},
        {"order_id": "3", "customer_id": "7", "email": "kim@example.com", "placed_at": "2024-01-13T10:00:00",
         "total": "50.00", "currency": "USD", "status": "paid"},
    ]
    path = csv_file(tmp_path / "h.csv", rows, ("order_id", "customer_id", "email", "placed_at", "updated_at",
                                               "total", "currency", "status"))
    inserted_first = _spy_on_inserts(monkeypatch)

    result = backfill(app, shop.id, file=str(path), source=CsvHistory(path, rows_per_page=2))

    assert inserted_first == [True, True]  # the ledger had none of the connection's orders at the start
    assert (result.orders, result.known_orders) == (4, 1)  # page 2 met order 2 and was merged
    services = services_of(app)
    with services.sessions() as session:
        ledger = {o.external_id: (o.paid, o.cancelled, o.counted) for o in session.execute(select(Order)).scalars()}
    # the insert of page 2 was rolled back whole: order 3 is there once, order 2 merged by the ledger's rules
    assert ledger == {"1": (True, False, True), "2": (True, True, False), "3": (True, False, True)}


def test_an_import_into_a_ledger_that_has_the_connections_orders_merges_every_page(app, shop, tmp_path, monkeypatch):
    first = orders_of("7", "kim@example.com", [JAN, JAN + timedelta(days=1)])
    backfill(app, shop.id, file=str(csv_file(tmp_path / "a.csv", first)))
    inserted_first = _spy_on_inserts(monkeypatch)

    again = orders_of("7", "kim@example.com", [JAN, JAN + timedelta(days=1), JAN + timedelta(days=2)])
    result = backfill(app, shop.id, file=str(csv_file(tmp_path / "b.csv", again)))

    assert inserted_first == [False]
    assert (result.orders, result.known_orders) == (3, 2)
    assert count(services_of(app), Order) == 3


def test_a_milestone_recorded_while_the_run_settles_is_left_as_it_is(app, workspace, shop, tmp_path, monkeypatch):
    """Crossings already recorded are set aside before the insert; one a scan or a webhook records
    in between meets the unique key: that row stays as its writer left it, the rest are recorded."""
    original = history._record
    raced: list[uuid.UUID] = []

    def a_scan_gets_there_first(sql, plan, celebrate, params):
        row = sql.run("SELECT customer_id, definition_id, occurrence FROM bf_crossings ORDER BY achieved_at LIMIT 1").one()
        milestone = CustomerMilestone(
            id=uuid.uuid4(), customer_id=row.customer_id, workspace_id=plan.workspace_id,
            definition_id=row.definition_id, occurrence=row.occurrence, milestone_type="order",
            milestone_name="raced", milestone_value="1", achieved_at=plan.now, status="active",
            context={"source": "a webhook"})
        sql.session.add(milestone)
        sql.session.flush()
        raced.append(milestone.id)
        original(sql, plan, celebrate, params)

    monkeypatch.setattr(history, "_record", a_scan_gets_there_first)
    rows = orders_of("7", "kim@example.com", [JAN + timedelta(days=3 * i) for i in range(12)], total="50.00")

    result = backfill(app, shop.id, file=str(csv_file(tmp_path / "h.csv", rows)))

    recorded = milestones(app, "kim@example.com")
    # order-1, order-10, spend-500 (the 10th order reaches $500), 1 and 2 years by June 2026: one row each
    assert set(recorded) == {("order-1", 1), ("order-10", 1), ("spend-500", 1), ("anniversary-1y", 1),
                             ("anniversary-2y", 1)}
    with services_of(app).sessions() as session:
        kept = session.get(CustomerMilestone, raced[0])
        statuses = session.execute(select(CustomerMilestone.status)).scalars().all()
    assert kept is not None and (kept.status, kept.milestone_name) == ("active", "raced")
    assert sorted(statuses) == ["active"] + ["historical"] * 4
    assert sum(o.recorded for o in result.outcomes) == 5  # counted before the race, as the run saw them


def test_the_workspace_keys_implied_by_connection_and_customer_are_gone_and_deletes_still_cascade(
        app, workspace, shop, tmp_path):
    services = services_of(app)
    with services.engine.connect() as conn:
        keys = set(conn.execute(text(
            """SELECT conrelid::regclass::text FROM pg_constraint
               WHERE contype = 'f' AND confrelid = 'workspaces'::regclass""")).scalars())
    assert not keys & {"orders", "customer_identities", "customer_milestones"}
    assert {"customers", "connections", "milestone_definitions"} <= keys  # what pins the workspace stays

    backfill(app, shop.id, file=str(csv_file(tmp_path / "h.csv", orders_of("7", "kim@example.com", [JAN]))))
    assert count(services, Order) == 1 and count(services, CustomerMilestone) == 3  # order-1, 1 and 2 years
    with services.sessions() as session:
        session.execute(Workspace.__table__.delete().where(Workspace.id == workspace.id))
        session.commit()
        left = [session.scalar(select(func.count()).select_from(model))
                for model in (Order, CustomerIdentity, CustomerMilestone, Customer, MilestoneDefinition)]
    assert left == [0, 0, 0, 0, 0]
