"""Orders in, celebration emails out: one per milestone, written after the rewards settled.

Klaviyo and HubSpot are faked with their documented shapes (see tests/connectors/test_klaviyo.py
and test_hubspot_email.py); SMTP is a real SMTP server on 127.0.0.1 (aiosmtpd).
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import responses
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from plugin.db import transaction, utcnow
from plugin.jobs.effects import run_effects
from plugin.models import CustomerMilestone, Effect, MilestoneDefinition
from tests.conftest import add_connection, services_of
from tests.jobs.test_effects import GRAPHQL, _credit_ok
from tests.support import order, post_order

KLAVIYO = "https://klaviyo.test"
EVENTS = f"{KLAVIYO}/api/events"
HUBSPOT = "https://hubspot.test"


@pytest.fixture
def klaviyo(app, workspace):
    return add_connection(app, workspace.id, "klaviyo", {"api_key": "pk_test", "base_url": KLAVIYO})


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def klaviyo_events(mock: responses.RequestsMock) -> list[dict[str, Any]]:
    """The attributes of every Create Event Klaviyo received, in order."""
    return [json.loads(c.request.body)["data"]["attributes"] for c in mock.calls if c.request.url == EVENTS]


def of_milestone(events: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [e for e in events if e["properties"]["milestone_key"] == key]


def email_effect(app, key: str) -> Effect:
    with services_of(app).sessions() as session:
        return session.execute(
            select(Effect)
            .join(CustomerMilestone, CustomerMilestone.id == Effect.milestone_id)
            .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
            .where(MilestoneDefinition.key == key, Effect.kind == "email")
        ).scalar_one()


def add_email_to(app, key: str, template: str) -> None:
    with transaction(services_of(app).sessions) as session:
        definition = session.execute(select(MilestoneDefinition).where(MilestoneDefinition.key == key)).scalar_one()
        definition.recognition = [*definition.recognition, {"kind": "email", "template": template}]


def test_the_tenth_order_sends_one_klaviyo_email_with_the_first_name_and_the_order_count(app, client, shop, klaviyo):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(EVENTS, status=202, body="")
        for number in range(1, 11):
            assert post_order(client, order(number)).status_code == 200
        post_order(client, order(10), topic="orders/updated")  # the same order again
        events = klaviyo_events(mock)

    assert [e["properties"]["milestone_key"] for e in events] == ["order-1", "order-10"]
    [tenth] = of_milestone(events, "order-10")
    assert tenth["profile"]["data"]["attributes"]["email"] == "alice@example.com"
    assert tenth["metric"]["data"]["attributes"]["name"] == "Customer Milestone"
    properties = tenth["properties"]
    assert properties["first_name"] == "Alice" and properties["order_count"] == 10
    assert properties["subject"] == "Alice, this is your 10th order!"
    assert properties["message_text"].startswith("Hi Alice, this is your 10th order!")
    assert "credit" not in properties["message_text"]  # RHF's "$5 credit added": no credit was given
    effect = email_effect(app, "order-10")
    assert effect.status == "succeeded" and tenth["unique_id"] == effect.idempotency_key


def test_the_tenth_order_sends_one_smtp_email(app, client, shop, workspace, smtp_server):
    inbox, port = smtp_server
    add_connection(app, workspace.id, "smtp", {"host": "127.0.0.1", "port": port, "starttls": False,
                                               "from_address": "Red Hill Fresh <hello@redhillfresh.test>"})
    for number in range(1, 11):
        post_order(client, order(number))
    post_order(client, order(10), topic="orders/updated")

    subjects = [m["Subject"] for m in inbox.messages]
    assert subjects == ["Welcome to the Red Hill Fresh family, Alice!", "Alice, this is your 10th order!"]
    tenth = inbox.messages[1]
    assert tenth["To"] == "Alice Nguyen <alice@example.com>"
    text = tenth.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Hi Alice, this is your 10th order!" in text and "credit" not in text
    assert email_effect(app, "order-10").external_id == tenth["Message-ID"]


def test_an_email_after_a_credit_waits_for_it_and_tells_the_amount_applied(app, client, shop, klaviyo):
    add_email_to(app, "order-25", "order-thank-you")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(EVENTS, status=202, body="")
        mock.post(GRAPHQL, status=503, body="unavailable")  # the credit fails for now
        for number in range(1, 26):
            post_order(client, order(number))
        assert of_milestone(klaviyo_events(mock), "order-25") == []

    waiting = email_effect(app, "order-25")
    assert (waiting.status, waiting.attempts) == ("pending", 0)
    assert "store_credit (pending)" in (waiting.last_error or "")
    assert waiting.next_attempt_at >= utcnow() + timedelta(seconds=20)

    with services_of(app).sessions() as session:  # time passes
        session.execute(update(Effect).where(Effect.status == "pending").values(next_attempt_at=utcnow()))
        session.commit()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(GRAPHQL, json=_credit_ok("10.00"))  # (the $1,000-spent tag retries here too)
        mock.post(EVENTS, status=202, body="")
        with app.app_context():
            run_effects()
        order_of_calls = ["email" if c.request.url == EVENTS else "credit" for c in mock.calls
                          if c.request.url == EVENTS or b"storeCreditAccountCredit(" in c.request.body]
        assert order_of_calls == ["credit", "email"]
        [event] = klaviyo_events(mock)

    assert event["properties"]["milestone_key"] == "order-25"
    assert "As a small thank you:\n- $10 credit added to account\n" in event["properties"]["message_text"]
    assert event["properties"]["credit_amount"] == "$10"
    sent = email_effect(app, "order-25")
    assert (sent.status, sent.attempts) == ("succeeded", 1)


def test_an_email_after_a_credit_that_failed_for_good_promises_no_credit(app, client, shop, klaviyo):
    add_email_to(app, "order-25", "order-thank-you")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(EVENTS, status=202, body="")
        mock.post(GRAPHQL, status=401, json={"errors": "[API] Invalid API key or access token"})
        for number in range(1, 26):
            post_order(client, order(number))
        [event] = of_milestone(klaviyo_events(mock), "order-25")
    assert "credit" not in event["properties"]["message_text"] and "$10" not in event["properties"]["message_text"]
    assert "credit_amount" not in event["properties"]


def _fake_hubspot_crm(mock: responses.RequestsMock) -> None:
    # https://developers.hubspot.com/docs/api/crm/search, /crm/contacts, /crm/notes
    mock.post(f"{HUBSPOT}/crm/v3/objects/contacts/search", json={"total": 1, "results": [{"id": "512"}]})
    mock.post(f"{HUBSPOT}/crm/v3/objects/notes", status=201, json={"id": "9001", "properties": {}})


def test_a_hubspot_connected_for_notes_alone_is_not_asked_to_send_email(app, client, shop, hubspot):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _fake_hubspot_crm(mock)
        for number in range(1, 11):
            post_order(client, order(number))
        assert not [c for c in mock.calls if "transactional" in c.request.url]
    effect = email_effect(app, "order-10")
    assert effect.status == "no_connection" and effect.connection_id is None


def test_a_hubspot_with_mapped_templates_sends_the_email_as_a_single_send(app, client, shop, workspace):
    add_connection(app, workspace.id, "hubspot", {
        "access_token": "pat-test", "client_secret": "hs-secret", "base_url": HUBSPOT,
        "email_templates": "order-10-thank-you=4242, first-order-welcome=4141"})
    send = f"{HUBSPOT}/marketing/v3/transactional/single-email/send"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _fake_hubspot_crm(mock)
        mock.post(send, json={"status": "PENDING", "statusId": "status-1", "requestedAt": "2026-01-15T09:00:00Z"})
        for number in range(1, 11):
            post_order(client, order(number))
        sends = [json.loads(c.request.body) for c in mock.calls if c.request.url == send]
    assert [s["emailId"] for s in sends] == [4141, 4242]
    tenth = sends[1]
    assert tenth["message"]["to"] == "alice@example.com"
    assert tenth["message"]["sendId"] == email_effect(app, "order-10").idempotency_key
    assert tenth["customProperties"]["first_name"] == "Alice" and tenth["customProperties"]["order_count"] == 10


def test_a_dedicated_email_platform_is_preferred_to_the_crm(app, client, shop, workspace):
    add_connection(app, workspace.id, "hubspot", {"access_token": "pat-test", "client_secret": "s", "base_url": HUBSPOT,
                                                  "email_templates": "*=1"})  # connected first
    add_connection(app, workspace.id, "klaviyo", {"api_key": "pk_test", "base_url": KLAVIYO})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _fake_hubspot_crm(mock)
        mock.post(EVENTS, status=202, body="")
        post_order(client, order(1))
        assert len(klaviyo_events(mock)) == 1
        assert not [c for c in mock.calls if "transactional" in c.request.url]
