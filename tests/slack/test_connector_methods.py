"""``SlackConnector.update_message`` and ``lookup_user_by_email``, faked with the docs' shapes.

https://docs.slack.dev/reference/methods/chat.update (answer: ok, channel, ts, text, message)
https://docs.slack.dev/reference/methods/users.lookupByEmail (answer: ok, user; error users_not_found)
https://docs.slack.dev/apis/web-api/rate-limits (HTTP 429 with Retry-After)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from connectors.errors import ConnectorError
from connectors.slack import SlackConnector

BASE = "https://slack.test/api"


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def connector() -> SlackConnector:
    return SlackConnector({"bot_token": "xoxb-test", "signing_secret": "s", "channel": "C0CSM", "base_url": BASE})


def test_update_message_sends_channel_ts_blocks_and_text(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{BASE}/chat.update", json={"ok": True, "channel": "C0CSM", "ts": "1401383885.000061",
                                             "text": "Updated", "message": {"text": "Updated", "user": "U0BOT"}})
    blocks = [{"type": "context", "elements": [{"type": "mrkdwn", "text": "✅ Marked celebrated by <@U1>"}]}]
    result = connector().update_message("C0CSM", "1401383885.000061", blocks, "Updated")

    sent = json.loads(mocked.calls[0].request.body)
    assert sent == {"channel": "C0CSM", "ts": "1401383885.000061", "blocks": blocks, "text": "Updated"}
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer xoxb-test"
    assert result.external_id == "C0CSM:1401383885.000061"


def test_update_message_errors_are_permanent_unless_slack_is_busy(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{BASE}/chat.update", json={"ok": False, "error": "cant_update_message"})
    with pytest.raises(ConnectorError) as raised:
        connector().update_message("C0CSM", "1.2", [], "x")
    assert raised.value.permanent and "cant_update_message" in raised.value.message
    mocked.post(f"{BASE}/chat.update", status=429, headers={"Retry-After": "30"}, body="")
    with pytest.raises(ConnectorError) as raised:
        connector().update_message("C0CSM", "1.2", [], "x")
    assert not raised.value.permanent and raised.value.retry_after == 30


def test_lookup_user_by_email_returns_the_member_id(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/users.lookupByEmail", json={"ok": True, "user": {
        "id": "W012A3CDE", "team_id": "T012AB3C4", "name": "spengler", "deleted": False,
        "real_name": "Egon Spengler", "profile": {"email": "spengler@ghostbusters.example.com"}}})
    assert connector().lookup_user_by_email("spengler@ghostbusters.example.com") == "W012A3CDE"
    query = parse_qs(urlparse(mocked.calls[0].request.url).query)
    assert query == {"email": ["spengler@ghostbusters.example.com"]}


def test_lookup_user_by_email_of_nobody_is_none(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/users.lookupByEmail", json={"ok": False, "error": "users_not_found"})
    assert connector().lookup_user_by_email("nobody@example.com") is None


def test_lookup_user_by_email_without_the_scope_is_a_permanent_error(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/users.lookupByEmail", json={"ok": False, "error": "missing_scope",
                                                    "needed": "users:read.email", "provided": "chat:write"})
    with pytest.raises(ConnectorError) as raised:
        connector().lookup_user_by_email("csm@example.com")
    assert raised.value.permanent and "missing_scope" in raised.value.message
