"""The Slack side of escalation and of combined alerts, with ``responses`` on Slack's documented
shapes: chat.postMessage (https://docs.slack.dev/reference/methods/chat.postMessage), message
metadata (https://docs.slack.dev/messaging/message-metadata) and conversations.history
(https://docs.slack.dev/reference/methods/conversations.history)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from connectors.errors import ConnectorError
from connectors.payloads import AlertMilestone, Escalation, MilestoneAlert, from_json, to_json
from connectors.slack import SlackConnector, alert_blocks

SLACK = "https://slack.test/api"
SETTINGS = {"bot_token": "xoxb-test", "signing_secret": "s", "channel": "C0CSM01", "escalation_channel": "C0LEADS1",
            "base_url": SLACK}
ESCALATION = Escalation(
    idempotency_key="m-1:escalation", milestone_id="m-1", customer_name="Alice <Nguyen>",
    customer_email="alice@example.com", reasons=("Exceptional milestone: 100th Order", "VIP customer: ARR $65,000"),
    milestones=("100th Order — Order count reached 100 (Jan 29, 2026) · waits for review",),
    customer_context=("Customer since May 2025", "ARR: $65,000"),
    next_step="Approve or reject the held rewards in the review queue.", link="https://milestones.test/admin/reviews",
)


def test_an_escalation_is_posted_to_the_team_lead_channel_with_its_reason_and_next_step():
    with responses.RequestsMock() as mock:
        mock.post(f"{SLACK}/chat.postMessage", json={"ok": True, "channel": "C0LEADS1", "ts": "1767690000.000200"})
        result = SlackConnector(SETTINGS).post_escalation(ESCALATION)
        body = json.loads(mock.calls[0].request.body)

    assert body["channel"] == "C0LEADS1"
    assert body["text"] == ":rotating_light: Escalation: Alice &lt;Nguyen&gt; — Exceptional milestone: 100th Order"
    blocks = [b["text"]["text"] for b in body["blocks"]]
    assert blocks == [
        ":rotating_light: Escalation: Alice <Nguyen>",  # plain_text: no escaping
        "*Why:*\n- Exceptional milestone: 100th Order\n- VIP customer: ARR $65,000",
        "*Milestone:*\n- 100th Order — Order count reached 100 (Jan 29, 2026) · waits for review",
        "*Customer:* Alice &lt;Nguyen&gt; (alice@example.com)\n- Customer since May 2025\n- ARR: $65,000",
        "*Next step:* Approve or reject the held rewards in the review queue. "
        "<https://milestones.test/admin/reviews|Open in the admin>",
    ]
    assert body["metadata"] == {"event_type": "milestone_escalation",
                                "event_payload": {"milestone_id": "m-1", "idempotency_key": "m-1:escalation"}}
    assert result.external_id == "C0LEADS1:1767690000.000200"


def test_without_a_team_lead_channel_posting_an_escalation_is_a_permanent_error():
    with pytest.raises(ConnectorError) as raised:
        SlackConnector({**SETTINGS, "escalation_channel": None}).post_escalation(ESCALATION)
    assert raised.value.permanent and "escalation_channel" in raised.value.message


def test_an_escalation_posted_before_a_crash_is_found_by_its_metadata():
    since = datetime(2026, 1, 29, 10, tzinfo=UTC)
    alert_with_same_key = {"ts": "1.1", "metadata": {"event_type": "customer_milestone",
                                                     "event_payload": {"idempotency_key": "m-1:escalation"}}}
    ours = {"ts": "1.2", "metadata": {"event_type": "milestone_escalation",
                                      "event_payload": {"idempotency_key": "m-1:escalation"}}}
    with responses.RequestsMock() as mock:
        mock.get(f"{SLACK}/conversations.history", json={"ok": True, "messages": [alert_with_same_key, ours],
                                                         "has_more": False})
        found = SlackConnector(SETTINGS).find_escalation(ESCALATION, since)
        query = parse_qs(urlparse(mock.calls[0].request.url).query)
    assert query["channel"] == ["C0LEADS1"] and query["include_all_metadata"] == ["true"]
    assert found is not None and found.external_id == "C0LEADS1:1.2"


def _alert(**kwargs: object) -> MilestoneAlert:
    fields = dict(idempotency_key="k", milestone_id="m-1", customer_name="Alice", customer_email=None,
                  milestone_name="1st Order", headline="1st Order!", detail="Order count reached 1",
                  achieved_on=date(2026, 1, 6), time_to_milestone="1 month", customer_since=None, arr=None,
                  health_score=None, celebration_ideas=())
    return MilestoneAlert(**{**fields, **kwargs})  # type: ignore[arg-type]


def test_a_single_alert_keeps_prd_114s_details_block_and_one_id_per_button():
    blocks = alert_blocks(_alert())
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert texts[:2] == ["*Milestone Achieved:* 1st Order!",
                         "*Details:*\n- Milestone: Order count reached 1\n- Achieved: Jan 6, 2026\n- Time to milestone: 1 month"]
    assert {b["value"] for b in blocks[-1]["elements"]} == {"m-1"}


def test_a_combined_alert_has_a_section_per_milestone_and_buttons_for_all():
    alert = _alert(headline="1st Order and $500 Spent!",
                   also=(AlertMilestone("m-2", "$500 Spent", "Lifetime spend reached $500", date(2026, 1, 6)),))
    assert from_json(MilestoneAlert, to_json(alert)) == alert  # stored on the effect, read back by the runner
    blocks = alert_blocks(alert)
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert texts[:3] == [
        "*Milestones Achieved:* 1st Order and $500 Spent!",
        "*1st Order*\n- Milestone: Order count reached 1\n- Achieved: Jan 6, 2026\n- Time to milestone: 1 month",
        "*$500 Spent*\n- Milestone: Lifetime spend reached $500\n- Achieved: Jan 6, 2026",
    ]
    assert {b["value"] for b in blocks[-1]["elements"]} == {"m-1,m-2"}
