"""Slack alerts in PRD-114's format through the Web API, faked with the docs' own shapes.

Request and answer shapes:
https://docs.slack.dev/reference/methods/chat.postMessage (ok/channel/ts answer, errors)
https://docs.slack.dev/messaging/message-metadata (metadata event_type / event_payload)
https://docs.slack.dev/reference/methods/conversations.history (oldest, include_all_metadata, cursor)
https://docs.slack.dev/reference/methods/auth.test
https://docs.slack.dev/apis/web-api/rate-limits (HTTP 429 with Retry-After)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from connectors.errors import ConnectorError
from connectors.payloads import MilestoneAlert, Money
from connectors.slack import SlackConnector, SlackSettings, alert_blocks, health_label

BASE = "https://slack.test/api"
POST_MESSAGE = f"{BASE}/chat.postMessage"
HISTORY = f"{BASE}/conversations.history"


def connector() -> SlackConnector:
    return SlackConnector(
        {"bot_token": "xoxb-test-token", "signing_secret": "signing", "channel": "C0CSMTEAM", "base_url": BASE}
    )


def growthcorp(**overrides: Any) -> MilestoneAlert:
    fields: dict[str, Any] = {
        "idempotency_key": "effect-7-alert",
        "milestone_id": "m-123",
        "customer_name": "GrowthCorp",
        "customer_email": "cs@growthcorp.example",
        "milestone_name": "1M API calls",
        "headline": "1 Million API Calls!",
        "detail": "API usage reached 1,000,000 calls",
        "achieved_on": date(2026, 1, 29),
        "time_to_milestone": "8 months",
        "customer_since": date(2025, 5, 12),
        "arr": Money(Decimal("65000"), "USD"),
        "health_score": 85,
        "celebration_ideas": (),
    }
    return MilestoneAlert(**{**fields, **overrides})


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    return [b["text"]["text"] for b in blocks if "text" in b]


def sent(call: Any) -> dict[str, Any]:
    return json.loads(call.request.body)


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def test_alert_blocks_follow_prd_114_layout() -> None:
    blocks = alert_blocks(growthcorp())

    assert [b["type"] for b in blocks] == ["header", "section", "section", "section", "section", "actions"]
    assert texts(blocks) == [
        ":trophy: Customer Milestone: GrowthCorp",
        "*Milestone Achieved:* 1 Million API Calls!",
        "*Details:*\n"
        "- Milestone: API usage reached 1,000,000 calls\n"
        "- Achieved: Jan 29, 2026\n"
        "- Time to milestone: 8 months",
        "*Customer Context:*\n- Customer since: May 2025\n- Current ARR: $65,000\n- Health Score: 85 (Excellent)",
        "*Celebration Ideas:*\n"
        "1. :email: Send congratulations email\n"
        "2. :bird: Social media shoutout (with permission)\n"
        "3. :gift: Consider milestone gift\n"
        "4. :memo: Invite to case study participation",
    ]
    buttons = blocks[-1]["elements"]
    assert [(b["text"]["text"], b["action_id"], b["value"], b.get("style")) for b in buttons] == [
        ("Send Celebration Email", "send_celebration_email", "m-123", None),
        ("Request Social Permission", "request_social_permission", "m-123", None),
        ("Mark Celebrated", "mark_celebrated", "m-123", "primary"),
    ]


def test_alert_blocks_omit_lines_without_data() -> None:
    blocks = alert_blocks(growthcorp(time_to_milestone=None, arr=None, health_score=None))

    assert "Time to milestone" not in texts(blocks)[2]
    assert texts(blocks)[3] == "*Customer Context:*\n- Customer since: May 2025"


def test_alert_blocks_drop_customer_context_when_nothing_is_known() -> None:
    blocks = alert_blocks(growthcorp(customer_since=None, arr=None, health_score=None))

    assert not any("Customer Context" in t for t in texts(blocks))


def test_alert_blocks_use_the_alerts_own_ideas_with_matching_emoji() -> None:
    ideas = ("Thank-you e-mail from the CEO", "LinkedIn shoutout", "Plant a tree", ":cake: Send a cake")
    blocks = alert_blocks(growthcorp(celebration_ideas=ideas))

    assert texts(blocks)[4] == (
        "*Celebration Ideas:*\n"
        "1. :email: Thank-you e-mail from the CEO\n"
        "2. :bird: LinkedIn shoutout\n"
        "3. :sparkles: Plant a tree\n"
        "4. :cake: Send a cake"
    )


def test_alert_blocks_escape_mrkdwn_control_characters() -> None:
    blocks = alert_blocks(growthcorp(headline="<Big> & bold", customer_name="A&B <Co>"))

    assert texts(blocks)[0] == ":trophy: Customer Milestone: A&B <Co>"  # plain_text is not parsed
    assert texts(blocks)[1] == "*Milestone Achieved:* &lt;Big&gt; &amp; bold"


def test_alert_blocks_show_non_dollar_arr_with_its_currency() -> None:
    assert "- Current ARR: €1,250.50" in texts(alert_blocks(growthcorp(arr=Money(Decimal("1250.5"), "EUR"))))[3]
    assert "- Current ARR: 9,000 CHF" in texts(alert_blocks(growthcorp(arr=Money(Decimal("9000"), "CHF"))))[3]


@pytest.mark.parametrize(
    ("score", "label"), [(100, "Excellent"), (80, "Excellent"), (79, "Good"), (60, "Good"), (59, "Fair"), (40, "Fair"), (39, "At risk")]
)
def test_health_score_labels(score: int, label: str) -> None:
    assert health_label(score) == label


# The documented chat.postMessage answer.
POSTED = {
    "ok": True,
    "channel": "C123ABC456",
    "ts": "1503435956.000247",
    "message": {
        "text": "Here's a message for you",
        "username": "ecto1",
        "bot_id": "B123ABC456",
        "type": "message",
        "subtype": "bot_message",
        "ts": "1503435956.000247",
    },
}


def test_alert_posts_blocks_fallback_text_and_metadata(mocked: responses.RequestsMock) -> None:
    mocked.post(POST_MESSAGE, json=POSTED)
    alert = growthcorp()

    result = connector().post_alert(alert)

    request = mocked.calls[0].request
    assert request.headers["Authorization"] == "Bearer xoxb-test-token"
    assert request.headers["Content-Type"].startswith("application/json")
    body = sent(mocked.calls[0])
    assert body["channel"] == "C0CSMTEAM"
    assert body["text"] == ":trophy: Customer Milestone: GrowthCorp — 1 Million API Calls!"
    assert body["blocks"] == alert_blocks(alert)
    assert body["metadata"] == {
        "event_type": "customer_milestone",
        "event_payload": {"milestone_id": "m-123", "idempotency_key": "effect-7-alert"},
    }
    assert result.external_id == "C123ABC456:1503435956.000247"


def test_an_alerts_own_channel_wins_over_the_setting(mocked: responses.RequestsMock) -> None:
    mocked.post(POST_MESSAGE, json=POSTED)

    connector().post_alert(growthcorp(channel="C0OWNER"))

    assert sent(mocked.calls[0])["channel"] == "C0OWNER"


@pytest.mark.parametrize(
    "error", ["invalid_auth", "channel_not_found", "not_in_channel", "account_inactive", "invalid_blocks"]
)
def test_slack_errors_that_will_not_go_away_are_permanent(mocked: responses.RequestsMock, error: str) -> None:
    mocked.post(POST_MESSAGE, json={"ok": False, "error": error})

    with pytest.raises(ConnectorError) as caught:
        connector().post_alert(growthcorp())

    assert caught.value.permanent is True
    assert error in caught.value.message


@pytest.mark.parametrize("error", ["ratelimited", "internal_error", "fatal_error", "service_unavailable"])
def test_slack_errors_that_pass_are_transient(mocked: responses.RequestsMock, error: str) -> None:
    mocked.post(POST_MESSAGE, json={"ok": False, "error": error})

    with pytest.raises(ConnectorError) as caught:
        connector().post_alert(growthcorp())

    assert caught.value.permanent is False


def test_slack_error_hints_reach_the_message(mocked: responses.RequestsMock) -> None:
    mocked.post(
        POST_MESSAGE,
        json={
            "ok": False,
            "error": "invalid_blocks",
            "response_metadata": {"messages": ["[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text]"]},
        },
    )

    with pytest.raises(ConnectorError) as caught:
        connector().post_alert(growthcorp())

    assert "json-pointer:/blocks/0/text" in caught.value.message


def test_http_429_is_transient_with_retry_after(mocked: responses.RequestsMock) -> None:
    mocked.post(POST_MESSAGE, status=429, headers={"Retry-After": "30"}, json={"ok": False, "error": "ratelimited"})

    with pytest.raises(ConnectorError) as caught:
        connector().post_alert(growthcorp())

    assert caught.value.permanent is False
    assert caught.value.retry_after == 30.0


@pytest.mark.parametrize(("status", "permanent"), [(401, True), (404, True), (500, False), (503, False)])
def test_http_errors_keep_their_meaning(mocked: responses.RequestsMock, status: int, permanent: bool) -> None:
    mocked.post(POST_MESSAGE, status=status, body="error")

    with pytest.raises(ConnectorError) as caught:
        connector().post_alert(growthcorp())

    assert caught.value.permanent is permanent
    assert caught.value.status == status


SINCE = datetime(2026, 11, 21, 15, 30, 0, tzinfo=UTC)


def history_page(*messages: dict[str, Any], cursor: str = "") -> dict[str, Any]:
    return {
        "ok": True,
        "messages": list(messages),
        "has_more": bool(cursor),
        "pin_count": 0,
        "response_metadata": {"next_cursor": cursor},
    }


def message(ts: str, key: str | None) -> dict[str, Any]:
    found: dict[str, Any] = {"type": "message", "user": "U012AB3CDE", "text": "hello", "ts": ts}
    if key is not None:
        found["bot_id"] = "B123ABC456"
        found["metadata"] = {
            "event_type": "customer_milestone",
            "event_payload": {"milestone_id": "m-123", "idempotency_key": key},
        }
    return found


def test_reconcile_finds_the_alert_a_crashed_attempt_posted(mocked: responses.RequestsMock) -> None:
    mocked.get(
        HISTORY,
        json=history_page(message("1795275100.000300", None), message("1795275050.000200", "effect-7-alert")),
    )

    found = connector().find_alert(growthcorp(), since=SINCE)

    assert found is not None and found.external_id == "C0CSMTEAM:1795275050.000200"
    request = mocked.calls[0].request
    assert request.headers["Authorization"] == "Bearer xoxb-test-token"
    assert parse_qs(urlparse(str(request.url)).query) == {
        "channel": ["C0CSMTEAM"],
        "oldest": ["1795274880.000000"],  # since minus 120 s
        "include_all_metadata": ["true"],
        "limit": ["200"],
    }


def test_reconcile_follows_the_history_cursor(mocked: responses.RequestsMock) -> None:
    mocked.get(HISTORY, json=history_page(message("1795275100.000300", "effect-8-alert"), cursor="bmV4dF90czox"))
    mocked.get(HISTORY, json=history_page(message("1795275050.000200", "effect-7-alert")))

    found = connector().find_alert(growthcorp(), since=SINCE)

    assert found is not None and found.external_id == "C0CSMTEAM:1795275050.000200"
    assert parse_qs(urlparse(str(mocked.calls[1].request.url)).query)["cursor"] == ["bmV4dF90czox"]


def test_reconcile_finds_nothing_when_only_other_alerts_were_posted(mocked: responses.RequestsMock) -> None:
    mocked.get(HISTORY, json=history_page(message("1795275100.000300", "effect-8-alert"), message("1795275000.1", None)))

    assert connector().find_alert(growthcorp(), since=SINCE) is None


def test_reconcile_in_a_channel_the_bot_cannot_read_is_permanent(mocked: responses.RequestsMock) -> None:
    mocked.get(HISTORY, json={"ok": False, "error": "not_in_channel"})

    with pytest.raises(ConnectorError) as caught:
        connector().find_alert(growthcorp(), since=SINCE)

    assert caught.value.permanent is True


def test_check_connection_calls_auth_test(mocked: responses.RequestsMock) -> None:
    mocked.post(
        f"{BASE}/auth.test",
        json={"ok": True, "url": "https://subarachnoid.slack.com/", "team": "Subarachnoid Workspace",
              "user": "bot", "team_id": "T0G9PQBBK", "user_id": "W23456789", "bot_id": "BZYBOTHED"},
    )

    connector().check_connection()

    assert mocked.calls[0].request.headers["Authorization"] == "Bearer xoxb-test-token"


def test_check_connection_with_a_revoked_token_is_permanent(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{BASE}/auth.test", json={"ok": False, "error": "token_revoked"})

    with pytest.raises(ConnectorError) as caught:
        connector().check_connection()

    assert caught.value.permanent is True


def test_settings_require_the_channel_and_mark_secrets() -> None:
    assert "channel" in SlackSettings().validate({"bot_token": "xoxb", "signing_secret": "s"})
    assert SlackSettings.secret_fields() == {"bot_token", "signing_secret"}
