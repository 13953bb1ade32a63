"""A CSV history into the ledger: customers, orders, counters, start dates — and what is left alone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from plugin.backfill.csv_file import CsvHistory
from plugin.backfill.runner import BackfillError
from plugin.models import BackfillRun, Customer, CustomerIdentity, Effect, Order
from plugin.models.backfill import FAILED, FINISHED
from tests.backfill.support import (
    StopsAfter,
    backfill,
    csv_file,
    fingerprint,
    metrics,
    milestones,
    orders_of,
)
from tests.conftest import services_of
from tests.support import ALICE, count, order, post_order

JAN = datetime(2024, 1, 10, 15, 0, tzinfo=UTC)


def weekly(first: datetime, n: int) -> list[datetime]:
    return [first + timedelta(weeks=i) for i in range(n)]


def test_customers_orders_and_counters_come_from_the_file(app, shop, tmp_path):
    rows = orders_of("501", "Alice@Example.com", weekly(JAN, 12), created=datetime(2023, 12, 1, tzinfo=UTC))
    rows += [
        {"order_id": "g-1", "email": "bob@example.com", "placed_at": "2025-05-01T10:00:00", "total": "600.00",
         "currency": "usd", "status": "completed"},
        {"order_id": "g-2", "email": "bob@example.com", "placed_at": "2025-05-02T10:00:00", "total": "20.00",
         "currency": "USD", "status": "pending"},
        {"order_id": "g-3", "email": "bob@example.com", "placed_at": "2025-05-03T10:00:00", "total": "30.00",
         "currency": "USD", "status": "refunded"},
        {"order_id": "g-4", "email": "bob@example.com", "placed_at": "2025-05-04T10:00:00", "total": "50.00",
         "currency": "USD", "status": "partially_refunded", "refunded": "10.00"},
    ]
    result = backfill(app, shop.id, file=str(csv_file(tmp_path / "history.csv", rows)))

    assert (result.orders, result.known_orders, result.new_customers) == (16, 0, 2)
    assert metrics(app, "alice@example.com") == {"order_count": 12, "lifetime_spend": Decimal("480")}
    assert metrics(app, "bob@example.com") == {"order_count": 2, "lifetime_spend": Decimal("640")}
    services = services_of(app)
    with services.sessions() as session:
        alice = session.execute(select(Customer).where(Customer.email == "alice@example.com")).scalar_one()
        bob = session.execute(select(Customer).where(Customer.email == "bob@example.com")).scalar_one()
        identity = session.scalar(select(CustomerIdentity.external_id).where(CustomerIdentity.customer_id == alice.id))
    assert (alice.first_name, identity) == ("Alice", "501")
    # customer since: the account's creation, or the first paid order when that is earlier / unknown
    assert alice.customer_since == datetime(2023, 12, 1, tzinfo=UTC)
    assert (alice.since_local, alice.since_mmdd, alice.since_dom) == (date(2023, 12, 1), 1201, 1)
    assert bob.customer_since == datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
    assert count(services, Order, Order.counted.is_(False)) == 2  # pending, refunded in full
    with services.sessions() as session:
        run = session.execute(select(BackfillRun)).scalar_one()
    assert (run.status, run.source, run.counts["orders"]) == (FINISHED, "csv", 16)


def test_orders_already_delivered_by_webhooks_are_not_counted_twice(app, client, shop, tmp_path):
    for n in (1, 2):
        assert post_order(client, order(n)).status_code == 200
    webhook_milestones = milestones(app, ALICE.email)
    assert set(webhook_milestones) == {("order-1", 1)}  # the webhook thought order 1 was her first

    older = orders_of(str(ALICE.id), ALICE.email, weekly(JAN, 8))
    # the two delivered orders again, as an old export saw them (different total, older data)
    again = [{"order_id": str(900000 + n), "customer_id": str(ALICE.id), "email": ALICE.email,
              "placed_at": (JAN + timedelta(weeks=20)).isoformat(), "total": "99.00", "currency": "USD"}
             for n in (1, 2)]
    result = backfill(app, shop.id, file=str(csv_file(tmp_path / "h.csv", older + again)))

    assert (result.orders, result.known_orders) == (10, 2)
    assert count(services_of(app), Order) == 10
    assert metrics(app, ALICE.email) == {"order_count": 10, "lifetime_spend": Decimal("400")}  # 10 x 40, not 99
    after = milestones(app, ALICE.email)
    assert after[("order-1", 1)] == webhook_milestones[("order-1", 1)]  # never overwritten
    assert after[("order-10", 1)][0] == "historical"


def test_newer_imported_data_wins_over_the_webhook_state(app, client, shop, tmp_path):
    assert post_order(client, order(1)).status_code == 200
    newer = [{"order_id": "900001", "customer_id": str(ALICE.id), "email": ALICE.email,
              "placed_at": order(1).created_at.isoformat(), "updated_at": "2027-01-01T00:00:00Z",
              "total": "55.00", "currency": "USD", "status": "partially_refunded", "refunded": "5.00"}]
    columns = ("order_id", "customer_id", "email", "placed_at", "updated_at", "total", "currency", "status", "refunded")
    backfill(app, shop.id, file=str(csv_file(tmp_path / "n.csv", newer, columns)))
    with services_of(app).sessions() as session:
        row = session.execute(select(Order)).scalar_one()
    assert (row.total, row.refunded, row.counted, row.paid) == (Decimal("55.00"), Decimal("5.00"), True, True)
    assert metrics(app, ALICE.email)["lifetime_spend"] == Decimal("50")


def test_unreadable_rows_are_skipped_and_reported(app, shop, tmp_path):
    rows = orders_of("1", "ann@example.com", weekly(JAN, 2))
    rows += [{"order_id": "x", "placed_at": "yesterday", "total": "1", "currency": "USD"},
             {"order_id": "y", "placed_at": "2024-01-01", "total": "ten", "currency": "USD"},
             {"order_id": "z", "placed_at": "2024-01-01", "total": "1", "currency": "USD", "status": "lost"}]
    result = backfill(app, shop.id, file=str(csv_file(tmp_path / "h.csv", rows)))
    assert (result.orders, result.skipped) == (2, 3)
    assert "placed_at" in result.problems[0] and "total" in result.problems[1] and "lost" in result.problems[2]


def test_a_file_without_the_required_columns_changes_nothing(app, shop, tmp_path):
    path = csv_file(tmp_path / "bad.csv", [{"order_id": "1"}], ("order_id", "email"))
    before = fingerprint(app)
    with pytest.raises(BackfillError, match="placed_at, total, currency"):
        backfill(app, shop.id, file=str(path), dry_run=True)
    assert fingerprint(app) == before


def test_an_interrupted_run_resumes_from_its_cursor_without_duplicates(app, shop, tmp_path):
    rows = []
    for n in range(3):
        rows += orders_of(str(600 + n), f"c{n}@example.com", weekly(JAN + timedelta(days=n), 10))
    path = str(csv_file(tmp_path / "h.csv", rows))
    with pytest.raises(KeyboardInterrupt):
        backfill(app, shop.id, file=path, source=StopsAfter(CsvHistory(path, rows_per_page=7), pages=2))
    services = services_of(app)
    with services.sessions() as session:
        run = session.execute(select(BackfillRun)).scalar_one()
    assert (run.status, run.cursor, run.pages) == (FAILED, {"row": 14}, 2)
    assert count(services, Order) == 14
    assert count(services, Effect) == 0 and milestones(app, "c0@example.com") == {}

    result = backfill(app, shop.id, file=path, source=CsvHistory(path, rows_per_page=7))
    assert result.resumed and result.run_id == run.id
    assert (result.pages, result.orders) == (5, 30)  # the totals of the whole run
    assert count(services, Order) == 30
    with services.sessions() as session:
        assert session.scalar(select(func.count(func.distinct(Order.external_id)))) == 30
        finished = session.execute(select(BackfillRun)).scalar_one()
    assert (finished.status, finished.pages, finished.counts["orders"]) == (FINISHED, 5, 30)
    assert finished.cursor == {"row": 30, "imported": True}
    for n in range(3):
        assert metrics(app, f"c{n}@example.com")["order_count"] == 10
        assert set(milestones(app, f"c{n}@example.com")) >= {("order-1", 1), ("order-10", 1)}


def test_a_finished_run_is_not_resumed_and_a_rerun_adds_nothing(app, shop, tmp_path):
    path = str(csv_file(tmp_path / "h.csv", orders_of("7", "dee@example.com", weekly(JAN, 10))))
    first = backfill(app, shop.id, file=path)
    second = backfill(app, shop.id, file=path)
    assert not second.resumed and second.run_id != first.run_id
    assert second.known_orders == 10
    assert sum(o.recorded for o in second.outcomes) == 0
    assert sum(o.already for o in second.outcomes) == sum(o.recorded for o in first.outcomes)
    assert metrics(app, "dee@example.com")["order_count"] == 10


def test_quoted_line_breaks_stay_inside_their_record_across_pages(app, shop, tmp_path):
    path = tmp_path / "h.csv"
    path.write_text(
        "order_id,customer_id,email,first_name,placed_at,total,currency\r\n"
        '1,5,a@example.com,"Ann\nMarie",2024-01-01,10.00,USD\r\n'
        '2,5,a@example.com,"Ann ""the second""",2024-01-02,11.00,USD\r\n'
        "3,6,b@example.com,Bo,2024-01-03,12.00,USD\r\n"
    )
    pages = list(CsvHistory(path, rows_per_page=1).pages({}))
    assert [p.cursor for p in pages] == [{"row": 1}, {"row": 2}, {"row": 3}]
    assert [p.cursor for p in CsvHistory(path, rows_per_page=2).pages({"row": 1})] == [{"row": 3}]
    backfill(app, shop.id, file=str(path), source=CsvHistory(path, rows_per_page=1))
    with services_of(app).sessions() as session:
        first = session.execute(select(Customer.first_name).where(Customer.email == "a@example.com")).scalar_one()
    assert first == "Ann\nMarie"
    assert count(services_of(app), Order) == 3


