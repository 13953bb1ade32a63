"""The daily anniversary scan, with the clock given: timezones, leap years, reruns and gaps."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select, update

from plugin.db import transaction
from plugin.milestones.scan import days_due, run_due_scans, scan_day
from plugin.milestones.tenure import local_zone, tenure_columns
from plugin.models import Customer, CustomerMilestone, MilestoneDefinition, ScanRun, Workspace
from tests.conftest import services_of


def _melbourne(app, workspace):
    with transaction(services_of(app).sessions) as session:
        session.execute(update(Workspace).where(Workspace.id == workspace.id).values(timezone="Australia/Melbourne"))


def _customer(app, workspace, since: datetime, timezone: str | None = None, email: str | None = None) -> uuid.UUID:
    customer_id = uuid.uuid4()
    with transaction(services_of(app).sessions) as session:
        tz = session.scalar(select(Workspace.timezone).where(Workspace.id == workspace.id))
        session.add(Customer(id=customer_id, workspace_id=workspace.id, email=email or f"{customer_id.hex[:8]}@example.com",
                             first_name="Sam", customer_since=since, timezone=timezone, properties={},
                             **tenure_columns(since, local_zone(timezone, tz))))
    return customer_id


def _scan(app, workspace, day: date):
    with transaction(services_of(app).sessions) as session:
        ws = session.get(Workspace, workspace.id)
        return scan_day(session, ws, day)


def _awarded(app, customer_id) -> list[tuple[str, int, str]]:
    with services_of(app).sessions() as session:
        rows = session.execute(
            select(MilestoneDefinition.key, CustomerMilestone.occurrence, CustomerMilestone.milestone_value)
            .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
            .where(CustomerMilestone.customer_id == customer_id)
            .order_by(MilestoneDefinition.key)
        ).all()
    return [tuple(r) for r in rows]


def test_a_one_year_anniversary_fires_on_its_local_date_once(app, workspace):
    _melbourne(app, workspace)
    # 2025-03-09 14:00 UTC is already 2025-03-10 in Melbourne.
    customer = _customer(app, workspace, datetime(2025, 3, 9, 14, 0, tzinfo=UTC))
    assert _scan(app, workspace, date(2026, 3, 9)).awarded == 0
    assert _scan(app, workspace, date(2026, 3, 10)).awarded == 1
    assert _scan(app, workspace, date(2026, 3, 10)).awarded == 0  # a rerun awards nothing new
    assert _awarded(app, customer) == [("anniversary-1y", 1, "1 year")]


def test_the_customers_own_timezone_wins_over_the_workspaces(app, workspace):
    _melbourne(app, workspace)
    # 2025-03-10 03:00 UTC is still 2025-03-09 in Los Angeles.
    customer = _customer(app, workspace, datetime(2025, 3, 10, 3, 0, tzinfo=UTC), timezone="America/Los_Angeles")
    _scan(app, workspace, date(2026, 3, 10))
    assert _awarded(app, customer) == []
    _scan(app, workspace, date(2026, 3, 9))
    assert _awarded(app, customer) == [("anniversary-1y", 1, "1 year")]


def test_a_leap_day_customer_is_celebrated_on_feb_28_in_other_years(app, workspace):
    customer = _customer(app, workspace, datetime(2024, 2, 29, 12, 0, tzinfo=UTC))
    assert _scan(app, workspace, date(2025, 2, 28)).awarded == 1
    assert _scan(app, workspace, date(2026, 2, 28)).awarded == 1
    assert _scan(app, workspace, date(2026, 3, 1)).awarded == 0
    assert [k for k, _, _ in _awarded(app, customer)] == ["anniversary-1y", "anniversary-2y"]


def test_a_leap_day_customer_is_celebrated_on_feb_29_in_a_leap_year(app, workspace):
    customer = _customer(app, workspace, datetime(2020, 2, 29, 12, 0, tzinfo=UTC))
    assert _scan(app, workspace, date(2024, 2, 28)).awarded == 0
    assert _scan(app, workspace, date(2024, 2, 29)).candidates == 1
    # Four years: not a default anniversary, but the 1/2-year ones were never scanned then.
    assert _awarded(app, customer) == []
    assert _scan(app, workspace, date(2025, 2, 28)).awarded == 1  # five years
    assert _awarded(app, customer) == [("anniversary-5y", 1, "5 years")]


def test_time_to_milestone_of_an_anniversary_is_its_tenure(app, workspace):
    customer = _customer(app, workspace, datetime(2025, 6, 1, 12, 0, tzinfo=UTC))
    _scan(app, workspace, date(2026, 6, 1))
    with services_of(app).sessions() as session:
        milestone = session.execute(select(CustomerMilestone).where(CustomerMilestone.customer_id == customer)).scalar_one()
    assert abs(milestone.time_to_milestone - timedelta(days=365)) < timedelta(days=1)
    assert milestone.achieved_at == datetime(2026, 6, 1, 9, 0, tzinfo=UTC)  # the scan hour, local (UTC here)


def test_the_scheduler_catches_up_every_missed_day_exactly_once(app, workspace):
    customers = [_customer(app, workspace, datetime(2025, 4, day, 12, 0, tzinfo=UTC)) for day in (2, 4, 6)]
    sessions = services_of(app).sessions
    run_due_scans(sessions, now=datetime(2026, 4, 1, 10, 0, tzinfo=UTC))  # first run: just today
    # The scheduler was down for five days; it comes back on April 6 after the scan hour.
    results = run_due_scans(sessions, now=datetime(2026, 4, 6, 10, 0, tzinfo=UTC))
    assert [r.day for r in results] == [date(2026, 4, d) for d in range(2, 7)]
    assert run_due_scans(sessions, now=datetime(2026, 4, 6, 11, 0, tzinfo=UTC)) == []
    assert all(_awarded(app, c) == [("anniversary-1y", 1, "1 year")] for c in customers)
    with sessions() as session:
        assert session.scalar(select(ScanRun.day).order_by(ScanRun.day.desc())) == date(2026, 4, 6)


def test_today_is_not_due_before_the_local_scan_hour(app, workspace):
    _melbourne(app, workspace)
    with services_of(app).sessions() as session:
        ws = session.get(Workspace, workspace.id)
        # 21:00 UTC on June 1 is 07:00 on June 2 in Melbourne: before the 09:00 scan hour.
        assert days_due(session, ws, datetime(2026, 6, 1, 21, 0, tzinfo=UTC)) == [date(2026, 6, 1)]
        assert days_due(session, ws, datetime(2026, 6, 1, 23, 30, tzinfo=UTC)) == [date(2026, 6, 2)]


def test_customers_who_order_get_their_tenure_columns_from_the_pipeline(app, client, shop, workspace):
    from tests.support import ALICE, order, post_order

    post_order(client, order(1))
    with services_of(app).sessions() as session:
        customer = session.execute(select(Customer).where(Customer.email == ALICE.email)).scalar_one()
    assert customer.since_local == ALICE.created_at.date()
    assert customer.since_mmdd == ALICE.created_at.month * 100 + ALICE.created_at.day
