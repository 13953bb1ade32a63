"""A customer's page (counters, account context, favourites, milestones) and the case-study
candidates of PRD-114 US-3 with their CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from plugin.models import CustomerIdentity
from tests.api.support import build
from tests.console.milestone_data import add_order

T = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def _accounts(shop_id: Any) -> Any:
    def rows_for(rows: Any) -> dict[str, Any]:
        cafe = rows.customer(
            "orders@peninsula-pantry.example", {"order_count": "112", "lifetime_spend": "8450.50"},
            first_name="Priya", last_name="Patel", company_name="Peninsula Pantry Café", arr=Decimal("96000"),
            health_score=88, owner_email="maya@redhillfresh.example", customer_since=T - timedelta(days=800),
        )
        for week in range(3):
            add_order(rows, cafe, shop_id, T - timedelta(days=7 * week), "180.00",
                      [("Seasonal veg box", 4), ("Free-range eggs (dozen)", 6), ("Peninsula honey 500g", 1)])
        add_order(rows, cafe, shop_id, T - timedelta(days=30), "40.00", [("Peninsula honey 500g", 2)])
        rows.session.add(CustomerIdentity(workspace_id=rows.workspace_id, connection_id=shop_id, external_id="7001",
                                          customer_id=cafe.id))
        m100 = rows.milestone(cafe, "order-100", achieved_at=T - timedelta(days=20), celebrated=True,
                              celebrated_at=T - timedelta(days=19), celebration_type="call")
        rows.milestone(cafe, "spend-5000", achieved_at=T - timedelta(days=90))
        small = rows.customer("corner@shop.example", first_name="Sam", last_name="Lee", company_name="Corner Shop",
                              arr=Decimal("12000"), health_score=55)
        rows.milestone(small, "order-50", achieved_at=T - timedelta(days=5))
        formula = rows.customer("=cmd@evil.example", first_name="=HYPERLINK(1)", arr=Decimal("50000"),
                                health_score=90)
        rows.milestone(formula, "anniversary-5y", achieved_at=T - timedelta(days=3))
        rows.milestone(rows.customer("plain@example.com"), "order-10", achieved_at=T)  # not significant
        return {"cafe": cafe.id, "small": small.id, "m100": m100.id}

    return rows_for


def test_the_customer_page_shows_counters_context_favourites_and_milestones(
    app: Flask, workspace: Any, shop: Any, console: FlaskClient
) -> None:
    ids = build(app, workspace.id, _accounts(shop.id))
    page = console.get(f"/admin/milestones/customers/{ids['cafe']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Priya Patel" in html and "Peninsula Pantry Café" in html
    assert "$96,000.00" in html and ">88 " in html and "maya@redhillfresh.example" in html  # ARR, health, CSM
    assert "$8,450.50" in html and "112" in html  # lifetime spend, order count
    # favourites by quantity bought: 18 eggs, 12 veg boxes, 5 jars of honey
    assert "Free-range eggs (dozen), Seasonal veg box, Peninsula honey 500g" in html
    assert "4 in the order ledger" in html and "<dt>Known on</dt><dd>shopify</dd>" in html
    assert html.index("100th Order") < html.index("$5,000 Spent")  # newest first
    assert 'data-state="celebrated"' in html


def test_a_customer_without_orders_says_so(app: Flask, workspace: Any, console: FlaskClient) -> None:
    lone = build(app, workspace.id, lambda rows: rows.customer("lone@example.com").id)
    html = console.get(f"/admin/milestones/customers/{lone}").get_data(as_text=True)
    assert "the order ledger has no line items for them" in html and "No milestone yet." in html


def test_another_workspaces_customer_is_not_found(
    app: Flask, workspace: Any, other_workspace: Any, console: FlaskClient
) -> None:
    theirs = build(app, other_workspace.id, lambda rows: rows.customer("theirs@example.com").id)
    answer = console.get(f"/admin/milestones/customers/{theirs}")
    assert answer.status_code == 404 and "theirs@example.com" not in answer.get_data(as_text=True)
    assert console.get("/admin/milestones/customers/not-a-uuid").status_code == 404


def test_candidates_are_significant_milestones_biggest_accounts_first(
    app: Flask, workspace: Any, shop: Any, console: FlaskClient
) -> None:
    build(app, workspace.id, _accounts(shop.id))
    html = console.get("/admin/milestones/candidates").get_data(as_text=True)
    assert html.index("Priya Patel") < html.index("HYPERLINK") < html.index("Sam Lee")
    assert "plain@example.com" not in html  # a 10th order is not significant
    filtered = console.get("/admin/milestones/candidates?min_arr=50,000&min_health=80&milestone_type=order")
    text = filtered.get_data(as_text=True)
    assert "Priya Patel" in text and "Sam Lee" not in text and "HYPERLINK" not in text
    assert 'href="/admin/milestones/candidates.csv?min_arr=50%2C000&amp;min_health=80&amp;milestone_type=order"' in text


def test_candidates_export_as_csv_with_the_same_filters(
    app: Flask, workspace: Any, shop: Any, console: FlaskClient
) -> None:
    build(app, workspace.id, _accounts(shop.id))
    answer = console.get("/admin/milestones/candidates.csv?min_arr=40000")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert [r["email"] for r in rows] == ["orders@peninsula-pantry.example", "'=cmd@evil.example"]
    assert rows[0]["arr"] == "96000.00" and rows[0]["celebrated"] == "yes"
    assert rows[0]["significant_milestones"] == "100th Order; $5,000 Spent"
    assert rows[1]["name"] == "'=HYPERLINK(1)"  # a spreadsheet shows it, never runs it


def test_bad_candidate_filters_are_explained(app: Flask, workspace: Any, console: FlaskClient) -> None:
    for query, message in (("min_arr=lots", "Minimum ARR is an amount such as 50000."),
                           ("min_health=-3", "Minimum health score is a whole number from 0.")):
        page = console.get(f"/admin/milestones/candidates?{query}")
        assert page.status_code == 400 and message in page.get_data(as_text=True)
        export = console.get(f"/admin/milestones/candidates.csv?{query}")
        assert export.status_code == 400 and message in export.get_data(as_text=True)
