"""Usage events: how a product reports its customers' usage to us (PRD-114's usage and adoption).

Deliveries are signed per Standard Webhooks
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md,
https://www.standardwebhooks.com/): ``webhook-signature`` is a space-separated list of
``v1,<base64 HMAC-SHA256>`` over ``{webhook-id}.{webhook-timestamp}.{raw body}``, keyed with the
bytes of the ``whsec_<base64>`` secret; ``webhook-timestamp`` is unix seconds and is refused
more than five minutes away from our clock. Several signatures are sent during the sender's
secret rotation; we also keep our own previous secret, and one match of any is enough.

The body is one event or ``{"events": [...]}``; each event is its own inbox row keyed by its id::

    {"id": "evt_01", "customer": {"external_id": "acct_42", "email": "ops@growthcorp.example",
     "name": "GrowthCorp"}, "metric": "api_calls", "increment": 1200,
     "occurred_at": "2026-01-29T10:00:00Z"}

``customer`` names the account by the sender's ``external_id`` and/or ``email`` (an email joins
it to the same customer known from the store or the CRM); ``name`` is the account's (company)
name. ``value`` is an absolute reading (a number, or a boolean for flags), ``increment`` a
change; exactly one of them. A reading older than one already applied is ignored by the
pipeline, so a late retry never moves a counter back. ``feature.<name>`` metrics are adoption
flags and take a boolean ``value``. Numbers are JSON numbers, or strings holding a plain decimal
for values a double cannot carry. ``order_count`` and ``lifetime_spend`` come from orders only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from plugin.events import CanonicalEvent, CustomerRef, MetricChanged
from webhooks.base import InboxItem, MalformedDelivery, Verification, WebhookSource, constant_time_equal
from webhooks.reading import header as _header

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"  # symmetric HMAC-SHA256; "v1a" (ed25519) is not used here
TOLERANCE_SECONDS = 5 * 60
TOPIC = "metric"
MAX_EVENTS = 1000

METRIC_NAME = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*\Z")  # as in plugin.engine.schemas
FEATURE_PREFIX = "feature."
# Counted from the order ledger; a usage event setting them would double count orders.
LEDGER_METRICS = frozenset({"order_count", "lifetime_spend"})
MAX_DECIMAL_PLACES = 6  # customer_metrics.value is NUMERIC(30, 6)
MAX_MAGNITUDE = Decimal(10) ** 24
PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z")


def decode_secret(secret: str) -> bytes | None:
    """The HMAC key of a ``whsec_<base64>`` secret (the prefix is optional), or None if unreadable."""
    text = secret.strip()
    if text.startswith(SECRET_PREFIX):
        text = text[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key or None


def sign(msg_id: str, timestamp: int | str, body: bytes, secret: str) -> str:
    """The ``v1,<base64>`` signature a Standard Webhooks sender puts in ``webhook-signature``."""
    key = decode_secret(secret)
    if key is None:
        raise ValueError("not a whsec_<base64> secret")
    return f"{SIGNATURE_VERSION},{base64.b64encode(_digest(key, msg_id, str(timestamp), body)).decode('ascii')}"


def _digest(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def _v1_signatures(listed: str) -> list[bytes]:
    """The decoded ``v1`` entries of ``webhook-signature``; other versions and junk are skipped."""
    found = []
    for entry in listed.split():
        version, _, encoded = entry.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            signature = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(signature) == hashlib.sha256().digest_size:
            found.append(signature)
    return found


class UsageSource(WebhookSource):
    platform = "usage"
    secret_settings = ("signing_secret", "previous_signing_secret")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def verify(
        self,
        body: bytes,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        url: str,
        method: str = "POST",
    ) -> Verification:
        """Headers present, timestamp within five minutes, then any listed v1 signature against
        any configured secret. ``url`` and ``method`` are not signed by this scheme."""
        msg_id = _header(headers, ID_HEADER)
        stamp = _header(headers, TIMESTAMP_HEADER)
        listed = _header(headers, SIGNATURE_HEADER)
        for name, value in ((ID_HEADER, msg_id), (TIMESTAMP_HEADER, stamp), (SIGNATURE_HEADER, listed)):
            if value is None:
                return Verification.failed(f"missing {name} header")
        assert msg_id is not None and stamp is not None and listed is not None
        if not stamp.isdigit():
            return Verification.failed(f"{TIMESTAMP_HEADER} is not unix seconds: {stamp[:40]!r}")
        skew = int(stamp) - self.clock()
        if skew < -TOLERANCE_SECONDS:
            return Verification.failed(
                f"{TIMESTAMP_HEADER} is {int(-skew)} seconds old (more than 5 minutes): a replay or a late retry"
            )
        if skew > TOLERANCE_SECONDS:
            return Verification.failed(
                f"{TIMESTAMP_HEADER} is {int(skew)} seconds in the future (more than 5 minutes): check the sender's clock"
            )
        received = _v1_signatures(listed)
        if not received:
            return Verification.failed(f"{SIGNATURE_HEADER} has no {SIGNATURE_VERSION},<base64> signature")
        keys = [key for key in (decode_secret(s) for s in secrets if s) if key is not None]
        if not keys:
            return Verification.failed("no whsec_ signing secret is configured for this connection")
        for position, key in enumerate(keys):
            expected = _digest(key, msg_id, stamp, body)
            # Compare against every listed signature, without stopping early on a match.
            if sum(constant_time_equal(expected, signature) for signature in received):
                if position == 0:
                    return Verification.passed()
                return Verification(True, "signed with the previous signing secret")
        return Verification.failed(f"no {SIGNATURE_HEADER} entry matches the body")

    def items(self, body: bytes, headers: Mapping[str, str]) -> list[InboxItem]:
        data = _parse(body)
        if isinstance(data, dict) and "events" in data:
            events = _load(_BATCH, data)["events"]
            raw = data["events"]
        else:
            events = [_load(_EVENT, data)]
            raw = [data]
        seen: set[str] = set()
        for event in events:
            if event["id"] in seen:
                raise MalformedDelivery(f"event id {event['id']!r} appears twice in this delivery")
            seen.add(event["id"])
        msg_id = _header(headers, ID_HEADER)
        kept = {name: value for name in (ID_HEADER, TIMESTAMP_HEADER) if (value := _header(headers, name))}
        return [
            InboxItem(
                topic=TOPIC,
                delivery_key=f"event:{event['id']}",
                body=json.dumps(original, default=_json_number, ensure_ascii=False, separators=(",", ":")),
                webhook_id=msg_id[:255] if msg_id else None,
                headers=kept,
            )
            for event, original in zip(events, raw, strict=True)
        ]

    def normalize(self, topic: str, payload: Any) -> list[CanonicalEvent]:
        if topic != TOPIC:
            raise MalformedDelivery(f"unknown topic {topic!r}")
        if isinstance(payload, bytes | str):
            payload = _parse(payload.encode() if isinstance(payload, str) else payload)
        event = _load(_EVENT, payload)
        customer = event["customer"]
        return [
            MetricChanged(
                customer=CustomerRef(
                    external_id=customer.get("external_id"),
                    email=customer.get("email"),
                    company_name=customer.get("name"),
                ),
                metric=event["metric"],
                occurred_at=event["occurred_at"].astimezone(UTC),
                value=event.get("value"),
                increment=event.get("increment"),
            )
        ]


# --- reading bodies ---------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise MalformedDelivery("body is not valid JSON") from exc


def _json_number(value: Any) -> int | float | str:
    """A Decimal as JSON: an int when whole, a float when exact, else its plain decimal string."""
    if not isinstance(value, Decimal):
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else format(value, "f")


def _load(schema: Schema, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MalformedDelivery('body is not a JSON object: send one event or {"events": [...]}')
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError as error:
        raise MalformedDelivery(_describe(error.messages)) from error
    return loaded


def _describe(messages: Any) -> str:
    """``events[2].customer.email: Not a valid email address.`` — the first few problems."""
    found: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                if key == "_schema":
                    walk(child, path)
                elif isinstance(key, int):
                    walk(child, f"{path}[{key}]")
                else:
                    walk(child, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            for child in node:
                walk(child, path)
        else:
            found.append(f"{path}: {node}" if path else str(node))

    walk(messages, "")
    return "; ".join(found[:5]) + (f" (and {len(found) - 5} more)" if len(found) > 5 else "")


# --- the event schema -------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValidationError("must be a number")
    if isinstance(value, str):
        if not PLAIN_DECIMAL.match(value.strip()):
            raise ValidationError("must be a number or a plain decimal string such as \"1000.5\"")
        value = value.strip()
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation as exc:
        raise ValidationError("must be a number") from exc
    if not number.is_finite() or abs(number) >= MAX_MAGNITUDE:
        raise ValidationError("must be a finite number below 10^24")
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMAL_PLACES:
        raise ValidationError(f"has more than {MAX_DECIMAL_PLACES} decimal places")
    return number


class _Number(fields.Field):
    """A JSON number (never a boolean) as a Decimal."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        return _decimal(value)


