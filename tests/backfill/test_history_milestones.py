"""Milestones passed before installation: when they were reached, and what each mode does with them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from plugin.db import transaction
from plugin.models import CustomerMilestone, Effect, MilestoneDefinition, Workspace
from tests.backfill.support import (
    NOW,
    backfill,
    csv_file,
    customer_id,
    fingerprint,
    metrics,
    milestones,
    orders_of,
)
from tests.conftest import services_of
from tests.support import count

START = datetime(2023, 3, 1, 14, 30, tzinfo=UTC)


def every_few_days(first: datetime, n: int, days: int = 3) -> list[datetime]:
    return [first + timedelta(days=days * i) for i in range(n)]


def add_definition(app, workspace, key: str, condition: dict, recognition: list | None = None) -> None:
    with transaction(services_of(app).sessions) as session:
        session.add(MilestoneDefinition(workspace_id=workspace.id, key=key, type="order", name=key, condition=condition,
                                        enabled=True, recognition=recognition or [], requires_review=False,
                                        escalate=False, significant=False, sort_order=99))


def test_order_and_spend_milestones_are_achieved_at_the_order_that_crossed(app, shop, tmp_path):
    placed = every_few_days(START, 26)
    # 26 orders of $40 with the 13th refunded in full: it never counted, so the 25th counted
    # order is the 26th placed one; $500 is crossed by the 13th counted order (the 14th placed).
    rows = orders_of("42", "eve@example.com", placed)
    rows[12] |= {"status": "refunded"}
    result = backfill(app, shop.id, file=str(csv_file(tmp_path / "h.csv", rows)))

    found = milestones(app, "eve@example.com")
    assert found[("order-1", 1)] == ("historical", placed[0])
    assert found[("order-10", 1)] == ("historical", placed[9])
    assert found[("order-25", 1)] == ("historical", placed[25])
    assert found[("spend-500", 1)] == ("historical", placed[13])
    assert ("spend-1000", 1) in found and ("order-50", 1) not in found
    assert metrics(app, "eve@example.com") == {"order_count": 25, "lifetime_spend": Decimal("1000")}
    assert found[("spend-1000", 1)] == ("historical", placed[25])  # exactly $1,000: gte
    assert count(services_of(app), Effect) == 0  # history has no rewards
    recorded = {o.key: o.recorded for o in result.outcomes}
    assert recorded["order-1"] == 1 and recorded["order-25"] == 1


def test_repeating_definitions_record_every_occurrence_at_its_own_order(app, workspace, shop, tmp_path):
    add_definition(app, workspace, "every-5-orders", {"metric": "order_count", "gte": 5, "every": 5})
    add_definition(app, workspace, "over-100-every-50", {"metric": "lifetime_spend", "gt": 100, "every": 50})
    placed = every_few_days(START, 12)
    rows = orders_of("43", "fay@example.com", placed, total="30.00")
    rows[5] |= {"total": "95.00"}  # running spend: 30 60 90 120 150 245 275 305 335 365 395 425
    backfill(app, shop.id, file=str(csv_file(tmp_path / "h.csv", rows)))

    found = milestones(app, "fay@example.com")
    assert found[("every-5-orders", 1)][1] == placed[4]
    assert found[("every-5-orders", 2)][1] == placed[9]
    assert ("every-5-orders", 3) not in found
    # "more than" 100 (90 -> 120), 150 (strictly: not at 150, at 245), 200 (jumped with it),
    # 250 (245 -> 275), 300 (275 -> 305), 350 (335 -> 365), 400 (395 -> 425)
    spend = {o: at for (key, o), (_, at) in found.items() if key == "over-100-every-50"}
    assert spend == {1: placed[3], 2: placed[5], 3: placed[5], 4: placed[6], 5: placed[7], 6: placed[9], 7: placed[11]}
    with services_of(app).sessions() as session:
        values = dict(session.execute(
            select(CustomerMilestone.occurrence, CustomerMilestone.milestone_value)
            .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
            .where(MilestoneDefinition.key == "over-100-every-50")
        ).all())
    assert values[1] == "100" and values[7] == "400"


def test_passed_anniversaries_fall_on_the_local_anniversary_date(app, workspace, shop, tmp_path):
    with transaction(services_of(app).sessions) as session:
        session.execute(update(Workspace).where(Workspace.id == workspace.id).values(timezone="Australia/Melbourne"))
    # 2021-02-28 14:00 UTC is already Mar 1 in Melbourne; a Feb-29 start is celebrated on Feb 28.
    rows = orders_of("44", "gus@example.com", [datetime(2022, 6, 1, tzinfo=UTC)],
                     created=datetime(2021, 2, 28, 14, 0, tzinfo=UTC))
    rows += orders_of("45", "hal@example.com", [datetime(2021, 6, 1, tzinfo=UTC)],
                      created=datetime(2020, 2, 28, 13, 0, tzinfo=UTC))  # Feb 29 in Melbourne
    rows += orders_of("46", "ivy@example.com", [datetime(2025, 6, 20, tzinfo=UTC)])  # less than a year
    backfill(app, shop.id, file=str(csv_file(tmp_path / "h.csv", rows)))

    melbourne = ZoneInfo("Australia/Melbourne")
    gus = milestones(app, "gus@example.com")
    assert gus[("anniversary-1y", 1)] == ("historical", datetime(2022, 3, 1, 9, 0, tzinfo=melbourne))
    assert gus[("anniversary-2y", 1)][1] == datetime(2023, 3, 1, 9, 0, tzinfo=melbourne)
    assert gus[("anniversary-5y", 1)][1] == datetime(2026, 3, 1, 9, 0, tzinfo=melbourne)
    hal = milestones(app, "hal@example.com")
    assert hal[("anniversary-1y", 1)][1] == datetime(2021, 2, 28, 9, 0, tzinfo=melbourne)
    assert hal[("anniversary-5y", 1)][1] == datetime(2025, 2, 28, 9, 0, tzinfo=melbourne)
    assert not any(key.startswith("anniversary") for key, _ in milestones(app, "ivy@example.com"))


def test_a_repeating_anniversary_records_each_year_passed(app, workspace, shop, tmp_path):
    add_definition(app, workspace, "every-year", {"tenure": {"years": 1}, "every": {"years": 1}})
    rows = orders_of("47", "jo@example.com", [datetime(2019, 7, 1, tzinfo=UTC)])
    backfill(app, shop.id, file=str(csv_file(tmp_path / "h.csv", rows)))
    years = {o: at for (key, o), (_, at) in milestones(app, "jo@example.com").items() if key == "every-year"}
    # NOW is 2026-06-15: six anniversaries (2020-07-01 … 2025-07-01) have passed
    assert sorted(years) == [1, 2, 3, 4, 5, 6]
    assert years[6] == datetime(2025, 7, 1, 9, 0, tzinfo=UTC)


def _crossing_now_and_long_ago(tmp_path):
    old = orders_of("50", "old@example.com", every_few_days(datetime(2024, 1, 1, tzinfo=UTC), 25))
    recent = orders_of("51", "new@example.com", every_few_days(NOW - timedelta(days=80), 25))  # 25th: 8 days ago
    return str(csv_file(tmp_path / "h.csv", old + recent))


def test_recent_mode_celebrates_the_last_days_and_records_the_rest(app, shop, tmp_path):
    result = backfill(app, shop.id, file=_crossing_now_and_long_ago(tmp_path), mode="recent", days=30)
    new = milestones(app, "new@example.com")
    assert new[("order-25", 1)][0] == "active"  # 8 days ago: celebrated
    assert new[("order-1", 1)][0] == "historical"  # 80 days ago: history
    assert {status for status, _ in milestones(app, "old@example.com").values()} == {"historical"}
    by_key = {o.key: o for o in result.outcomes}
    assert (by_key["order-25"].recorded, by_key["order-25"].celebrated) == (1, 1)
    assert (by_key["spend-1000"].recorded, by_key["spend-1000"].celebrated) == (1, 1)
    assert by_key["order-25"].liability == {"USD": Decimal("10.00")}
    services = services_of(app)
    celebrated = customer_id(app, "new@example.com")
    with services.sessions() as session:
        kinds = session.execute(
            select(Effect.kind).join(CustomerMilestone, CustomerMilestone.id == Effect.milestone_id)
            .where(CustomerMilestone.customer_id == celebrated)
        ).scalars().all()
    assert "store_credit" in kinds and len(result.celebrated_ids) == 2  # order-25 and spend-1000


def test_all_mode_celebrates_everything_and_holds_rewards_that_need_review(app, shop, tmp_path):
    placed = every_few_days(datetime(2020, 1, 10, tzinfo=UTC), 100, days=7)  # 6 years a customer
    rows = orders_of("60", "kim@example.com", placed, total="5.00")
    result = backfill(app, shop.id, file=str(csv_file(tmp_path / "h.csv", rows)), mode="all")
    found = milestones(app, "kim@example.com")
    assert found[("order-1", 1)] == ("active", placed[0])
    assert found[("order-100", 1)] == ("pending_review", placed[99])
    assert found[("anniversary-5y", 1)] == ("pending_review", datetime(2025, 1, 10, 9, 0, tzinfo=UTC))
    with services_of(app).sessions() as session:
        effects = session.execute(
            select(Effect.kind, Effect.status).join(CustomerMilestone, CustomerMilestone.id == Effect.milestone_id)
            .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
            .where(MilestoneDefinition.key == "order-100")
        ).all()
    assert ("customer_tag", "held") in effects  # the VIP upgrade waits for review
    assert sum(o.recorded for o in result.outcomes) == 0


def test_the_dry_run_changes_nothing_and_reports_what_a_run_then_does(app, shop, tmp_path):
    path = _crossing_now_and_long_ago(tmp_path)
    before = fingerprint(app)
    dry = backfill(app, shop.id, file=path, mode="recent", days=30, dry_run=True)
    assert fingerprint(app) == before
    assert dry.dry_run and dry.run_id is None and dry.celebrated_ids == []
    liability = {o.key: o.liability for o in dry.outcomes if o.liability}
    assert liability == {"order-25": {"USD": Decimal("10.00")}}

    real = backfill(app, shop.id, file=path, mode="recent", days=30)
    counts = [(o.key, o.recorded, o.celebrated, o.already, o.liability) for o in real.outcomes]
    assert counts == [(o.key, o.recorded, o.celebrated, o.already, o.liability) for o in dry.outcomes]
    assert (real.orders, real.new_customers) == (dry.orders, dry.new_customers)


def test_definitions_the_history_cannot_answer_are_reported_not_guessed(app, shop, tmp_path):
    rows = orders_of("70", "lee@example.com", [datetime(2024, 1, 10, tzinfo=UTC)])
    result = backfill(app, shop.id, file=str(csv_file(tmp_path / "h.csv", rows)))
    skipped = {o.key for o in result.outcomes if o.note}
    assert skipped == {"api-calls-1m", "users-100", "feature-adoption", "roi-achieved"}
    assert date(2024, 1, 10) == milestones(app, "lee@example.com")[("order-1", 1)][1].date()
