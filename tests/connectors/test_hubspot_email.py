"""HubSpot transactional single-send, faked with the shapes of HubSpot's documentation.

https://developers.hubspot.com/docs/api-reference/marketing-transactional-single-send-v3/single-send/post-marketing-v3-transactional-single-email-send
(request: emailId, message.to/sendId, contactProperties, customProperties; answer: status,
statusId, sendResult, requestedAt)
https://developers.hubspot.com/docs/api-reference/marketing-single-send-v4/guide (sendId: one email per id)
https://developers.hubspot.com/docs/api/error-handling (error body: status, message, correlationId, category)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import responses
from marshmallow import ValidationError

from connectors.base import Capability
from connectors.errors import ConnectorError
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.hubspot_email import parse_template_ids
from connectors.payloads import EmailMessage

BASE = "https://hubspot.test"
SEND = f"{BASE}/marketing/v3/transactional/single-email/send"


def connector(templates: Any = "order-10-thank-you=111222333, *=999") -> HubSpotConnector:
    return HubSpotConnector({"access_token": "pat-na1-test", "client_secret": "s", "base_url": BASE,
                             "email_templates": templates})


def message(**overrides: Any) -> EmailMessage:
    fields: dict[str, Any] = {
        "idempotency_key": "8d1c6c52:2:email",
        "to_email": "alice@example.com",
        "to_name": "Alice Nguyen",
        "template": "order-10-thank-you",
        "subject": "Alice, this is your 10th order!",
        "html_body": "<p>Hi Alice</p>",
        "text_body": "Hi Alice\n",
        "properties": {"first_name": "Alice", "order_count": 10,
                       "reward_lines": "$5 credit added to account\nUpgraded to <VIP>", "credit_amount": "$5"},
    }
    return EmailMessage(**{**fields, **overrides})


def accepted(**overrides: Any) -> dict[str, Any]:
    return {"status": "PENDING", "statusId": "a1b2c3d4-status", "requestedAt": "2026-01-06T09:00:01.123Z", **overrides}


def hubspot_error(message: str, category: str) -> dict[str, Any]:
    return {"status": "error", "message": message, "correlationId": "4c1e0a8f-7d1b-4f0e-9a1e-2b6b1c0d9e33",
            "category": category}


@responses.activate
def test_the_email_is_a_single_send_of_the_mapped_hubspot_email_with_our_fields():
    responses.post(SEND, json=accepted())
    result = connector().send_email(message())

    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Bearer pat-na1-test"
    body = json.loads(request.body)
    assert body["emailId"] == 111222333
    assert body["message"] == {"to": "alice@example.com", "sendId": "8d1c6c52:2:email"}
    assert body["contactProperties"] == {"firstname": "Alice"}
    custom = body["customProperties"]
    assert custom["first_name"] == "Alice" and custom["order_count"] == 10 and custom["credit_amount"] == "$5"
    assert custom["subject"] == "Alice, this is your 10th order!"
    assert custom["message_html"] == "<p>Hi Alice</p>" and custom["message_text"] == "Hi Alice\n"
    assert custom["reward_lines_html"] == "<ul><li>$5 credit added to account</li><li>Upgraded to &lt;VIP&gt;</li></ul>"
    assert not any(isinstance(v, list) for v in custom.values())  # custom properties take no arrays
    assert result.external_id == "a1b2c3d4-status"
    assert result.detail["status"] == "PENDING"


@responses.activate
def test_a_template_without_its_own_email_uses_the_catch_all():
    responses.post(SEND, json=accepted())
    connector().send_email(message(template="anniversary-1y"))
    assert json.loads(responses.calls[0].request.body)["emailId"] == 999


def test_a_template_with_no_hubspot_email_is_permanent_and_sends_nothing():
    with responses.RequestsMock() as mock, pytest.raises(ConnectorError, match="no transactional email for template"):
        connector({"order-10-thank-you": 1}).send_email(message(template="anniversary-1y"))
    assert len(mock.calls) == 0


@responses.activate
def test_a_repeated_send_id_is_success_hubspot_already_sent_it():
    responses.post(SEND, json=accepted(status="COMPLETE", sendResult="IDEMPOTENT_IGNORE"))
    assert connector().send_email(message()).detail["send_result"] == "IDEMPOTENT_IGNORE"
    assert connector().find_email(message(), datetime(2026, 1, 6, tzinfo=UTC)) is None


@responses.activate
@pytest.mark.parametrize("result", ["INVALID_TO_ADDRESS", "PREVIOUSLY_BOUNCED", "BLOCKED_DOMAIN", "IDEMPOTENT_FAIL"])
def test_a_send_hubspot_cancels_is_permanent(result):
    responses.post(SEND, json=accepted(status="CANCELED", sendResult=result, completedAt="2026-01-06T09:00:02Z"))
    with pytest.raises(ConnectorError, match=result) as raised:
        connector().send_email(message())
    assert raised.value.permanent


@responses.activate
def test_a_throttled_send_is_tried_again():
    responses.post(SEND, json=accepted(status="COMPLETE", sendResult="THROTTLED"))
    with pytest.raises(ConnectorError) as raised:
        connector().send_email(message())
    assert not raised.value.permanent


@responses.activate
@pytest.mark.parametrize(
    "status, category",
    [(400, "VALIDATION_ERROR"), (401, "INVALID_AUTHENTICATION"), (403, "MISSING_SCOPES"), (404, "OBJECT_NOT_FOUND")],
)
def test_client_errors_are_permanent(status, category):
    responses.post(SEND, status=status, json=hubspot_error("The request was refused.", category))
    with pytest.raises(ConnectorError) as raised:
        connector().send_email(message())
    assert raised.value.permanent and raised.value.status == status and category in raised.value.message


@responses.activate
def test_a_429_is_retried_no_sooner_than_retry_after():
    responses.post(SEND, status=429, headers={"Retry-After": "10"},
                   json={"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT",
                         "correlationId": "c0ffee00-0000-4000-8000-000000000000", "policyName": "SECONDLY"})
    with pytest.raises(ConnectorError) as raised:
        connector().send_email(message())
    assert not raised.value.permanent and raised.value.retry_after == 10.0


@responses.activate
def test_a_server_error_is_transient():
    responses.post(SEND, status=502, body="<html>Bad Gateway</html>")
    with pytest.raises(ConnectorError) as raised:
        connector().send_email(message())
    assert not raised.value.permanent


def test_hubspot_can_send_email_once_its_templates_are_mapped():
    assert Capability.SEND_EMAIL in HubSpotConnector.capabilities
    field = HubSpotSettings._declared_fields["email_templates"]
    assert field.metadata["enables"] == Capability.SEND_EMAIL.value


def test_the_setting_takes_the_admin_forms_text_or_a_mapping():
    schema = HubSpotSettings()
    base = {"access_token": "t", "client_secret": "s"}
    assert schema.load({**base, "email_templates": "order-10-thank-you=12, *=34"})["email_templates"] == {
        "order-10-thank-you": 12, "*": 34}
    assert schema.load({**base, "email_templates": {"celebration": "56"}})["email_templates"] == {"celebration": 56}
    assert schema.load(base)["email_templates"] is None
    with pytest.raises(ValidationError, match="email_templates"):
        schema.load({**base, "email_templates": "order-10-thank-you:12"})


@pytest.mark.parametrize("value", ["a=", "=12", "a=b", "a=0", ["a", 1]])
def test_malformed_template_ids_are_refused(value):
    with pytest.raises(ValueError):
        parse_template_ids(value)
    assert parse_template_ids("a=1\nb=2,\n") == {"a": 1, "b": 2}
