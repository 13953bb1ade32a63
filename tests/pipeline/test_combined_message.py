"""One order that crosses three milestones: one Slack alert, one CRM note, one email — not three.

The platforms are faked with their documented shapes: HubSpot search/notes
(https://developers.hubspot.com/docs/api/crm/search, /crm/notes), Slack chat.postMessage and
chat.update (https://docs.slack.dev/reference/methods/chat.postMessage, /chat.update), Klaviyo
Create Event (202, empty body: https://developers.klaviyo.com/en/reference/create_event) and
Shopify tagsAdd (https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/tagsAdd).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
from sqlalchemy import select, update

from plugin.admin.milestones import states_of
from plugin.db import transaction, utcnow
from plugin.jobs.effects import run_effects
from plugin.milestones.award import Crossing
from plugin.milestones.combined import MAX_COVERED, groups
from plugin.models import Customer, CustomerMilestone, Effect, MilestoneDefinition
from tests.backfill.support import backfill, csv_file, orders_of
from tests.conftest import add_connection, services_of
from tests.jobs.test_effects import GRAPHQL
from tests.slack.test_interactions import CSM, click
from tests.support import milestone_keys, order, post_order

HUBSPOT = "https://hubspot.test"
SLACK = "https://slack.test/api"
KLAVIYO = "https://klaviyo.test"
EVENTS = f"{KLAVIYO}/api/events"
NOTES = f"{HUBSPOT}/crm/v3/objects/notes"
POST = f"{SLACK}/chat.postMessage"
AUTH = {"Authorization": "Bearer test-admin-token"}
BIG_FIRST_ORDER = order(1, total="1200.00")  # 1st order, $500 spent and $1,000 spent at once
THREE = ["1st Order", "$500 Spent", "$1,000 Spent"]


@pytest.fixture
def klaviyo(app, workspace):
    return add_connection(app, workspace.id, "klaviyo", {"api_key": "pk_test", "base_url": KLAVIYO})


@pytest.fixture
def platforms() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(f"{HUBSPOT}/crm/v3/objects/contacts/search", json={"total": 1, "results": [{"id": "512"}]})
        mock.post(NOTES, status=201, json={"id": "9001", "properties": {}, "createdAt": "2026-01-06T09:00:00Z",
                                           "updatedAt": "2026-01-06T09:00:00Z", "archived": False})
        mock.post(POST, json={"ok": True, "channel": "C0CSM01", "ts": "1767690000.000100", "message": {"text": "..."}})
        mock.post(f"{SLACK}/chat.update", json={"ok": True, "channel": "C0CSM01", "ts": "1767690000.000100",
                                                "text": "updated"})
        mock.post(EVENTS, status=202, body="")
        mock.post(GRAPHQL, json={"data": {"tagsAdd": {"node": {"id": "gid://shopify/Customer/7001"},
                                                      "userErrors": []}}})
        yield mock


def every_milestone_emails(app: Any) -> None:
    """Give the $1,000 milestone an email too (the catalogue gives it a tag only)."""
    with transaction(services_of(app).sessions) as session:
        definition = session.execute(select(MilestoneDefinition).where(MilestoneDefinition.key == "spend-1000")).scalar_one()
        definition.recognition = [*definition.recognition, {"kind": "email", "template": "thank-you-note"}]


def time_passes(app: Any) -> None:
    """The email waited for the tag to settle; its next look is now."""
    with services_of(app).sessions() as session:
        session.execute(update(Effect).where(Effect.status == "pending").values(next_attempt_at=utcnow()))
        session.commit()
    with app.app_context():
        run_effects()


def bodies(mock: responses.RequestsMock, url: str) -> list[dict[str, Any]]:
    return [json.loads(c.request.body) for c in mock.calls if c.request.url == url]


def milestone_ids(app: Any) -> dict[str, Any]:
    with services_of(app).sessions() as session:
        return {name: mid for mid, name in session.execute(select(CustomerMilestone.id, CustomerMilestone.milestone_name))}


def effects(app: Any, kind: str) -> list[Effect]:
    with services_of(app).sessions() as session:
        return list(session.execute(select(Effect).where(Effect.kind == kind).order_by(Effect.id)).scalars())


def test_one_order_crossing_three_milestones_sends_one_alert_one_note_and_one_email(
    app, client, shop, hubspot, slack, klaviyo, platforms
):
    every_milestone_emails(app)
    assert post_order(client, BIG_FIRST_ORDER).status_code == 200
    time_passes(app)

    assert milestone_keys(services_of(app)) == [("order-1", 1), ("spend-1000", 1), ("spend-500", 1)]
    ids = milestone_ids(app)
    in_order = [str(ids[name]) for name in THREE]

    [post] = bodies(platforms, POST)
    text = json.dumps(post["blocks"])
    assert post["blocks"][0]["text"]["text"] == ":trophy: Customer Milestone: Alice Nguyen"
    assert "*Milestones Achieved:* 1st Order, $500 Spent and $1,000 Spent!" in text
    sections = [b["text"]["text"] for b in post["blocks"] if b["type"] == "section"]
    assert [s.split("\n")[0] for s in sections if s.startswith("*") and "\n- Milestone:" in s] == [
        "*1st Order*", "*$500 Spent*", "*$1,000 Spent*"]
    assert all(f"Milestone: {d}" in text for d in ("Order count reached 1", "Lifetime spend reached $500",
                                                   "Lifetime spend reached $1,000"))
    buttons = [b for b in post["blocks"] if b["type"] == "actions"][0]["elements"]
    assert {button["value"] for button in buttons} == {",".join(in_order)}

    [note] = bodies(platforms, NOTES)
    body = note["properties"]["hs_note_body"]
    assert all(f"<strong>{name}</strong>" in body for name in THREE) and body.count("🏆") == 3

    [event] = [e["data"]["attributes"] for e in bodies(platforms, EVENTS)]
    properties = event["properties"]
    assert properties["milestone_key"] == "order-1" and properties["subject"] == "Welcome to the Red Hill Fresh family, Alice!"
    assert properties["milestone_count"] == 3
    assert properties["milestone_names"] == "1st Order, $500 Spent and $1,000 Spent"
    assert "you've also reached the $500 Spent and $1,000 Spent milestones." in properties["message_text"]
    assert "Upgraded to Loyalty Tier 2" in properties["message_text"]  # the $1,000 milestone's reward, applied

    for kind in ("slack_alert", "crm_note", "email"):
        [effect] = effects(app, kind)
        assert effect.status == "succeeded"
        assert effect.payload["covers"] == in_order and str(effect.milestone_id) == in_order[0]
    assert [e.status for e in effects(app, "customer_tag")] == ["succeeded"]  # rewards stay per milestone
    assert [e.status for e in effects(app, "task")] == ["open_task"]


def test_replaying_the_same_deliveries_sends_nothing_new(app, client, shop, hubspot, slack, klaviyo, platforms):
    every_milestone_emails(app)
    post_order(client, BIG_FIRST_ORDER, event_id="evt-1")
    time_passes(app)
    calls, rows = len(platforms.calls), len(effects(app, "slack_alert") + effects(app, "email"))

    post_order(client, BIG_FIRST_ORDER, event_id="evt-1")  # Shopify's retry of the same delivery
    post_order(client, BIG_FIRST_ORDER, topic="orders/updated")  # the same order, delivered again
    time_passes(app)

    assert len(platforms.calls) == calls
    assert len(effects(app, "slack_alert") + effects(app, "email")) == rows == 2
    assert len(milestone_keys(services_of(app))) == 3


def test_each_covered_milestone_finds_the_combined_message(app, client, shop, hubspot, slack, platforms):
    post_order(client, BIG_FIRST_ORDER)  # no email platform: each email waits as no_connection, on its own
    ids = milestone_ids(app)

    feed = client.get("/api/milestones", headers=AUTH).get_json()["items"]
    kinds = {item["milestone_name"]: sorted(e["kind"] for e in item["effects"]) for item in feed}
    assert kinds == {
        "1st Order": ["crm_note", "email", "slack_alert", "task"],
        "$500 Spent": ["crm_note", "email", "slack_alert"],
        "$1,000 Spent": ["crm_note", "customer_tag", "slack_alert"],
    }
    with services_of(app).sessions() as session:
        workspace_id = session.scalar(select(Customer.workspace_id))
        states = states_of(session, workspace_id, list(ids.values()))
    # $500's own effect is an email nobody can send: the team was told by the shared alert and note.
    assert states == {ids["1st Order"]: "alerted", ids["$500 Spent"]: "alerted", ids["$1,000 Spent"]: "rewarded"}

    with services_of(app).sessions() as session:  # the shared alert failed for good after all
        session.execute(update(Effect).where(Effect.kind == "slack_alert").values(status="dead"))
        session.commit()
        states = states_of(session, workspace_id, list(ids.values()))
    assert set(states.values()) == {"failed"}
    dashboard = client.get("/api/dashboard?month=2026-01", headers=AUTH).get_json()
    # $1,000's own tag succeeded, but the alert about it did not: none of the three is fully recognised.
    assert (dashboard["recognition_rate"]["count"], dashboard["recognition_rate"]["of"]) == (0, 3)


def button_click(post: dict[str, Any], action_id: str) -> dict[str, Any]:
    """Slack's block_actions payload for a click on ``action_id`` of the alert ``post``."""
    [button] = [e for b in post["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action_id]
    return {
        "type": "block_actions", "user": CSM, "api_app_id": "A0MILESTONES", "team": {"id": "T0TEAM"},
        "container": {"type": "message", "message_ts": "1767690000.000100", "channel_id": "C0CSM01"},
        "channel": {"id": "C0CSM01"},
        "message": {"type": "message", "text": post["text"], "ts": "1767690000.000100", "blocks": post["blocks"]},
        "actions": [{"action_id": action_id, "block_id": "milestone_actions", "value": button["value"],
                     "type": "button", "action_ts": "1767690100.000200"}],
    }


def test_the_slack_buttons_of_a_combined_alert_act_on_every_milestone(
    app, client, shop, hubspot, slack, klaviyo, platforms
):
    post_order(client, BIG_FIRST_ORDER)
    [post] = bodies(platforms, POST)
    assert click(client, slack.id, button_click(post, "mark_celebrated")).status_code == 200

    with services_of(app).sessions() as session:
        rows = session.execute(select(CustomerMilestone)).scalars().all()
    assert len(rows) == 3 and all(m.celebrated and m.celebration_type == "slack" for m in rows)
    assert {m.notes for m in rows} == {"Marked celebrated by @jane in Slack"}
    [redrawn] = bodies(platforms, f"{SLACK}/chat.update")
    assert [b["elements"][0]["text"] for b in redrawn["blocks"] if b["type"] == "context"] == [
        "✅ Marked celebrated by <@U0CSM1>"]


def test_send_celebration_email_on_a_combined_alert_sends_one_email_about_all(
    app, client, shop, hubspot, slack, klaviyo, platforms
):
    post_order(client, BIG_FIRST_ORDER)
    time_passes(app)
    [post] = bodies(platforms, POST)
    sent_before = len(bodies(platforms, EVENTS))
    click(client, slack.id, button_click(post, "send_celebration_email"))
    click(client, slack.id, button_click(post, "send_celebration_email"))  # a double click

    asked = [e for e in effects(app, "email") if e.idempotency_key.endswith(":slack:send_celebration_email")]
    assert len(asked) == 1 and asked[0].status == "succeeded" and len(asked[0].payload["covers"]) == 3
    [event] = [e["data"]["attributes"] for e in bodies(platforms, EVENTS)[sent_before:]]
    assert event["properties"]["subject"] == "Congratulations on 1st Order!"
    assert event["properties"]["milestone_names"] == "1st Order, $500 Spent and $1,000 Spent"


def test_a_milestone_held_for_review_keeps_its_own_email_and_the_others_share_one(
    app, client, shop, hubspot, slack, klaviyo, platforms
):
    every_milestone_emails(app)
    with transaction(services_of(app).sessions) as session:
        session.execute(update(MilestoneDefinition).where(MilestoneDefinition.key == "spend-1000")
                        .values(requires_review=True))
    post_order(client, BIG_FIRST_ORDER)
    ids = milestone_ids(app)

    emails = effects(app, "email")
    assert len(emails) == 2
    shared = next(e for e in emails if e.payload.get("covers"))
    held = next(e for e in emails if not e.payload.get("covers"))
    assert shared.payload["covers"] == [str(ids["1st Order"]), str(ids["$500 Spent"])]
    assert (held.milestone_id, held.status) == (ids["$1,000 Spent"], "held")
    [alert] = effects(app, "slack_alert")  # the team hears about all three at once, review or not
    assert len(alert.payload["covers"]) == 3


def test_an_opt_out_cancels_each_email_and_the_alert_is_still_one(app, client, shop, hubspot, slack, klaviyo, platforms):
    post_order(client, order(1, total="20.00"))
    with transaction(services_of(app).sessions) as session:
        session.execute(update(Customer).values(properties={"opt_out": ["email"]}))
    every_milestone_emails(app)
    post_order(client, order(2, total="1180.00"))  # $500 and $1,000 spent at once

    emails = [e for e in effects(app, "email") if e.payload.get("action", {}).get("template") == "thank-you-note"]
    assert [(e.status, "opted out" in (e.last_error or "")) for e in emails] == [("cancelled", True)] * 2
    assert not any(e.payload.get("covers") for e in emails)
    alerts = bodies(platforms, POST)
    assert len(alerts) == 2  # the first order's, then one for both spend milestones
    assert "$500 Spent and $1,000 Spent!" in json.dumps(alerts[1]["blocks"])
    assert len(bodies(platforms, EVENTS)) == 1  # only the welcome email, sent before the opt-out


def test_a_backfill_that_celebrates_a_customers_history_sends_one_message_per_customer(
    app, shop, hubspot, slack, platforms, tmp_path
):
    weekly = [datetime(2026, 3, 1, 10, tzinfo=UTC) + timedelta(days=7 * n) for n in range(10)]
    rows = orders_of("70", "kim@example.com", weekly) + orders_of("71", "lee@example.com", weekly[:1])
    backfill(app, shop.id, file=str(csv_file(tmp_path / "history.csv", rows)), mode="all")
    with app.app_context():
        run_effects()

    posts = bodies(platforms, POST)
    headlines = sorted(b["text"]["text"] for post in posts for b in post["blocks"]
                       if b["type"] == "section" and "Achieved:*" in b["text"]["text"])
    assert headlines == ["*Milestone Achieved:* 1st Order!", "*Milestones Achieved:* 1st Order and 10th Order!"]
    assert len(bodies(platforms, NOTES)) == 2
    [combined_alert] = [e for e in effects(app, "slack_alert") if e.payload.get("covers")]
    assert len(combined_alert.payload["covers"]) == 2


def test_groups_are_a_customers_milestones_of_one_moment_or_one_occasion():
    ann, bob = uuid.uuid4(), uuid.uuid4()
    monday, friday = datetime(2026, 1, 5, 9, tzinfo=UTC), datetime(2026, 1, 9, 9, tzinfo=UTC)

    def crossing(customer: uuid.UUID, when: datetime, occasion: str | None = None) -> tuple[dict[str, Any], Any]:
        return {"id": uuid.uuid4()}, Crossing(workspace_id=uuid.uuid4(), customer_id=customer, definition=None,  # type: ignore[arg-type]
                                              occurrence=1, value="1", achieved_at=when, customer_since=None,
                                              metrics={}, source="test", occasion=occasion)

    one_order = [crossing(ann, monday), crossing(ann, monday)]
    later_order, other_customer = crossing(ann, friday), crossing(bob, monday)
    history = [crossing(bob, monday, "backfill 7"), crossing(bob, friday, "backfill 7")]
    awarded = [*one_order, later_order, other_customer, *history]
    assert groups(awarded) == [[m["id"] for m, _ in one_order], [later_order[0]["id"]], [other_customer[0]["id"]],
                               [m["id"] for m, _ in history]]
    many = [crossing(ann, monday) for _ in range(MAX_COVERED + 1)]
    assert [len(g) for g in groups(many)] == [MAX_COVERED, 1]
