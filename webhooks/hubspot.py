"""HubSpot CRM webhooks: contact and company changes, the CRM side of PRD-114's business milestones.

Signatures (https://developers.hubspot.com/docs/apps/developer-platform/build-apps/authentication/request-validation,
and for legacy apps https://developers.hubspot.com/docs/api/webhooks/validating-requests):

- **v3** ``X-HubSpot-Signature-v3`` = base64 HMAC-SHA256, keyed with the app's client secret, of
  ``method + URI + raw body + X-HubSpot-Request-Timestamp``; the timestamp is epoch milliseconds
  and a request older than five minutes is refused (so is one from further than that in the
  future: a clock that wrong is not HubSpot's). The URI is the full public URL HubSpot called,
  with the few percent-escapes the docs list decoded.
- **v1** ``X-HubSpot-Signature`` with ``X-HubSpot-Signature-Version: v1`` = hex SHA-256 of
  ``client secret + raw body`` (https://developers.hubspot.com/docs/faq/v1-request-validation):
  what CRM object subscriptions of the webhooks API send. It signs no timestamp, so a replay is
  stopped only by the inbox's delivery keys. ``v2`` (secret + method + URI + body) is read too.

The previous client secret is accepted while an app's secret is rotated.

The body is a JSON array of events (https://developers.hubspot.com/docs/api/webhooks, "Webhook
payloads"); each event is its own inbox row::

    [{"eventId": 1, "subscriptionId": 12345, "portalId": 62515, "appId": 54321,
      "occurredAt": 1564113600000, "subscriptionType": "contact.propertyChange",
      "attemptNumber": 0, "objectId": 123, "propertyName": "annualrevenue",
      "propertyValue": "65000", "changeSource": "CRM"}]

HubSpot says ``eventId`` alone is not guaranteed unique, so the dedupe key is the event id with the
subscription type, the object and the property: a retry repeats all of them. The generic
``object.*`` subscriptions are read like the legacy ``contact.*``/``company.*`` ones through
their ``objectTypeId`` (``0-1`` contacts, ``0-2`` companies). Other objects and event types are
acknowledged and not stored.

**What the events become.** A contact is the customer whose external id on this connection is the
contact id; a company's is ``company:<id>`` (contact and company ids are separate sequences).
``contact.creation`` makes the contact known; an ``email`` change gives it the email that joins it
to the store's customer (:mod:`plugin.pipeline.customers` links or merges them); ``firstname``,
``lastname`` and a company's ``name`` fill the profile; ``contact.privacyDeletion`` (GDPR delete)
is a redaction request.

Every other property is reported *as it is*, under its own name: a number or a ``true``/``false``
as ``MetricChanged("crm.<property>", value, occurred_at)``, text as
``CustomerUpdated(properties={"crm.<property>": text})``. What a property *means* — ARR, health
score, the CSM who owns the account, "customer since", or a metric such as ``api_calls`` or
``roi_achieved`` — is the admin's mapping on the connection (the ``property_map`` setting), and
:mod:`plugin.pipeline.crm_properties` applies it when the batch runs. It is not applied here:
``normalize`` sees only the stored event, and the mapping belongs to the workspace, not the
wire format. Applying it at processing time also keeps the inbox a copy of what HubSpot sent, and
lets a corrected mapping take effect on replayed deliveries.
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
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from plugin.events import CanonicalEvent, CustomerRedactRequested, CustomerRef, CustomerUpdated, MetricChanged
from webhooks.base import InboxItem, MalformedDelivery, Verification, WebhookSource, constant_time_equal
from webhooks.reading import header as _header

SIGNATURE_V3_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
SIGNATURE_HEADER = "X-HubSpot-Signature"
VERSION_HEADER = "X-HubSpot-Signature-Version"
TOLERANCE_MS = 5 * 60 * 1000
MAX_EVENTS = 1000  # HubSpot sends at most 100 per request

# Percent-escapes HubSpot decodes in the URI before signing it (v3 instructions).
URI_ESCAPES = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}
_ESCAPE = re.compile("|".join(URI_ESCAPES), re.IGNORECASE)

OBJECT_TYPES = {"0-1": "contact", "0-2": "company"}  # objectTypeId of the generic object.* events
TOPICS = frozenset(
    {"contact.creation", "contact.propertyChange", "contact.privacyDeletion", "company.creation", "company.propertyChange"}
)
COMPANY_PREFIX = "company:"
METRIC_PREFIX = "crm."
PROFILE_PROPERTIES = {("contact", "firstname"): "first_name", ("contact", "lastname"): "last_name",
                      ("company", "name"): "company_name"}
PLAIN_DECIMAL = re.compile(r"-?[0-9]{1,24}(?:\.[0-9]{1,6})?\Z")  # fits customer_metrics.value
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")


def sign_v3(method: str, uri: str, body: bytes, timestamp: int | str, secret: str) -> str:
    """The ``X-HubSpot-Signature-v3`` HubSpot sends for this request."""
    return base64.b64encode(_v3_digest(method, uri, body, str(timestamp), secret)).decode("ascii")


def sign_v1(body: bytes, secret: str) -> str:
    """The ``X-HubSpot-Signature`` HubSpot sends with ``X-HubSpot-Signature-Version: v1``."""
    return hashlib.sha256(secret.encode("utf-8") + body).hexdigest()


def sign_v2(method: str, uri: str, body: bytes, secret: str) -> str:
    return hashlib.sha256(f"{secret}{method}{uri}".encode() + body).hexdigest()


def signed_uri(url: str) -> str:
    """The URI as HubSpot signs it: the listed percent-escapes decoded, the rest as sent."""
    return _ESCAPE.sub(lambda match: URI_ESCAPES[match.group(0).upper()], url)


def _v3_digest(method: str, uri: str, body: bytes, timestamp: str, secret: str) -> bytes:
    message = f"{method.upper()}{uri}".encode() + body + timestamp.encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


class HubSpotSource(WebhookSource):
    platform = "hubspot"
    secret_settings = ("client_secret", "previous_client_secret")

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
        """v3 when HubSpot sent it (it signs the URL and a timestamp), else v1/v2."""
        candidates = [secret for secret in secrets if secret]
        if _header(headers, SIGNATURE_V3_HEADER) is not None:
            return self._verify_v3(body, headers, candidates, url, method)
        received = _header(headers, SIGNATURE_HEADER)
        if received is None:
            return Verification.failed(f"missing {SIGNATURE_V3_HEADER} header (or {SIGNATURE_HEADER} with {VERSION_HEADER})")
        version = (_header(headers, VERSION_HEADER) or "").lower()
        if version not in ("v1", "v2"):
            return Verification.failed(f"{VERSION_HEADER} is {version or 'missing'}: v1 or v2 expected with {SIGNATURE_HEADER}")
        if not candidates:
            return Verification.failed("no client secret is configured for this connection")
        uri = signed_uri(url)
        for position, secret in enumerate(candidates):
            expected = sign_v1(body, secret) if version == "v1" else sign_v2(method.upper(), uri, body, secret)
            if constant_time_equal(expected, received.lower()):
                return Verification.passed() if position == 0 else Verification(True, "signed with the previous client secret")
        return Verification.failed(f"{SIGNATURE_HEADER} ({version}) does not match the body")

    def _verify_v3(
        self, body: bytes, headers: Mapping[str, str], secrets: list[str], url: str, method: str
    ) -> Verification:
        stamp = _header(headers, TIMESTAMP_HEADER)
        if stamp is None:
            return Verification.failed(f"missing {TIMESTAMP_HEADER} header")
        if not stamp.isdigit():
            return Verification.failed(f"{TIMESTAMP_HEADER} is not epoch milliseconds: {stamp[:40]!r}")
        skew = int(stamp) - int(self.clock() * 1000)
        if skew < -TOLERANCE_MS:
            return Verification.failed(f"{TIMESTAMP_HEADER} is {-skew // 1000} seconds old (more than 5 minutes): a replay or a late retry")
        if skew > TOLERANCE_MS:
            return Verification.failed(f"{TIMESTAMP_HEADER} is {skew // 1000} seconds in the future (more than 5 minutes)")
        try:
            received = base64.b64decode(_header(headers, SIGNATURE_V3_HEADER) or "", validate=True)
        except (binascii.Error, ValueError):
            return Verification.failed(f"{SIGNATURE_V3_HEADER} is not base64")
        if len(received) != hashlib.sha256().digest_size:
            return Verification.failed(f"{SIGNATURE_V3_HEADER} is not an HMAC-SHA256")
        if not secrets:
            return Verification.failed("no client secret is configured for this connection")
        uri = signed_uri(url)
        for position, secret in enumerate(secrets):
            if constant_time_equal(_v3_digest(method, uri, body, stamp, secret), received):
                return Verification.passed() if position == 0 else Verification(True, "signed with the previous client secret")
        return Verification.failed(f"{SIGNATURE_V3_HEADER} does not match the request (check MILESTONES_PUBLIC_URL)")

    def items(self, body: bytes, headers: Mapping[str, str]) -> list[InboxItem]:
        try:
            events = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise MalformedDelivery("body is not valid JSON") from exc
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise MalformedDelivery("body is not a JSON array of events")
        if len(events) > MAX_EVENTS:
            raise MalformedDelivery(f"more than {MAX_EVENTS} events in one delivery")
        stamp = _header(headers, TIMESTAMP_HEADER)
        items: dict[str, InboxItem] = {}
        for index, event in enumerate(events):
            topic = _topic(event, f"[{index}]")
            if topic is None:
                continue  # an object or event type we do not use: acknowledged, not stored
            key = _delivery_key(event, index)
            subscription = event.get("subscriptionId")
            items.setdefault(
                key,
                InboxItem(
                    topic=topic,
                    delivery_key=key,
                    body=json.dumps(event, ensure_ascii=False, separators=(",", ":")),
                    webhook_id=str(subscription)[:255] if subscription is not None else None,
                    headers={TIMESTAMP_HEADER: stamp} if stamp else {},
                ),
            )
        return list(items.values())

    def normalize(self, topic: str, payload: Any) -> list[CanonicalEvent]:
        if topic not in TOPICS:
            raise MalformedDelivery(f"unknown topic {topic!r}")
        if isinstance(payload, bytes | str):
            try:
                payload = json.loads(payload)
            except ValueError as exc:
                raise MalformedDelivery("body is not valid JSON") from exc
        if not isinstance(payload, Mapping):
            raise MalformedDelivery("event is not a JSON object")
        kind, action = topic.split(".", 1)
        object_id = _identifier(payload.get("objectId"), "objectId")
        ref = CustomerRef(external_id=object_id if kind == "contact" else f"{COMPANY_PREFIX}{object_id}")
        if action == "creation":
            return [CustomerUpdated(customer=ref)]
        if action == "privacyDeletion":
            return [CustomerRedactRequested(customer=ref)]
        name = payload.get("propertyName")
        if not isinstance(name, str) or not name.strip():
            raise MalformedDelivery("propertyName is missing")
        name = name.strip()
        text = _text(payload.get("propertyValue"))
        if kind == "contact" and name == "email":
            email = text if text and EMAIL.match(text) else None
            return [CustomerUpdated(customer=replace(ref, email=email))]
        profile_field = PROFILE_PROPERTIES.get((kind, name))
        if profile_field == "first_name":
            return [CustomerUpdated(customer=replace(ref, first_name=text[:255] if text else None))]
        if profile_field == "last_name":
            return [CustomerUpdated(customer=replace(ref, last_name=text[:255] if text else None))]
        if profile_field == "company_name":
            return [CustomerUpdated(customer=replace(ref, company_name=text[:255] if text else None))]
        if not text:
            return []  # a property cleared: nothing to count or to know
        reading = _reading(text)
        if reading is None:
            return [CustomerUpdated(customer=ref, properties={f"{METRIC_PREFIX}{name}": text[:1000]})]
        occurred_at = _moment(payload.get("occurredAt"))
        return [MetricChanged(customer=ref, metric=f"{METRIC_PREFIX}{name}", occurred_at=occurred_at, value=reading)]


def _topic(event: Mapping[str, Any], where: str) -> str | None:
    """``contact.propertyChange`` and the like, or None for what we do not process."""
    subscription = event.get("subscriptionType")
    if not isinstance(subscription, str) or "." not in subscription:
        raise MalformedDelivery(f"{where}.subscriptionType is missing")
    kind, action = subscription.split(".", 1)
    if kind == "object":
        kind = OBJECT_TYPES.get(str(event.get("objectTypeId")), "")
    topic = f"{kind}.{action}"
    if topic not in TOPICS:
        return None
    _identifier(event.get("eventId"), f"{where}.eventId")
    _identifier(event.get("objectId"), f"{where}.objectId")
    _moment(event.get("occurredAt"), f"{where}.occurredAt")
    return topic


def _delivery_key(event: Mapping[str, Any], index: int) -> str:
    parts = [str(event["subscriptionType"]), str(event["eventId"]), str(event["objectId"])]
    if event.get("propertyName"):
        parts.append(str(event["propertyName"]))
    key = ":".join(parts)
    if len(key) > 200:  # keep the key within the column, still unique
        key = f"{parts[0][:40]}:sha256:{hashlib.sha256(key.encode('utf-8')).hexdigest()}"
    return key


def _identifier(value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise MalformedDelivery(f"{field} is missing or not an id")
    text = str(value).strip()
    if len(text) > 200:
        raise MalformedDelivery(f"{field} is longer than 200 characters")
    return text


def _moment(value: Any, field: str = "occurredAt") -> datetime:
    """Epoch milliseconds as an aware UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise MalformedDelivery(f"{field} is missing or not epoch milliseconds")
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedDelivery(f"{field} is out of range: {value!r}") from exc


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip() or None


def _reading(text: str) -> Decimal | bool | None:
    """A property value as a metric reading: ``true``/``false`` (checkboxes) or a plain number."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if not PLAIN_DECIMAL.match(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None
