"""Slack request signing, version ``v0``.

``X-Slack-Signature`` is ``v0=`` + hex HMAC-SHA256, keyed with the app's signing secret, over
``v0:{X-Slack-Request-Timestamp}:{raw body}``; a timestamp more than five minutes from our clock
is refused so a captured request cannot be replayed
(https://docs.slack.dev/authentication/verifying-requests-from-slack).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from webhooks.base import Verification, constant_time_equal

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
VERSION = "v0"
TOLERANCE_SECONDS = 5 * 60


def sign(signing_secret: str, timestamp: str | int, body: bytes) -> str:
    """The ``X-Slack-Signature`` Slack sends for ``body`` at ``timestamp``."""
    base = f"{VERSION}:{timestamp}:".encode() + body
    return f"{VERSION}=" + hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return (value or "").strip()


def verify(body: bytes, headers: Mapping[str, str], signing_secret: str | None, *, now: float) -> Verification:
    received, stamp = _header(headers, SIGNATURE_HEADER), _header(headers, TIMESTAMP_HEADER)
    if not received:
        return Verification.failed(f"missing {SIGNATURE_HEADER} header")
    if not stamp:
        return Verification.failed(f"missing {TIMESTAMP_HEADER} header")
    if not stamp.isdigit():
        return Verification.failed(f"{TIMESTAMP_HEADER} is not unix seconds")
    skew = int(stamp) - now
    if skew < -TOLERANCE_SECONDS:
        return Verification.failed(f"{TIMESTAMP_HEADER} is {int(-skew)} seconds old (more than 5 minutes)")
    if skew > TOLERANCE_SECONDS:
        return Verification.failed(f"{TIMESTAMP_HEADER} is {int(skew)} seconds in the future (more than 5 minutes)")
    if not received.startswith(f"{VERSION}="):
        return Verification.failed(f"{SIGNATURE_HEADER} is not a {VERSION} signature")
    if not signing_secret:
        return Verification.failed("no signing secret is configured for this Slack connection")
    if not constant_time_equal(sign(signing_secret, stamp, body), received):
        return Verification.failed(f"{SIGNATURE_HEADER} does not match the body")
    return Verification.passed()
