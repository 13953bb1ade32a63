"""The dashboard page: the landing page, each KPI with its target and verdict, the tracker, the
charts, what failed; a chosen month, and bad months explained."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from plugin.models import Workspace
from tests.api.support import build, credit
from tests.console.conftest import OTHER_ADMIN_EMAIL, add_admin, sign_in


def _march(rows: Any) -> None:
    """In New York. March 2026: m1 order-25 ($10 credit, celebrated after 2 h, responded), m2 order-25
    (credit dead), m3 order-50 ($25 credit, celebrated after 1 day), m4 spend-2500 (task open),
    m5 order-100 (waits for review). Significant: m3, m4, m5 → 1 of 3 celebrated."""
    rows.session.get(Workspace, rows.workspace_id).timezone = "America/New_York"
    c = rows.customer("regular@example.com", first_name="Rosa", last_name="Costa")

    def at(day: int) -> datetime:
        return datetime(2026, 3, day, 15, tzinfo=UTC)

    m1 = rows.milestone(c, "order-25", achieved_at=at(5), celebrated=True, celebrated_at=at(5) + timedelta(hours=2))
    m1.context = {"response": {"at": "2026-03-06T10:00:00+00:00", "by": "ops@redhillfresh.example"}}
    rows.effect(m1, "store_credit", "succeeded", credit("10.00"), completed_at=at(5))
    m2 = rows.milestone(c, "order-25", achieved_at=at(10), occurrence=2)
    rows.effect(m2, "store_credit", "dead", credit("10.00"), last_error="Shopify answered 401: token revoked")
    m3 = rows.milestone(c, "order-50", achieved_at=at(12), celebrated=True, celebrated_at=at(13))
    rows.effect(m3, "store_credit", "succeeded", credit("25.00"), completed_at=at(12))
    m4 = rows.milestone(c, "spend-2500", achieved_at=at(20))
    rows.effect(m4, "task", "open_task")
    m5 = rows.milestone(c, "order-100", achieved_at=at(21), status="pending_review")
    rows.effect(m5, "customer_tag", "held")


def _kpi(html: str, name: str) -> str:
    found = re.search(rf'<div class="kpi[^"]*" data-kpi="{name}">(.*?)</div>\s*(?=<div class="kpi|</section>)', html, re.S)
    assert found, name
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


def test_the_settings_page_lands_on_the_dashboard(console: FlaskClient) -> None:
    answer = console.get("/admin/")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/dashboard/")


def test_each_kpi_shows_its_value_target_and_verdict(app: Flask, workspace: Any, console: FlaskClient) -> None:
    build(app, workspace.id, _march)
    page = console.get("/admin/dashboard/?month=2026-03")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "March 2026 · America/New_York" in html
    assert _kpi(html, "milestones").startswith("Milestones achieved 5")
    assert _kpi(html, "credits").startswith("Credits issued $35.00")
    assert _kpi(html, "significant") == ("Significant milestones celebrated PRD-114 33% Target 80% Below target "
                                         "1 of 3 significant milestones")
    assert _kpi(html, "recognition") == "Recognition rate RHF 40% Target 100% Below target 2 of 5 fully recognised"
    assert _kpi(html, "time") == "Median time to celebration 13 hours Target within a day On target over 2 celebrated"
    assert _kpi(html, "response") == ("Customer response rate RHF 50% Target over 10% On target "
                                      "1 of 2 recognised customers responded · marked by hand")
    assert _kpi(html, "lift") == "Retention lift vs holdout RHF — Target +15% No data yet no definition has a holdout"
    assert "No definition has a holdout yet." in html


def test_the_tracker_charts_and_failures_are_on_the_page(app: Flask, workspace: Any, console: FlaskClient) -> None:
    build(app, workspace.id, _march)
    html = console.get("/admin/dashboard/?month=2026-03").get_data(as_text=True)
    tracker = re.findall(r'<tr data-key="([^"]+)">.*?<td class="num">(\d+)</td>\s*<td class="num">([^<]+)</td>', html, re.S)
    assert tracker == [("order-25", "2", "$10.00"), ("order-50", "1", "$25.00"), ("order-100", "1", "—"),
                       ("spend-2500", "1", "—")]
    assert 'data-total="credits"><strong>$35.00</strong>' in html
    assert ("The 1 customer recognised in March 2026 has no known start date to average their spend over, "
            "so no retention value is estimated.") in html
    assert html.count('role="img"') == 2
    assert "Milestones per week, last 12 weeks. " in html and "Week of Mar 9, 2026: 2 milestones" in html
    assert "March 2026: $35.00" in html and "October 2025: $0.00" in html
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))
    assert "1 milestone waits for review" in words and "1 recognition failed for good" in words
    assert "Shopify answered 401: token revoked" in html
    assert 'href="/admin/operations/effects?status=dead">Open Operations</a>' in html


def test_a_month_without_milestones_says_so(app: Flask, workspace: Any, console: FlaskClient) -> None:
    build(app, workspace.id, _march)
    html = console.get("/admin/dashboard/?month=2026-01").get_data(as_text=True)
    assert "No milestone was achieved in January 2026." in html
    assert _kpi(html, "significant").endswith("No data yet 0 of 0 significant milestones")


def test_bad_months_and_windows_are_explained(console: FlaskClient) -> None:
    for query, message in (("month=2026-13", "Choose a month as YYYY-MM"), ("month=March", "Choose a month as YYYY-MM"),
                           ("month=2999-01", "That month has not started yet."),
                           ("window=45", "The repeat-purchase window is one of 14, 30, 60, 90 days.")):
        page = console.get(f"/admin/dashboard/?{query}")
        assert page.status_code == 400 and message in page.get_data(as_text=True), query


def test_another_workspace_sees_none_of_it(app: Flask, workspace: Any, other_workspace: Any) -> None:
    build(app, workspace.id, _march)
    add_admin(app, other_workspace.id, OTHER_ADMIN_EMAIL)
    stranger = app.test_client()
    assert sign_in(stranger, OTHER_ADMIN_EMAIL).status_code == 302
    html = stranger.get("/admin/dashboard/?month=2026-03").get_data(as_text=True)
    assert _kpi(html, "milestones").startswith("Milestones achieved 0")
    assert "token revoked" not in html and "All clear: nothing waits for review" in html
