"""The dashboard's new figures worked out by hand: retention lift against the holdout, the
estimated retention value and its assumption, the customer response rate, the chart series,
and the SVG charts themselves."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import Flask

from plugin.admin import retention, trends
from plugin.admin.dashboard import dashboard
from plugin.models import Workspace
from plugin.web.console import charts
from tests.api.support import build, credit
from tests.conftest import services_of
from tests.console.milestone_data import add_order

NOW = datetime(2026, 6, 20, 12, 0, tzinfo=UTC)
MAY = datetime(2026, 5, 1, tzinfo=UTC)


def _figures(app: Flask, workspace_id: Any, month: date, **kwargs: Any) -> dict[str, Any]:
    with services_of(app).sessions() as session:
        ws = session.get(Workspace, workspace_id)
        assert ws is not None
        return dashboard(session, ws, month, now=NOW, **kwargs)


# --- retention lift -----------------------------------------------------------------------------

def _holdout_rows(shop_id: Any) -> Any:
    """order-25 has a 50% holdout. Milestones on Mar 2 (cohort Jan–Jun, 30-day windows closed):

        recognised  r1 orders on day 5, r2 on day 29, r3 on day 12, r4 only on day 40   → 3 of 4
        held out    h1 orders on day 20, h2 never                                       → 1 of 2
        left out    h3 held out but celebrated by hand; late: reached Jun 1 (window open);
                    early: reached Dec 20 (before the cohort); order-10 has no holdout
    """

    def rows_for(rows: Any) -> None:
        ws = rows.session.get(Workspace, rows.workspace_id)
        ws.settings = {"holdout": {"order-25": 50}}
        start = datetime(2026, 3, 2, 10, tzinfo=UTC)

        def reached(email: str, held_out: bool = False, at: datetime = start, key: str = "order-25",
                    orders_after: tuple[int, ...] = (), **values: Any) -> None:
            customer = rows.customer(email)
            milestone = rows.milestone(customer, key, achieved_at=at, **values)
            milestone.context = {"holdout": True} if held_out else {}
            add_order(rows, customer, shop_id, at - timedelta(days=3), "50.00", [("Seasonal veg box", 1)])
            for day in orders_after:
                add_order(rows, customer, shop_id, at + timedelta(days=day), "50.00", [("Seasonal veg box", 1)])

        reached("r1@example.com", orders_after=(5,))
        reached("r2@example.com", orders_after=(29,))
        reached("r3@example.com", orders_after=(12, 20))
        reached("r4@example.com", orders_after=(40,))
        reached("h1@example.com", held_out=True, orders_after=(20,))
        reached("h2@example.com", held_out=True)
        reached("h3@example.com", held_out=True, celebrated=True, orders_after=(2,))
        reached("late@example.com", at=datetime(2026, 6, 1, tzinfo=UTC), orders_after=(2,))
        reached("early@example.com", at=datetime(2025, 12, 20, tzinfo=UTC), held_out=True)
        reached("other@example.com", key="order-10", orders_after=(3,))

    return rows_for


def test_retention_lift_compares_repeat_purchases_of_recognised_and_held_out(
    app: Flask, workspace: Any, shop: Any
) -> None:
    build(app, workspace.id, _holdout_rows(shop.id))
    lift = _figures(app, workspace.id, date(2026, 6, 1))["retention_lift"]
    assert (lift["window_days"], lift["cohort_from"][:10], lift["cohort_until"][:10]) == (30, "2026-01-01", "2026-05-21")
    [order_25] = lift["definitions"]
    assert order_25 == {
        "key": "order-25", "name": "25th Order", "holdout_percent": "50",
        "recognised": {"milestones": 4, "repeat": 3, "rate": "0.7500"},
        "held_out": {"milestones": 2, "repeat": 1, "rate": "0.5000"},
        "lift": "0.5000", "difference": "0.2500", "conclusive": False, "target": "0.15", "met": None,
    }
    assert lift["overall"]["lift"] == "0.5000"
    # a 45-day window catches r4's order on day 40 as well
    wider = _figures(app, workspace.id, date(2026, 6, 1), lift_window_days=45)["retention_lift"]["definitions"][0]
    assert wider["recognised"] == {"milestones": 4, "repeat": 4, "rate": "1.0000"}


def test_lift_is_judged_only_with_enough_of_both_groups() -> None:
    enough = retention.compare(retention.Group(40, 30), retention.Group(20, 12))
    assert (enough["lift"], enough["difference"], enough["conclusive"], enough["met"]) == ("0.2500", "0.1500", True, True)
    short = retention.compare(retention.Group(40, 26), retention.Group(20, 12))
    assert (short["lift"], short["met"]) == ("0.0833", False)
    nobody_back = retention.compare(retention.Group(30, 9), retention.Group(25, 0))
    assert (nobody_back["lift"], nobody_back["difference"], nobody_back["met"]) == (None, "0.3000", None)
    assert retention.compare(retention.Group(), retention.Group())["recognised"]["rate"] is None


def test_without_a_holdout_there_is_no_lift(app: Flask, workspace: Any) -> None:
    lift = _figures(app, workspace.id, date(2026, 6, 1))["retention_lift"]
    assert lift["definitions"] == [] and lift["overall"] is None


# --- estimated retention value --------------------------------------------------------------------

def test_retention_value_uses_rhf_target_until_a_lift_is_measured(app: Flask, workspace: Any) -> None:
    """Two customers recognised in May spending $100 and $25 a month: 125 × 12 × 15% = $225."""

    def rows_for(rows: Any) -> None:
        one = rows.customer("one@example.com", {"lifetime_spend": "1600"}, customer_since=NOW - timedelta(days=487))
        two = rows.customer("two@example.com", {"lifetime_spend": "800"}, customer_since=NOW - timedelta(days=974))
        rows.milestone(one, "order-10", achieved_at=MAY + timedelta(days=3))
        rows.milestone(one, "order-25", achieved_at=MAY + timedelta(days=9))  # counted once
        rows.milestone(two, "spend-500", achieved_at=MAY + timedelta(days=12))
        held = rows.milestone(rows.customer("held@example.com", {"lifetime_spend": "9000"}), "order-10",
                              achieved_at=MAY + timedelta(days=4))
        held.context = {"holdout": True}
        rows.milestone(rows.customer("old@example.com", {"lifetime_spend": "9000"}), "order-1",
                       achieved_at=MAY, status="historical")

    build(app, workspace.id, rows_for)
    value = _figures(app, workspace.id, date(2026, 5, 1))["retention_value"]
    assert value["amounts"] == [{"currency": "USD", "amount": "225.00"}]
    assert (value["customers"], value["monthly_spend"], value["lift"], value["lift_source"]) == (2, "125.00", "0.15",
                                                                                                  "target")
    assert value["assumption"] == (
        "Assumes recognition keeps the 2 customers recognised in May 2026 spending 15% more for the next 12 months — "
        "RHF's +15% retention-lift target, since no holdout has measured a conclusive lift yet. Together they spend "
        "about $125.00 a month: $125.00 × 12 × 15% = $225.00.")


def test_retention_value_takes_a_conclusive_measured_lift(app: Flask, workspace: Any) -> None:
    with services_of(app).sessions() as session:
        ws = session.get(Workspace, workspace.id)
        assert ws is not None
        measured = retention.compare(retention.Group(40, 30), retention.Group(20, 12))
        value = retention.estimated_value(session, ws, MAY, MAY + timedelta(days=31), measured, now=NOW,
                                          month_name="May 2026")
        assert value["lift_source"] == "measured" and value["lift"] == "0.2500"
        assert value["assumption"] == "No customer was recognised in May 2026, so there is no retention value to estimate."
        falling = retention.compare(retention.Group(40, 20), retention.Group(20, 12))
        assert retention.estimated_value(session, ws, MAY, MAY + timedelta(days=31), falling, now=NOW,
                                         month_name="May 2026")["amounts"][0]["amount"] == "0.00"


# --- customer response rate -----------------------------------------------------------------------

def test_response_rate_counts_marks_among_customers_the_recognition_reached(app: Flask, workspace: Any) -> None:
    """Reached: a (credit), b (email), c (celebrated by hand), e (responded). Not reached: d (only the
    team's alert), f (waits for review). Held out: g, left out. Responded: a and e → 2 of 4 = 50%."""

    def rows_for(rows: Any) -> None:
        c = rows.customer("resp@example.com")
        day = MAY + timedelta(days=5)

        def m(n: int, key: str = "order-25", context: dict[str, Any] | None = None, **values: Any) -> Any:
            row = rows.milestone(c, key, achieved_at=day, occurrence=n, **values)
            row.context = context or {}
            return row

        rows.effect(m(1, context={"response": {"at": "x", "by": "ops"}}), "store_credit", "succeeded", credit("10.00"))
        rows.effect(m(2), "email", "succeeded")
        m(3, celebrated=True, celebrated_at=day + timedelta(hours=2))
        rows.effect(m(4), "slack_alert", "succeeded")
        rows.effect(m(5, context={"response": {"at": "x", "by": "ops"}}), "slack_alert", "succeeded")
        rows.effect(m(6, status="pending_review"), "store_credit", "held", credit("10.00"))
        rows.effect(m(7, context={"holdout": True, "response": {"at": "x", "by": "ops"}}), "slack_alert", "succeeded")

    build(app, workspace.id, rows_for)
    figures = _figures(app, workspace.id, date(2026, 5, 1))
    assert figures["response_rate"] == {"count": 2, "of": 4, "rate": "0.5000", "target": "0.10", "met": True,
                                        "source": "marked by hand"}
    # the held-out milestone is deliberately unrewarded: out of the recognition rate too (1 and 6 left of 1..6)
    assert figures["recognition_rate"]["of"] == 6


# --- chart series ------------------------------------------------------------------------------

def test_weeks_and_months_for_the_charts(app: Flask, workspace: Any) -> None:
    def rows_for(rows: Any) -> None:
        c = rows.customer("series@example.com")
        for n, (when, amount) in enumerate([(datetime(2026, 6, 15, 9, tzinfo=UTC), "10.00"),  # Monday of the last week
                                            (datetime(2026, 6, 14, 9, tzinfo=UTC), "25.00"),  # Sunday before it
                                            (datetime(2026, 3, 25, 9, tzinfo=UTC), "10.00"),  # week of Mar 23
                                            (datetime(2025, 12, 30, 9, tzinfo=UTC), "5.00")]):  # out of range
            milestone = rows.milestone(c, "order-25", achieved_at=when, occurrence=n + 1)
            rows.effect(milestone, "store_credit", "succeeded", credit(amount), completed_at=when)
        rows.milestone(c, "order-1", achieved_at=datetime(2026, 6, 16, tzinfo=UTC), status="historical")

    build(app, workspace.id, rows_for)
    with services_of(app).sessions() as session:
        ws = session.get(Workspace, workspace.id)
        assert ws is not None
        weeks = trends.weekly_milestones(session, ws, date(2026, 6, 20))
        months = trends.monthly(session, ws, date(2026, 6, 1))
    assert len(weeks) == 12 and weeks[0]["week_of"] == "2026-03-30" and weeks[-1] == {"week_of": "2026-06-15", "count": 1}
    assert weeks[-2] == {"week_of": "2026-06-08", "count": 1} and sum(w["count"] for w in weeks) == 2
    assert [m["month"] for m in months] == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
    assert [m["milestones"] for m in months] == [0, 0, 1, 0, 0, 2]
    assert months[5]["credits_issued"] == [{"currency": "USD", "amount": "35.00"}]
    assert months[2]["credits_issued"] == [{"currency": "USD", "amount": "10.00"}] and months[0]["credits_issued"] == []


# --- SVG charts -------------------------------------------------------------------------------

def test_ticks_are_round_numbers_above_the_highest_bar() -> None:
    assert charts.nice_ticks(Decimal(14)) == [0, 5, 10, 15]
    assert charts.nice_ticks(Decimal(3)) == [0, 1, 2, 3]
    assert charts.nice_ticks(Decimal(0)) == [0, 1]
    assert charts.nice_ticks(Decimal("1240"), integer=False) == [0, 500, 1000, 1500]
    assert charts.nice_ticks(Decimal("7.5"), integer=False) == [0, 2, 4, 6, 8]


def test_a_bar_chart_is_drawn_to_scale_and_described_in_words() -> None:
    chart = charts.BarChart(
        chart_id="weekly", title="Milestones <per> week", labels=["Jun 1", "Jun 8", "Jun 15"],
        long_labels=["Week of Jun 1", "Week of Jun 8", "Week of Jun 15"],
        series=[charts.Series("Milestones", [10, 0, 5], text=lambda v: f"{v} milestones")],
    )
    svg = str(charts.render(chart))
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 640 240" role="img" '
                          'aria-labelledby="weekly-title weekly-desc"')
    assert "<title id=\"weekly-title\">Milestones &lt;per&gt; week</title>" in svg
    assert ("Milestones &lt;per&gt; week. Week of Jun 1: 10 milestones; Week of Jun 8: 0 milestones; "
            "Week of Jun 15: 5 milestones.") in svg
    heights = [float(h) for h in re.findall(r'<rect class="bar" [^>]*height="([\d.]+)"', svg)]
    assert heights == [186.0, 0.0, 93.0]  # the plot is 186 high and the top tick is 10
    assert "<title>Week of Jun 15: 5 milestones</title>" in svg
    assert re.findall(r'class="tick"[^>]*>([^<]+)<', svg) == ["0", "5", "10"]
    assert "Nothing in this period yet" not in svg


def test_an_empty_chart_says_so_and_several_series_get_a_legend() -> None:
    empty = str(charts.render(charts.BarChart("e", "Credits", ["Jan"], [charts.Series("USD", [0])])))
    assert "Nothing in this period yet" in empty
    two = str(charts.render(charts.BarChart("t", "Credits", ["Jan", "Feb"], [
        charts.Series("USD", [Decimal("40"), Decimal("10")]), charts.Series("EUR", [Decimal("20"), 0], css_class="bar alt")])))
    assert two.count("<rect") == 4 + 2  # four bars and two legend keys
    assert 'class="legend"' in two and ">EUR<" in two and "Jan: USD 40, EUR 20" in two
