"""Klaviyo Create Event, faked with the shapes of Klaviyo's own documentation.

https://developers.klaviyo.com/en/reference/create_event (request document, 202 with no body)
https://developers.klaviyo.com/en/docs/authenticate_ (Authorization: Klaviyo-API-Key, revision)
https://developers.klaviyo.com/en/reference/api_overview (JSON:API error objects; 429 + Retry-After)
https://developers.klaviyo.com/en/reference/get_accounts
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import responses

from connectors.errors import ConnectorError
from connectors.klaviyo import DEFAULT_METRIC, DEFAULT_REVISION, KlaviyoConnector, KlaviyoSettings
from connectors.payloads import EmailMessage

BASE = "https://klaviyo.test"
EVENTS = f"{BASE}/api/events"


def connector(**settings: Any) -> KlaviyoConnector:
    return KlaviyoConnector({"api_key": "pk_test_123", "base_url": BASE, **settings})


def message(**overrides: Any) -> EmailMessage:
    fields: dict[str, Any] = {
        "idempotency_key": "8d1c6c52-0f55-4c1e-9a47-2f1d0c6b9e11:2:email",
        "to_email": "alice@example.com",
        "to_name": "Alice Nguyen",
        "template": "order-10-thank-you",
        "subject": "Alice, this is your 10th order!",
        "html_body": "<p>Hi Alice, this is your 10th order!</p>",
        "text_body": "Hi Alice, this is your 10th order!\n",
        "properties": {"first_name": "Alice", "last_name": "Nguyen", "order_count": 10,
                       "reward_lines": "$5 credit added to account", "credit_amount": "$5"},
    }
    return EmailMessage(**{**fields, **overrides})


def error(status: int, code: str, title: str, detail: str) -> dict[str, Any]:
    return {"errors": [{"id": "0b6a5a5e-7b1e-4c4b-9e3f-6f7c2d9a0e11", "status": status, "code": code, "title": title,
                        "detail": detail, "source": {"pointer": "/data/"}, "meta": {}}]}


@responses.activate
def test_an_email_is_an_event_on_the_profile_whose_metric_triggers_the_flow():
    responses.post(EVENTS, status=202, body="")
    result = connector().send_email(message())

    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Klaviyo-API-Key pk_test_123"
    assert request.headers["revision"] == DEFAULT_REVISION
    assert request.headers["Content-Type"] == "application/vnd.api+json"
    body = json.loads(request.body)
    data = body["data"]
    assert data["type"] == "event"
    attributes = data["attributes"]
    assert attributes["metric"] == {"data": {"type": "metric", "attributes": {"name": DEFAULT_METRIC}}}
    assert attributes["profile"] == {"data": {"type": "profile", "attributes": {
        "email": "alice@example.com", "first_name": "Alice", "last_name": "Nguyen"}}}
    assert attributes["unique_id"] == "8d1c6c52-0f55-4c1e-9a47-2f1d0c6b9e11:2:email"
    properties = attributes["properties"]
    assert properties["first_name"] == "Alice" and properties["order_count"] == 10
    assert properties["reward_lines"] == "$5 credit added to account"
    assert properties["template"] == "order-10-thank-you"
    assert properties["subject"] == "Alice, this is your 10th order!"
    assert properties["message_html"].startswith("<p>Hi Alice")
    assert properties["message_text"].startswith("Hi Alice")
    assert result.external_id is None
    assert result.detail == {"unique_id": "8d1c6c52-0f55-4c1e-9a47-2f1d0c6b9e11:2:email", "metric": DEFAULT_METRIC}


@responses.activate
def test_the_metric_name_and_revision_are_settings():
    responses.post(EVENTS, status=202, body="")
    connector(metric_name="RHF Milestone", revision="2025-10-15").send_email(message())
    request = responses.calls[0].request
    assert request.headers["revision"] == "2025-10-15"
    assert json.loads(request.body)["data"]["attributes"]["metric"]["data"]["attributes"]["name"] == "RHF Milestone"


def test_a_resend_after_a_crash_is_left_to_klaviyos_unique_id_dedupe():
    assert connector().find_email(message(), datetime(2026, 1, 6, tzinfo=UTC)) is None


@responses.activate
@pytest.mark.parametrize(
    "status, code, title",
    [
        (400, "invalid", "Invalid input."),
        (401, "not_authenticated", "Authentication credentials were not provided."),
        (403, "permission_denied", "You do not have permission to perform this action."),
        (404, "not_found", "Not found."),
    ],
)
def test_client_errors_are_permanent_and_say_what_klaviyo_said(status, code, title):
    responses.post(EVENTS, status=status, json=error(status, code, title, f"{title} (detail)"))
    with pytest.raises(ConnectorError) as raised:
        connector().send_email(message())
    assert raised.value.permanent and raised.value.status == status
    assert code in raised.value.message


@responses.activate
def test_a_429_is_retried_no_sooner_than_retry_after():
    responses.post(EVENTS, status=429, headers={"Retry-After": "7"},
                   json=error(429, "throttled", "Request was throttled.", "Expected available in 7 seconds."))
    with pytest.raises(ConnectorError) as raised:
        connector().send_email(message())
    assert not raised.value.permanent and raised.value.retry_after == 7.0


@responses.activate
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(status):
    responses.post(EVENTS, status=status, json=error(status, "error", "A server error occurred.", "Try again."))
    with pytest.raises(ConnectorError) as raised:
        connector().send_email(message())
    assert not raised.value.permanent


def test_a_property_over_klaviyos_100_kb_limit_is_refused_before_sending():
    with responses.RequestsMock() as mock, pytest.raises(ConnectorError, match="over 100 KB: message_html") as raised:
        connector().send_email(message(html_body="x" * 100_001))
    assert raised.value.permanent and len(mock.calls) == 0


@responses.activate
def test_check_connection_reads_the_account_of_the_key():
    responses.get(f"{BASE}/api/accounts", json={"data": [{"type": "account", "id": "AbC123",
                                                           "attributes": {"contact_information": {}}}]})
    connector().check_connection()
    assert responses.calls[0].request.headers["Authorization"] == "Klaviyo-API-Key pk_test_123"


def test_the_default_host_is_klaviyos():
    assert KlaviyoConnector({"api_key": "pk"}).base_url == "https://a.klaviyo.com"


def test_settings_keep_the_key_secret_and_default_the_metric():
    schema = KlaviyoSettings()
    assert schema.secret_fields() == {"api_key"}
    loaded = schema.load({"api_key": "pk_live"})
    assert loaded["metric_name"] == DEFAULT_METRIC and loaded["revision"] == DEFAULT_REVISION
