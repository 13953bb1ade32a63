"""The monthly dashboard on a small dataset whose every figure is worked out by hand.

The workspace is in New York, so a milestone at 03:00 UTC on March 1st belongs to February.
March 2026 holds:

    milestone     definition   significant  effects                              celebrated after
    m1 Mar 5      order-25     no           credit $10 ok, note ok               2 hours
    m2 Mar 10     order-25     no           credit dead, note ok                 -
    m3 Mar 12     order-50     yes          credit $25 ok, alert ok              1 day
    m4 Mar 20     spend-2500   yes          task open, note no_connection        -
    m5 Mar 21     order-100    yes          (rejected)                           -
    m6 Mar 3      order-1      -            (historical: left out)               -
    m7 Feb 28 local order-10   -            credit $5 ok, issued Mar 2           -

credits issued in March: 10 + 25 + 5 = $40; significant celebrated: m3 of m3, m4 = 50%;
recognition rate: m1, m3 of m1..m4 = 50%; median time to celebration: (2 h + 24 h) / 2 = 13 h.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from plugin.db import utcnow
from plugin.models import CustomerMilestone, Workspace
from tests.api.support import AUTH, OTHER_AUTH, credit


def _march(rows):
    rows.session.get(Workspace, rows.workspace_id).timezone = "America/New_York"
    c = rows.customer("regular@example.com")

    def at(day, hour=15):
        return datetime(2026, 3, day, hour, tzinfo=UTC)

    m1 = rows.milestone(c, "order-25", achieved_at=at(5), celebrated=True, celebrated_at=at(5) + timedelta(hours=2))
    rows.effect(m1, "store_credit", "succeeded", credit("10.00"), completed_at=at(5))
    rows.effect(m1, "crm_note", "succeeded")
    m2 = rows.milestone(c, "order-25", achieved_at=at(10), occurrence=2)
    rows.effect(m2, "store_credit", "dead", credit("10.00"), last_error="401")
    rows.effect(m2, "crm_note", "succeeded")
    m3 = rows.milestone(c, "order-50", achieved_at=at(12), celebrated=True, celebrated_at=at(13))
    rows.effect(m3, "store_credit", "succeeded", credit("25.00"), completed_at=at(12))
    rows.effect(m3, "slack_alert", "succeeded")
    m4 = rows.milestone(c, "spend-2500", achieved_at=at(20))
    rows.effect(m4, "task", "open_task")
    rows.effect(m4, "crm_note", "no_connection")
    rows.effect(m4, "slack_alert", "pending", attempts=2, last_error="502 Bad Gateway")
    rows.milestone(c, "order-100", achieved_at=at(21), status="rejected")
    rows.milestone(c, "order-1", achieved_at=at(3), status="historical")
    m7 = rows.milestone(c, "order-10", achieved_at=at(1, hour=3))
    rows.effect(m7, "store_credit", "succeeded", credit("5.00"), completed_at=at(2))


def test_the_monthly_figures_match_the_hand_count(client, workspace, build):
    build(_march)
    response = client.get("/api/dashboard?month=2026-03", headers=AUTH)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["month"], body["timezone"], body["milestones"]) == ("2026-03", "America/New_York", 5)
    assert body["from"] == "2026-03-01T00:00:00-05:00"
    tracker = {row["key"]: (row["count"], row["value"]) for row in body["tracker"]}
    assert tracker["order-25"] == (2, [{"currency": "USD", "amount": "10.00"}])
    assert tracker["order-50"] == (1, [{"currency": "USD", "amount": "25.00"}])
    assert tracker["spend-2500"] == (1, []) and tracker["order-100"] == (1, [])
    assert tracker["order-1"] == (0, []) and tracker["order-10"] == (0, [])
    assert [row["key"] for row in body["tracker"]][:3] == ["order-1", "order-10", "order-25"]
    assert body["credits_issued"] == [{"currency": "USD", "amount": "40.00"}]
    assert body["significant_celebrated"] == {"count": 1, "of": 2, "rate": "0.5000", "target": "0.80", "met": False}
    assert body["recognition_rate"] == {"count": 2, "of": 4, "rate": "0.5000", "target": "1.00", "met": False}
    assert body["time_to_celebration"] == {"celebrated": 2, "median_seconds": 13 * 3600, "median": "13 hours",
                                           "target_seconds": 86400, "met": True}
    assert body["effects"] == {"retrying": 1, "dead": 1, "no_connection": 1}
    assert body["milestones_per_week"] == [{"week_of": "2026-03-02", "count": 1},
                                           {"week_of": "2026-03-09", "count": 2},
                                           {"week_of": "2026-03-16", "count": 2}]


def test_february_gets_the_milestone_that_was_february_in_new_york(client, workspace, build):
    build(_march)
    body = client.get("/api/dashboard?month=2026-02", headers=AUTH).get_json()
    assert body["milestones"] == 1
    assert {row["key"]: row["count"] for row in body["tracker"]}["order-10"] == 1
    assert body["credits_issued"] == []  # its credit was issued in March
    assert body["recognition_rate"]["rate"] == "1.0000"
    assert body["significant_celebrated"] == {"count": 0, "of": 0, "rate": None, "target": "0.80", "met": None}


def test_the_month_defaults_to_this_one_and_must_be_a_month(client, workspace, other_workspace, build):
    build(_march)
    this_month = client.get("/api/dashboard", headers=AUTH).get_json()["month"]
    assert this_month in {f"{utcnow() + timedelta(hours=h):%Y-%m}" for h in (-12, 0)}
    for bad in ("2026-13", "March", "2026-3", "0999-01"):
        response = client.get(f"/api/dashboard?month={bad}", headers=AUTH)
        assert response.status_code == 400 and "YYYY-MM" in response.get_json()["error"], bad
    theirs = client.get("/api/dashboard?month=2026-03", headers=OTHER_AUTH).get_json()
    assert theirs["milestones"] == 0 and theirs["credits_issued"] == [] and theirs["effects"]["dead"] == 0


def test_the_api_answers_the_new_figures_the_settings_page_shows(client, workspace, build):
    """m1's and m3's credits reached their customer (m2's died, m4 and m5 reached nobody); m1 was
    marked responded by hand: 1 of 2. The charts' series come with the month."""
    def responded(rows):
        _march(rows)
        first = rows.session.execute(
            select(CustomerMilestone).where(CustomerMilestone.workspace_id == rows.workspace_id,
                                            CustomerMilestone.milestone_type == "order", CustomerMilestone.occurrence == 1,
                                            CustomerMilestone.milestone_value == "25")
        ).scalar_one()
        first.context = {"response": {"at": "2026-03-06T10:00:00+00:00", "by": "ops@example.com"}}

    build(responded)
    body = client.get("/api/dashboard?month=2026-03&lift_window_days=60", headers=AUTH).get_json()
    assert body["response_rate"] == {"count": 1, "of": 2, "rate": "0.5000", "target": "0.10", "met": True,
                                     "source": "marked by hand"}
    assert body["retention_lift"]["window_days"] == 60 and body["retention_lift"]["overall"] is None
    assert body["retention_value"]["lift_source"] == "target" and body["pending_reviews"] == 0
    assert [m["month"] for m in body["monthly"]] == ["2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03"]
    assert body["monthly"][-1] == {"month": "2026-03", "milestones": 5,
                                   "credits_issued": [{"currency": "USD", "amount": "40.00"}]}
    assert body["monthly"][-2]["milestones"] == 1  # m7, February in New York
    assert len(body["weekly"]) == 12 and body["weekly"][-1]["week_of"] == "2026-03-30"


def test_the_lift_window_must_be_days_in_a_year(client, workspace):
    for bad in ("0", "366", "soon"):
        response = client.get(f"/api/dashboard?lift_window_days={bad}", headers=AUTH)
        assert response.status_code == 400, bad