def test_restart_abandons_an_interrupted_run_and_starts_from_the_top(app, shop, tmp_path):
    path = str(csv_file(tmp_path / "h.csv", orders_of("8", "ed@example.com", weekly(JAN, 6))))
    with pytest.raises(KeyboardInterrupt):
        backfill(app, shop.id, file=path, source=StopsAfter(CsvHistory(path, rows_per_page=2), pages=1))
    result = backfill(app, shop.id, file=path, restart=True)
    assert not result.resumed and (result.pages, result.orders, result.known_orders) == (1, 6, 2)
    with services_of(app).sessions() as session:
        statuses = sorted(session.execute(select(BackfillRun.status)).scalars())
    assert statuses == ["abandoned", FINISHED]


def test_a_second_run_of_the_same_connection_at_the_same_time_is_refused(app, shop, tmp_path):
    from plugin.backfill.runs import BackfillBusy, exclusive

    path = str(csv_file(tmp_path / "h.csv", orders_of("8", "ed@example.com", weekly(JAN, 2))))
    with exclusive(services_of(app).engine, shop.id), pytest.raises(BackfillBusy):
        backfill(app, shop.id, file=path)
    assert count(services_of(app), Order) == 0


def test_a_run_that_failed_after_importing_resumes_with_the_last_step_alone(app, shop, tmp_path, monkeypatch):
    from plugin.backfill import history

    path = str(csv_file(tmp_path / "h.csv", orders_of("8", "fi@example.com", weekly(JAN, 10))))
    settle = history.settle

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(history, "settle", broken)
    with pytest.raises(RuntimeError):
        backfill(app, shop.id, file=path)
    monkeypatch.setattr(history, "settle", settle)

    class NotAgain(CsvHistory):
        def pages(self, cursor):
            raise AssertionError("the pages were imported already")

    result = backfill(app, shop.id, file=path, source=NotAgain(path))
    assert result.resumed and result.orders == 10
    assert ("order-10", 1) in milestones(app, "fi@example.com")
