"""Each milestone's celebration state, derived from its status, its effects and the hand marks.

One milestone per case, the state each must show, and why (the first rule that applies wins):

    historical, rejected, pending review   the milestone's own status
    failed         a dead effect, even when it was celebrated by hand (a failure must not hide)
    celebrated     marked celebrated, even in the holdout
    held out       in the holdout: rewards cancelled, the team's alert still ran
    rewarded       a customer-facing effect succeeded, or a gift task was done
    alerted        only the team's effects succeeded, a credit still pending
    in progress    effects queued or an open task
    recorded       nothing to run (no effect, or no platform connected to run them)
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from plugin.admin import milestones
from plugin.models import CustomerMilestone, Workspace
from tests.api.support import build, credit
from tests.conftest import services_of


def _cases(rows: Any) -> dict[str, Any]:
    c = rows.customer("states@example.com")
    made: dict[str, Any] = {}

    def one(name: str, key: str = "order-25", effects: tuple[tuple[str, str], ...] = (),
            context: dict[str, Any] | None = None, **values: Any) -> None:
        m = rows.milestone(c, key, occurrence=len(made) + 1, **values)
        m.context = context or {}  # the holdout mark, as plugin.milestones.policies records it
        for kind, status in effects:
            rows.effect(m, kind, status, credit("10.00") if kind == "store_credit" else None)
        made[name] = m.id

    one("historical", status="historical")
    one("rejected", status="rejected", effects=(("store_credit", "cancelled"),))
    one("pending_review", status="pending_review", effects=(("store_credit", "held"), ("slack_alert", "succeeded")))
    one("failed", celebrated=True, effects=(("store_credit", "succeeded"), ("crm_note", "dead")))
    one("celebrated", celebrated=True, context={"holdout": True}, effects=(("slack_alert", "succeeded"),))
    one("held_out", context={"holdout": True}, effects=(("store_credit", "cancelled"), ("slack_alert", "succeeded")))
    one("rewarded", effects=(("store_credit", "succeeded"), ("slack_alert", "pending")))
    one("rewarded_by_hand", effects=(("task", "done_task"), ("crm_note", "succeeded")))
    one("alerted", effects=(("slack_alert", "succeeded"), ("store_credit", "pending")))
    one("in_progress", effects=(("task", "open_task"), ("slack_alert", "no_connection")))
    one("recorded")
    one("recorded_unconnected", effects=(("slack_alert", "no_connection"),))
    return made


def test_every_state_follows_its_rule(app: Flask, workspace: Any) -> None:
    made = build(app, workspace.id, _cases)
    with services_of(app).sessions() as session:
        states = milestones.states_of(session, workspace.id, list(made.values()))
    expected = {name: name.split("_by_")[0].removesuffix("_unconnected") for name in made}
    assert {name: states[made[name]] for name in made} == expected


def test_the_feed_filters_on_the_same_states(app: Flask, workspace: Any) -> None:
    def rows_for(rows: Any) -> None:
        c = rows.customer("filter@example.com")
        done = rows.milestone(c, "order-10")
        rows.effect(done, "email", "succeeded")
        rows.milestone(c, "order-25")

    build(app, workspace.id, rows_for)
    with services_of(app).sessions() as session:
        ws = session.get(Workspace, workspace.id)
        assert ws is not None
        rewarded, more = milestones.feed(session, ws, milestones.FeedFilters(state="rewarded"))
        recorded, _ = milestones.feed(session, ws, milestones.FeedFilters(state="recorded"))
        assert [(r.key, r.state) for r in rewarded] == [("order-10", "rewarded")] and more is False
        assert [(r.key, r.state) for r in recorded] == [("order-25", "recorded")]
        assert [e.kind for e in rewarded[0].effects] == ["email"]


def test_states_of_never_reads_another_workspace(app: Flask, workspace: Any, other_workspace: Any) -> None:
    mine = build(app, workspace.id, lambda rows: rows.milestone(rows.customer("m@example.com"), "order-1").id)
    with services_of(app).sessions() as session:
        assert milestones.states_of(session, other_workspace.id, [mine]) == {}
        assert session.scalar(select(CustomerMilestone.status).where(CustomerMilestone.id == mine)) == "active"