class _Reading(fields.Field):
    """An absolute reading: a boolean (a flag) or a number."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal | bool:
        return value if isinstance(value, bool) else _decimal(value)


class _Identifier(fields.Field):
    """The sender's id for the account: a string or a whole number."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
            raise ValidationError("must be a non-empty string or a whole number")
        text = str(value).strip()
        if len(text) > 255:
            raise ValidationError("is longer than 255 characters")
        return text


class _CustomerSchema(Schema):
    external_id = _Identifier()
    email = fields.Email(validate=validate.Length(max=320))
    name = fields.String(validate=validate.Length(min=1, max=255))

    @validates_schema
    def _identifiable(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("external_id") and not data.get("email"):
            raise ValidationError("needs an external_id or an email")


class _EventSchema(Schema):
    id = fields.String(
        required=True,
        validate=validate.Regexp(r"\S{1,200}\Z", error="must be 1 to 200 characters without spaces"),
    )
    customer = fields.Nested(_CustomerSchema, required=True)
    metric = fields.String(
        required=True,
        validate=[
            validate.Length(max=100),
            validate.Regexp(METRIC_NAME, error="must be lowercase words joined by _ or . (e.g. api_calls, feature.reports)"),
            validate.NoneOf(LEDGER_METRICS, error="is counted from orders and cannot be sent as a usage event"),
        ],
    )
    value = _Reading()
    increment = _Number()
    occurred_at = fields.AwareDateTime(required=True, format="iso")

    @validates_schema
    def _one_reading(self, data: dict[str, Any], **kwargs: Any) -> None:
        has_value, has_increment = "value" in data, "increment" in data
        if has_value == has_increment:
            raise ValidationError("send exactly one of value (an absolute reading) or increment")
        if str(data.get("metric", "")).startswith(FEATURE_PREFIX) and not isinstance(data.get("value"), bool):
            raise ValidationError({"value": ["a feature.<name> metric is a flag: send value true or false"]})


class _BatchSchema(Schema):
    events = fields.List(
        fields.Nested(_EventSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_EVENTS, error=f"must hold 1 to {MAX_EVENTS} events"),
    )


_EVENT = _EventSchema()
_BATCH = _BatchSchema()
