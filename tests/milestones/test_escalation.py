"""Escalation to the team lead: an exceptional milestone, a VIP customer, an error in a recognition.

Slack's chat.postMessage is faked with its documented answer
(https://docs.slack.dev/reference/methods/chat.postMessage); Shopify's storeCreditAccountCredit
answers 401 as documented for a bad token (https://shopify.dev/docs/api/usage/response-codes).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import responses
from sqlalchemy import select, update

from plugin.db import transaction, utcnow
from plugin.models import Customer, CustomerMetric, CustomerMilestone, Effect, MilestoneDefinition, Workspace
from tests.conftest import add_connection, services_of
from tests.jobs.test_effects import GRAPHQL
from tests.support import order, post_order

SLACK = "https://slack.test/api"
POST = f"{SLACK}/chat.postMessage"
LEADS, CSMS = "C0LEADS1", "C0CSM01"
AUTH = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture
def slack_with_leads(app, workspace) -> Any:
    return add_connection(app, workspace.id, "slack", {
        "bot_token": "xoxb-test", "signing_secret": "slack-secret", "channel": CSMS, "escalation_channel": LEADS,
        "base_url": SLACK})


def _posted(request: Any) -> tuple[int, dict[str, str], str]:
    channel = json.loads(request.body)["channel"]
    answer = {"ok": True, "channel": channel, "ts": f"1767690000.{uuid.uuid4().int % 10**6:06d}",
              "message": {"text": "..."}}
    return 200, {"Content-Type": "application/json"}, json.dumps(answer)


@pytest.fixture
def slack_api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, POST, callback=_posted)
        yield mock


def posts(mock: responses.RequestsMock, channel: str) -> list[dict[str, Any]]:
    sent = [json.loads(c.request.body) for c in mock.calls if c.request.url == POST]
    return [body for body in sent if body["channel"] == channel]


def escalations(app: Any) -> list[Effect]:
    with services_of(app).sessions() as session:
        return list(session.execute(select(Effect).where(Effect.kind == "escalation").order_by(Effect.id)).scalars())


def set_definition(app: Any, key: str, **values: Any) -> None:
    with transaction(services_of(app).sessions) as session:
        session.execute(update(MilestoneDefinition).where(MilestoneDefinition.key == key).values(**values))


def set_workspace(app: Any, **settings: Any) -> None:
    with transaction(services_of(app).sessions) as session:
        session.execute(update(Workspace).values(settings=settings))


def alice(app: Any) -> Customer:
    with services_of(app).sessions() as session:
        return session.execute(select(Customer).where(Customer.email == "alice@example.com")).scalar_one()


def text_of(post: dict[str, Any]) -> str:
    return "\n".join(b["text"]["text"] for b in post["blocks"])


# --- rule 1: an exceptional milestone ----------------------------------------------------------


def test_an_exceptional_milestone_tells_the_team_lead_once(app, client, shop, slack_with_leads, slack_api):
    set_definition(app, "order-1", escalate=True)
    post_order(client, order(1))
    post_order(client, order(1), topic="orders/updated")  # delivered again: nothing new

    [post] = posts(slack_api, LEADS)
    assert post["blocks"][0]["text"]["text"] == ":rotating_light: Escalation: Alice Nguyen"
    text = text_of(post)
    assert "*Why:*\n- Exceptional milestone: 1st Order" in text
    assert "*Milestone:*\n- 1st Order — Order count reached 1 (Jan 6, 2026)" in text
    assert "*Customer:* Alice Nguyen (alice@example.com)\n- Customer since December 2025\n- Orders: 1" in text
    customer_page = f"https://milestones.test/admin/milestones/customers/{alice(app).id}"
    assert "*Next step:* Reach out personally" in text and f"<{customer_page}|Open in the admin>" in text
    assert post["metadata"]["event_type"] == "milestone_escalation"
    assert len(posts(slack_api, CSMS)) == 1  # the CSM's alert goes out as always

    [effect] = escalations(app)
    with services_of(app).sessions() as session:
        milestone_id = session.scalar(select(CustomerMilestone.id))
    assert (effect.status, effect.milestone_id, effect.connection_id) == ("succeeded", milestone_id, slack_with_leads.id)
    assert effect.idempotency_key == f"{milestone_id}:escalation"
    assert effect.external_id == f"{LEADS}:{post_metadata_ts(slack_api)}"


def post_metadata_ts(mock: responses.RequestsMock) -> str:
    answers = [json.loads(c.response.text) for c in mock.calls if c.request.url == POST]
    return next(a["ts"] for a in answers if a["channel"] == LEADS)


def test_an_exceptional_milestone_waiting_for_review_points_to_the_review_queue(
    app, client, shop, slack_with_leads, slack_api
):
    set_definition(app, "order-1", escalate=True, requires_review=True)
    post_order(client, order(1))

    text = text_of(posts(slack_api, LEADS)[0])
    assert "1st Order — Order count reached 1 (Jan 6, 2026) · waits for review" in text
    assert "*Next step:* Approve or reject the held rewards in the review queue" in text
    assert "<https://milestones.test/admin/reviews|Open in the admin>" in text
    [effect] = escalations(app)
    assert effect.status == "succeeded"  # not held: the team lead hears now, the rewards wait


# --- rule 2: a VIP customer ----------------------------------------------------------------------


def test_a_customer_whose_arr_reaches_the_vip_threshold_is_escalated(app, client, shop, slack_with_leads, slack_api):
    set_workspace(app, vip_arr="50000")
    post_order(client, order(1))
    assert posts(slack_api, LEADS) == []  # no ARR known yet: not a VIP
    with transaction(services_of(app).sessions) as session:
        session.execute(update(Customer).values(arr=Decimal("65000")))
    post_order(client, order(2, total="600.00"))  # $500 spent

    [post] = posts(slack_api, LEADS)
    text = text_of(post)
    assert "- VIP customer: ARR $65,000 (VIP from $50,000)" in text
    assert "$500 Spent — Lifetime spend reached $500" in text and "- ARR: $65,000" in text


def test_a_customer_the_vip_upgrade_tagged_is_escalated(app, client, shop, slack_with_leads, slack_api):
    post_order(client, order(1))
    with transaction(services_of(app).sessions) as session:  # RHF's VIP upgrade, applied earlier
        milestone = session.execute(select(CustomerMilestone)).scalar_one()
        session.add(Effect(workspace_id=milestone.workspace_id, milestone_id=milestone.id, kind="customer_tag",
                           idempotency_key=f"{milestone.id}:9:customer_tag", status="succeeded",
                           payload={"request": {"tags": ["vip"]}}, completed_at=utcnow()))
    post_order(client, order(2, total="600.00"))

    [post] = posts(slack_api, LEADS)
    assert "- VIP customer: tagged VIP by an earlier recognition" in text_of(post)


def test_a_customer_the_crm_flags_as_vip_is_escalated(app, client, shop, slack_with_leads, slack_api):
    post_order(client, order(1))
    with transaction(services_of(app).sessions) as session:  # a CRM checkbox mapped to metric:vip
        session.add(CustomerMetric(customer_id=alice(app).id, metric="vip", value=Decimal(1), updated_at=utcnow()))
    post_order(client, order(2, total="600.00"))

    assert "- VIP customer: flagged VIP in the CRM" in text_of(posts(slack_api, LEADS)[0])


def test_one_message_for_a_vip_who_crosses_several_milestones_at_once(app, client, shop, slack_with_leads, slack_api):
    set_workspace(app, vip_arr="10000")
    post_order(client, order(1))
    with transaction(services_of(app).sessions) as session:
        session.execute(update(Customer).values(arr=Decimal("20000")))
    set_definition(app, "spend-1000", escalate=True)
    post_order(client, order(2, total="1200.00"))  # $500 and $1,000 spent at once

    [post] = posts(slack_api, LEADS)
    text = text_of(post)
    assert "- Exceptional milestone: $1,000 Spent\n- VIP customer: ARR $20,000" in text
    assert "*Milestones:*\n- $500 Spent — " in text and "\n- $1,000 Spent — " in text
    [effect] = escalations(app)
    assert len(effect.payload["covers"]) == 2


# --- rule 3: an error in a recognition ----------------------------------------------------------


def test_a_dead_effect_escalates_once_even_when_retried_and_dying_again(
    app, client, shop, slack_with_leads, slack_api
):
    set_definition(app, "order-1", recognition=[{"kind": "slack_alert"}, {"kind": "store_credit", "amount": "5.00"}])
    slack_api.post(GRAPHQL, status=401, json={"errors": "[API] Invalid API key or access token"})
    post_order(client, order(1))

    with services_of(app).sessions() as session:
        credit = session.execute(select(Effect).where(Effect.kind == "store_credit")).scalar_one()
    assert credit.status == "dead"
    [post] = posts(slack_api, LEADS)
    text = text_of(post)
    assert "- Error in a recognition: the store credit failed for good — " in text and "401" in text
    assert f"retry the store credit in Operations (effect {credit.id})" in text
    assert "<https://milestones.test/admin/operations/effects?status=dead|Open in the admin>" in text
    [effect] = escalations(app)
    assert effect.idempotency_key == f"{credit.idempotency_key}:escalation" and effect.status == "succeeded"

    retried = client.post(f"/api/effects/{credit.id}/retry", headers=AUTH)
    assert retried.status_code == 200
    with services_of(app).sessions() as session:
        assert session.get_one(Effect, credit.id).status == "dead"  # still a bad token
    assert len(escalations(app)) == 1 and len(posts(slack_api, LEADS)) == 1


def test_an_escalation_that_fails_is_not_escalated_again(app, client, shop, slack_with_leads):
    set_definition(app, "order-1", escalate=True)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        # https://docs.slack.dev/reference/methods/chat.postMessage (Errors: channel_not_found)
        mock.post(POST, json={"ok": False, "error": "channel_not_found"})
        post_order(client, order(1))
        attempts = len(mock.calls)
    # The exceptional milestone's escalation, and the dead Slack alert's: both die, neither escalates.
    exceptional, alert_error = escalations(app)
    assert exceptional.payload["request"]["reasons"] == ["Exceptional milestone: 1st Order"]
    assert alert_error.payload["request"]["reasons"][0].startswith("Error in a recognition: the Slack alert failed")
    assert {e.status for e in (exceptional, alert_error)} == {"dead"}
    assert "channel_not_found" in (exceptional.last_error or "")
    assert attempts == 3  # the alert and two escalations, each once (a permanent error)


# --- nowhere to escalate to ----------------------------------------------------------------------


def test_without_a_team_lead_channel_the_escalation_waits_as_no_connection(app, client, shop, slack):
    set_definition(app, "order-1", escalate=True)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(POST, json={"ok": True, "channel": CSMS, "ts": "1767690000.000100"})
        post_order(client, order(1))
        assert all(json.loads(c.request.body)["channel"] == CSMS for c in mock.calls)
    [effect] = escalations(app)
    assert (effect.status, effect.connection_id) == ("no_connection", None)
    assert "escalation_channel" in (effect.last_error or "")
    assert effect.payload["request"]["reasons"] == ["Exceptional milestone: 1st Order"]  # kept, ready to read


def test_without_slack_the_escalation_is_recorded_as_no_connection(app, client, shop):
    set_definition(app, "order-1", escalate=True)
    post_order(client, order(1))
    [effect] = escalations(app)
    assert effect.status == "no_connection"


def test_a_team_lead_channel_must_be_a_channel_id(client, workspace):
    response = client.post("/api/connections", headers=AUTH, json={
        "platform": "slack", "name": "Slack", "settings": {
            "bot_token": "xoxb-1", "signing_secret": "s3cret", "channel": CSMS, "escalation_channel": "#team-leads"}})
    assert response.status_code == 400
    assert "channel ID" in response.get_json()["details"]["settings"]["escalation_channel"][0]
    saved = client.post("/api/connections", headers=AUTH, json={
        "platform": "slack", "name": "Slack", "settings": {
            "bot_token": "xoxb-1", "signing_secret": "s3cret", "channel": CSMS, "escalation_channel": LEADS}})
    assert saved.status_code == 201 and saved.get_json()["settings"]["escalation_channel"] == LEADS
