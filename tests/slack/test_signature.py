"""Slack request signing v0 (https://docs.slack.dev/authentication/verifying-requests-from-slack).

The known-good vector is the one in Slack's page (also in slackapi/python-slack-sdk's
tests/slack_sdk/signature/test_signature_verifier.py): this secret, timestamp and body give it.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from plugin.slack.signature import sign, verify

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TIMESTAMP = 1531420618
BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def headers(signature: str = SIGNATURE, timestamp: int = TIMESTAMP) -> dict[str, str]:
    return {"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": str(timestamp)}


def test_slacks_documented_example_verifies() -> None:
    assert sign(SECRET, TIMESTAMP, BODY) == SIGNATURE
    assert verify(BODY, headers(), SECRET, now=TIMESTAMP).ok


def test_an_independently_computed_signature_verifies() -> None:
    body = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
    digest = hmac.new(b"another-secret", b"v0:1700000000:" + body, hashlib.sha256).hexdigest()
    assert verify(body, headers("v0=" + digest, 1_700_000_000), "another-secret", now=1_700_000_000).ok


def test_headers_are_read_case_insensitively() -> None:
    lowered = {k.lower(): v for k, v in headers().items()}
    assert verify(BODY, lowered, SECRET, now=TIMESTAMP).ok


def test_a_tampered_body_is_refused() -> None:
    verdict = verify(BODY + b"------", headers(), SECRET, now=TIMESTAMP)
    assert not verdict.ok and "does not match" in verdict.reason


def test_a_wrong_secret_is_refused() -> None:
    assert not verify(BODY, headers(), "not-the-secret", now=TIMESTAMP).ok


@pytest.mark.parametrize("missing", ["X-Slack-Signature", "X-Slack-Request-Timestamp"])
def test_a_missing_header_is_refused_and_named(missing: str) -> None:
    sent = headers()
    del sent[missing]
    verdict = verify(BODY, sent, SECRET, now=TIMESTAMP)
    assert not verdict.ok and verdict.reason == f"missing {missing} header"


def test_a_stale_timestamp_is_refused() -> None:
    verdict = verify(BODY, headers(), SECRET, now=TIMESTAMP + 301)
    assert not verdict.ok and "301 seconds old" in verdict.reason


def test_a_future_timestamp_is_refused() -> None:
    verdict = verify(BODY, headers(), SECRET, now=TIMESTAMP - 301)
    assert not verdict.ok and "in the future" in verdict.reason


def test_within_five_minutes_is_accepted() -> None:
    assert verify(BODY, headers(), SECRET, now=TIMESTAMP + 299).ok
    assert verify(BODY, headers(), SECRET, now=TIMESTAMP - 299).ok


def test_another_signature_version_or_no_secret_is_refused() -> None:
    assert "not a v0" in verify(BODY, headers(SIGNATURE.replace("v0=", "v1=")), SECRET, now=TIMESTAMP).reason
    assert "no signing secret" in verify(BODY, headers(), None, now=TIMESTAMP).reason
    assert "unix seconds" in verify(BODY, {**headers(), "X-Slack-Request-Timestamp": "soon"}, SECRET,
                                    now=TIMESTAMP).reason
