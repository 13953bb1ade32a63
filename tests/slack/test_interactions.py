"""The buttons of PRD-114's alert, end to end through ``POST /slack/interactions/<connection_id>``.

Request shapes are Slack's own: a form body with one ``payload`` field holding a
``block_actions`` interaction (https://docs.slack.dev/reference/interaction-payloads/block_actions-payload,
https://docs.slack.dev/interactivity/handling-user-interaction), signed per
https://docs.slack.dev/authentication/verifying-requests-from-slack. The message is updated with
``chat.update``, faked with its documented answer (https://docs.slack.dev/reference/methods/chat.update).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlencode

import pytest
import responses
from marshmallow import fields
from rq import SimpleWorker
from sqlalchemy import select

from connectors.base import Capability, Connector, SettingsSchema
from connectors.payloads import MilestoneAlert, Money
from connectors.registry import CONNECTORS
from connectors.slack import alert_blocks, alert_text
from plugin.db import transaction
from plugin.models import Customer, CustomerMilestone, Effect, MilestoneDefinition
from plugin.workspaces import create_workspace
from tests.conftest import add_connection, services_of

SLACK = "https://slack.test/api"
SIGNING_SECRET = "slack-secret"  # the conftest slack connection's
CHANNEL, MESSAGE_TS = "C0CSM", "1767690000.000100"
CSM = {"id": "U0CSM1", "username": "jane", "name": "jane", "team_id": "T0TEAM"}


# --- building real rows and Slack's requests --------------------------------------------------


def make_milestone(app: Any, workspace_id: uuid.UUID, *, status: str = "active") -> uuid.UUID:
    with transaction(services_of(app).sessions) as session:
        definition = session.execute(
            select(MilestoneDefinition).where(
                MilestoneDefinition.workspace_id == workspace_id, MilestoneDefinition.key == "api-calls-1m"
            )
        ).scalar_one()
        customer = Customer(id=uuid.uuid4(), workspace_id=workspace_id, email=f"ops-{uuid.uuid4().hex[:6]}@growthcorp.example",
                            company_name="GrowthCorp", properties={})
        session.add(customer)
        session.flush()
        milestone = CustomerMilestone(
            id=uuid.uuid4(), customer_id=customer.id, workspace_id=workspace_id, definition_id=definition.id,
            occurrence=1, milestone_type="usage", milestone_name=definition.name, milestone_value="1000000",
            achieved_at=datetime(2026, 1, 29, 10, tzinfo=UTC), status=status, celebrated=False,
            context={"source": "api_calls"},
        )
        session.add(milestone)
    return milestone.id


def alert(milestone_id: uuid.UUID) -> MilestoneAlert:
    return MilestoneAlert(
        idempotency_key=str(milestone_id), milestone_id=str(milestone_id), customer_name="GrowthCorp",
        customer_email="ops@growthcorp.example", milestone_name="1 Million API Calls", headline="1 Million API Calls!",
        detail="API usage reached 1,000,000 calls", achieved_on=date(2026, 1, 29), time_to_milestone="8 months",
        customer_since=date(2025, 5, 1), arr=Money(Decimal("65000"), "USD"), health_score=85, celebration_ideas=(),
    )


def block_actions(action_id: str, milestone_id: Any, *, user: dict[str, str] = CSM) -> dict[str, Any]:
    """A button click as Slack sends it (fields from the block_actions payload reference)."""
    label = {"send_celebration_email": "Send Celebration Email", "request_social_permission":
             "Request Social Permission", "mark_celebrated": "Mark Celebrated"}.get(action_id, action_id)
    sent = alert(milestone_id) if isinstance(milestone_id, uuid.UUID) else alert(uuid.uuid4())
    return {
        "type": "block_actions",
        "user": user,
        "api_app_id": "A0MILESTONES",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": MESSAGE_TS, "channel_id": CHANNEL, "is_ephemeral": False},
        "trigger_id": "12466734323.1395872398.e0f3b6ba5c8e22a8d6e3b4d2b3c5d1b1",
        "team": {"id": "T0TEAM", "domain": "growthcorp-cs"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": CHANNEL, "name": "csm-milestones"},
        "message": {"type": "message", "subtype": "bot_message", "text": alert_text(sent), "ts": MESSAGE_TS,
                    "bot_id": "B0BOT", "blocks": alert_blocks(sent)},
        "state": {"values": {}},
        "response_url": "https://hooks.slack.com/actions/T0TEAM/1234567890/abcdefABCDEF",
        "actions": [{"action_id": action_id, "block_id": "milestone_actions",
                     "text": {"type": "plain_text", "text": label, "emoji": True}, "value": str(milestone_id),
                     "type": "button", "action_ts": f"{time.time():.6f}"}],
    }


def signed(body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}",
            "Content-Type": "application/x-www-form-urlencoded"}


def click(client: Any, connection_id: Any, payload: dict[str, Any], **signing: Any) -> Any:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return client.post(f"/slack/interactions/{connection_id}", data=body, headers=signed(body, **signing))


@pytest.fixture
def slack_api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        # https://docs.slack.dev/reference/methods/chat.update — the documented success answer
        mock.post(f"{SLACK}/chat.update", json={
            "ok": True, "channel": CHANNEL, "ts": MESSAGE_TS, "text": "Updated text you carefully authored",
            "message": {"text": "Updated text you carefully authored", "user": "U0BOT"}})
        yield mock


def updates(mock: responses.RequestsMock) -> list[dict[str, Any]]:
    return [json.loads(c.request.body) for c in mock.calls if c.request.url == f"{SLACK}/chat.update"]


def status_texts(update: dict[str, Any]) -> list[str]:
    return [b["elements"][0]["text"] for b in update["blocks"] if b["type"] == "context"]


def milestone(app: Any, milestone_id: uuid.UUID) -> CustomerMilestone:
    with services_of(app).sessions() as session:
        return session.get_one(CustomerMilestone, milestone_id)


def email_effects(app: Any, milestone_id: uuid.UUID) -> list[Effect]:
    with services_of(app).sessions() as session:
        return list(session.execute(select(Effect).where(Effect.milestone_id == milestone_id,
                                                         Effect.kind == "email")).scalars())


# --- the three buttons ------------------------------------------------------------------------


def test_mark_celebrated_records_who_and_when_and_updates_the_alert(app, client, workspace, slack, slack_api):
    milestone_id = make_milestone(app, workspace.id)
    response = click(client, slack.id, block_actions("mark_celebrated", milestone_id))

    assert response.status_code == 200 and response.data == b""
    row = milestone(app, milestone_id)
    assert row.celebrated and row.celebrated_at is not None
    assert row.celebration_type == "slack"
    assert row.notes == "Marked celebrated by @jane in Slack"
    [update] = updates(slack_api)
    assert (update["channel"], update["ts"]) == (CHANNEL, MESSAGE_TS)
    original = alert_blocks(alert(milestone_id))
    assert update["blocks"][: len(original)] == original  # the alert itself, buttons included
    assert status_texts(update) == ["✅ Marked celebrated by <@U0CSM1>"]
    assert update["text"] == alert_text(alert(milestone_id))
    assert slack_api.calls[0].request.headers["Authorization"] == "Bearer xoxb-test"


def test_mark_celebrated_clicked_twice_celebrates_once(app, client, workspace, slack, slack_api):
    milestone_id = make_milestone(app, workspace.id)
    click(client, slack.id, block_actions("mark_celebrated", milestone_id))
    first = milestone(app, milestone_id).celebrated_at
    second_csm = {**CSM, "id": "U0CSM2", "username": "omar", "name": "omar"}
    assert click(client, slack.id, block_actions("mark_celebrated", milestone_id, user=second_csm)).status_code == 200

    row = milestone(app, milestone_id)
    assert row.celebrated_at == first
    assert row.notes == "Marked celebrated by @jane in Slack"
    assert [status_texts(u) for u in updates(slack_api)] == [["✅ Marked celebrated by <@U0CSM1>"]] * 2


def test_request_social_permission_records_the_request_once(app, client, workspace, slack, slack_api):
    milestone_id = make_milestone(app, workspace.id)
    click(client, slack.id, block_actions("request_social_permission", milestone_id))
    first = dict(milestone(app, milestone_id).context)
    click(client, slack.id, block_actions("request_social_permission", milestone_id))

    context = milestone(app, milestone_id).context
    assert context["social_permission_requested_by"] == "U0CSM1"
    assert context["social_permission_requested_at"] == first["social_permission_requested_at"]
    assert context["source"] == "api_calls"  # what the award recorded is kept
    assert not milestone(app, milestone_id).celebrated
    assert status_texts(updates(slack_api)[-1]) == ["🐦 Social media permission requested by <@U0CSM1>"]


def test_send_celebration_email_without_an_email_platform_is_recorded_and_says_so(
    app, client, workspace, slack, slack_api
):
    milestone_id = make_milestone(app, workspace.id)
    click(client, slack.id, block_actions("send_celebration_email", milestone_id))
    click(client, slack.id, block_actions("send_celebration_email", milestone_id))

    [effect] = email_effects(app, milestone_id)
    assert effect.idempotency_key == f"{milestone_id}:slack:send_celebration_email"
    assert effect.payload["action"] == {"kind": "email", "template": "celebration"}
    assert effect.status == "no_connection"
    assert status_texts(updates(slack_api)[-1]) == [
        "⚠️ <@U0CSM1> asked for the celebration email, but no email platform is connected"]


class FakeMail(Connector):
    """Stands for any platform with send_email (HubSpot single-send, Klaviyo, SMTP)."""

    platform: ClassVar[str] = "fakemail"
    kind: ClassVar[str] = "email"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.SEND_EMAIL})

    class Settings(SettingsSchema):
        api_key = fields.String(required=True, metadata={"secret": True})

    settings_schema: ClassVar[type[SettingsSchema]] = Settings


@pytest.fixture
def mailer(app, workspace, monkeypatch) -> Any:
    monkeypatch.setitem(CONNECTORS, "fakemail", FakeMail)
    return add_connection(app, workspace.id, "fakemail", {"api_key": "k"})


def test_send_celebration_email_queues_one_email_effect_and_wakes_the_runner(
    app, client, workspace, slack, mailer, slack_api, monkeypatch
):
    nudged = []
    monkeypatch.setattr("plugin.jobs.effects.run_effects", lambda lane="effects": nudged.append(lane))
    milestone_id = make_milestone(app, workspace.id)
    click(client, slack.id, block_actions("send_celebration_email", milestone_id))
    click(client, slack.id, block_actions("send_celebration_email", milestone_id))

    [effect] = email_effects(app, milestone_id)
    assert (effect.status, effect.connection_id) == ("pending", mailer.id)
    assert effect.payload["requested_by"] == {"slack_user_id": "U0CSM1"}
    assert nudged == ["effects"]  # once: the second click queued nothing
    assert status_texts(updates(slack_api)[-1]) == ["📧 Celebration email queued by <@U0CSM1>"]


def test_the_celebration_email_waits_for_review_like_every_reward(app, client, workspace, slack, mailer, slack_api):
    milestone_id = make_milestone(app, workspace.id, status="pending_review")
    click(client, slack.id, block_actions("send_celebration_email", milestone_id))
    [effect] = email_effects(app, milestone_id)
    assert effect.status == "held"


def test_an_already_planned_celebration_email_is_not_sent_twice(app, client, workspace, slack, mailer, slack_api):
    milestone_id = make_milestone(app, workspace.id)
    with transaction(services_of(app).sessions) as session:
        session.add(Effect(workspace_id=workspace.id, milestone_id=milestone_id, kind="email", connection_id=mailer.id,
                           idempotency_key=f"{milestone_id}:2:email", status="held",
                           payload={"action": {"kind": "email", "template": "celebration"}}))
    click(client, slack.id, block_actions("send_celebration_email", milestone_id))
    assert [e.idempotency_key for e in email_effects(app, milestone_id)] == [f"{milestone_id}:2:email"]
    assert status_texts(updates(slack_api)[-1]) == [
        "📧 Celebration email queued by <@U0CSM1>; it goes out once the milestone is approved"]


def test_every_outcome_shows_on_the_alert_whatever_the_order(app, client, workspace, slack, slack_api):
    milestone_id = make_milestone(app, workspace.id)
    for action in ("request_social_permission", "mark_celebrated", "send_celebration_email"):
        payload = block_actions(action, milestone_id)
        if updates(slack_api):  # Slack sends the message as it now stands, our earlier lines included
            payload["message"]["blocks"] = updates(slack_api)[-1]["blocks"]
        click(client, slack.id, payload)
    last = updates(slack_api)[-1]
    assert status_texts(last) == [
        "✅ Marked celebrated by <@U0CSM1>",
        "🐦 Social media permission requested by <@U0CSM1>",
        "⚠️ <@U0CSM1> asked for the celebration email, but no email platform is connected",
    ]
    assert last["blocks"][: len(alert_blocks(alert(milestone_id)))] == alert_blocks(alert(milestone_id))
    assert len(last["blocks"]) == len(alert_blocks(alert(milestone_id))) + 3  # earlier lines replaced, not repeated


# --- isolation and bad input ------------------------------------------------------------------


def test_a_milestone_of_another_workspace_is_left_alone(app, client, workspace, slack, slack_api):
    with transaction(services_of(app).sessions) as session:
        other, _ = create_workspace(session, "Other Merchant")
    theirs = make_milestone(app, other.id)
    for action in ("mark_celebrated", "request_social_permission", "send_celebration_email"):
        assert click(client, slack.id, block_actions(action, theirs)).status_code == 200

    row = milestone(app, theirs)
    assert not row.celebrated and row.notes is None and "slack_actions" not in row.context
    assert email_effects(app, theirs) == []
    assert updates(slack_api) == []


def test_a_value_that_is_not_a_milestone_id_is_ignored(app, client, workspace, slack, slack_api):
    assert click(client, slack.id, block_actions("mark_celebrated", "not-a-uuid")).status_code == 200
    assert click(client, slack.id, block_actions("mark_celebrated", uuid.uuid4().hex)).status_code == 200
    assert updates(slack_api) == []


def test_a_failing_chat_update_still_answers_200_and_keeps_the_celebration(app, client, workspace, slack):
    milestone_id = make_milestone(app, workspace.id)
    with responses.RequestsMock() as mock:
        # https://docs.slack.dev/reference/methods/chat.update (Errors: message_not_found)
        mock.post(f"{SLACK}/chat.update", json={"ok": False, "error": "message_not_found"})
        assert click(client, slack.id, block_actions("mark_celebrated", milestone_id)).status_code == 200
    assert milestone(app, milestone_id).celebrated


def test_bad_signature_stale_and_future_requests_are_401_and_change_nothing(app, client, workspace, slack, slack_api):
    milestone_id = make_milestone(app, workspace.id)
    payload = block_actions("mark_celebrated", milestone_id)
    assert click(client, slack.id, payload, secret="not-the-secret").status_code == 401
    stale = click(client, slack.id, payload, timestamp=int(time.time()) - 400)
    assert stale.status_code == 401 and "seconds old" in stale.get_json()["error"]
    assert click(client, slack.id, payload, timestamp=int(time.time()) + 400).status_code == 401
    body = urlencode({"payload": json.dumps(payload)}).encode()
    assert client.post(f"/slack/interactions/{slack.id}", data=body,
                       headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 401
    assert not milestone(app, milestone_id).celebrated and updates(slack_api) == []


def test_an_unknown_connection_is_404(app, client, workspace, slack, slack_api):
    payload = block_actions("mark_celebrated", uuid.uuid4())
    assert click(client, uuid.uuid4(), payload).status_code == 404
    assert click(client, "not-a-connection", payload).status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "exactly one payload"),
        (urlencode({"payload": "{not json"}).encode(), "not valid JSON"),
        (urlencode({"payload": json.dumps(["block_actions"])}).encode(), "not an interaction"),
        (urlencode({"payload": json.dumps({"type": "block_actions", "actions": []})}).encode(), "user.id"),
        (urlencode({"payload": json.dumps({"type": "block_actions", "user": CSM})}).encode(), "actions is missing"),
        (urlencode({"payload": json.dumps({"type": "block_actions", "user": CSM,
                                            "actions": [{"action_id": "mark_celebrated"}]})}).encode(), "value"),
        (b"\xff\xfe", "not a form"),
        (urlencode({"payload": "[" * 100_000}).encode(), "not valid JSON"),
    ],
)
def test_a_malformed_interaction_is_400(app, client, workspace, slack, body, message):
    response = client.post(f"/slack/interactions/{slack.id}", data=body, headers=signed(body))
    assert response.status_code == 400 and message in response.get_json()["error"]


def test_other_interactions_and_other_buttons_are_acknowledged_and_ignored(app, client, workspace, slack, slack_api):
    milestone_id = make_milestone(app, workspace.id)
    assert click(client, slack.id, {"type": "view_submission", "user": CSM, "view": {}}).status_code == 200
    assert click(client, slack.id, block_actions("someone_elses_button", milestone_id)).status_code == 200
    assert not milestone(app, milestone_id).celebrated and updates(slack_api) == []


def test_the_database_being_down_is_503_not_500(database_url):
    from plugin.app import create_app
    from tests.conftest import make_settings

    down = create_app(make_settings("postgresql://postgres@127.0.0.1:1/nothing"))
    body = urlencode({"payload": json.dumps(block_actions("mark_celebrated", uuid.uuid4()))}).encode()
    response = down.test_client().post(f"/slack/interactions/{uuid.uuid4()}", data=body, headers=signed(body))
    assert response.status_code == 503


# --- with a real worker -----------------------------------------------------------------------


def test_with_redis_the_click_is_answered_first_and_done_by_a_worker(rq_app, workspace, slack, slack_api):
    milestone_id = make_milestone(rq_app, workspace.id)
    response = click(rq_app.test_client(), slack.id, block_actions("mark_celebrated", milestone_id))
    assert response.status_code == 200 and response.data == b""
    assert not milestone(rq_app, milestone_id).celebrated  # nothing done inside the request

    services = services_of(rq_app)
    SimpleWorker([services.queue.rq], connection=services.redis).work(burst=True)
    assert milestone(rq_app, milestone_id).celebrated
    assert status_texts(updates(slack_api)[-1]) == ["✅ Marked celebrated by <@U0CSM1>"]


def test_no_social_permission_is_requested_for_a_customer_who_opted_out_of_public_celebration(
    app, client, workspace, slack, slack_api
):
    milestone_id = make_milestone(app, workspace.id)
    with transaction(services_of(app).sessions) as session:
        row = session.get(CustomerMilestone, milestone_id)
        customer = session.get(Customer, row.customer_id)
        customer.properties = {"opt_out": ["public"]}
    click(client, slack.id, block_actions("request_social_permission", milestone_id))

    context = milestone(app, milestone_id).context
    assert "social_permission_requested_at" not in context
