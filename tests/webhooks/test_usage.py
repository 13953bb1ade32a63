"""Usage events in: Standard Webhooks signatures, the event schema, one inbox row per event.

Signature scheme and headers: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
(https://www.standardwebhooks.com/). The known-good vector is the one the specification's own
Python library tests against (libraries/python/tests/test_webhooks.py, ``test_sign_function``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest

from plugin.connections import InvalidSettings
from plugin.events import CustomerRef, MetricChanged
from plugin.models import InboxDelivery
from tests.conftest import add_connection, services_of
from tests.support import count
from webhooks.base import MalformedDelivery
from webhooks.usage import UsageSource

# The specification library's vector: this secret, id, timestamp and body give this signature.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SECRET = "whsec_" + base64.b64encode(b"usage-current-key-32-bytes-long!").decode()
PREVIOUS = "whsec_" + base64.b64encode(b"usage-previous-key-32-bytes-lon!").decode()
URL = "https://milestones.test/webhooks/usage/x"


def spec_source(now: float = SPEC_TIMESTAMP) -> UsageSource:
    return UsageSource(clock=lambda: now)


def spec_headers(**overrides: str) -> dict[str, str]:
    headers = {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TIMESTAMP), "webhook-signature": SPEC_SIGNATURE}
    headers.update(overrides)
    return headers


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Computed here from the specification's words, independently of webhooks.usage."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def event(event_id: str = "evt_1", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": event_id,
        "customer": {"external_id": "acct_42", "email": "ops@growthcorp.example", "name": "GrowthCorp"},
        "metric": "api_calls",
        "increment": 1200,
        "occurred_at": "2026-01-29T10:00:00Z",
    }
    data.update(overrides)
    return data


def reading(event_id: str, **overrides: Any) -> dict[str, Any]:
    """An absolute reading (``value``) rather than an increment."""
    data = event(event_id, **overrides)
    del data["increment"]
    return data


# --- signatures ---------------------------------------------------------------------------------


def test_the_specifications_known_vector_verifies() -> None:
    assert spec_source().verify(SPEC_BODY, spec_headers(), [SPEC_SECRET], url=URL).ok


def test_an_independently_computed_signature_verifies() -> None:
    body = json.dumps(event()).encode()
    headers = spec_headers(**{"webhook-signature": signature(SECRET, SPEC_ID, SPEC_TIMESTAMP, body)})
    assert spec_source().verify(body, headers, [SECRET], url=URL).ok


def test_headers_are_read_case_insensitively() -> None:
    headers = {k.title(): v for k, v in spec_headers().items()}
    assert spec_source().verify(SPEC_BODY, headers, [SPEC_SECRET], url=URL).ok


def test_a_tampered_body_is_refused() -> None:
    verdict = spec_source().verify(b'{"test": 2432232315}', spec_headers(), [SPEC_SECRET], url=URL)
    assert not verdict.ok and "matches" in verdict.reason


def test_a_wrong_secret_is_refused() -> None:
    assert not spec_source().verify(SPEC_BODY, spec_headers(), [SECRET], url=URL).ok


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused_and_named(header: str) -> None:
    headers = spec_headers()
    del headers[header]
    verdict = spec_source().verify(SPEC_BODY, headers, [SPEC_SECRET], url=URL)
    assert not verdict.ok and verdict.reason == f"missing {header} header"


def test_a_timestamp_more_than_five_minutes_old_is_refused() -> None:
    verdict = spec_source(now=SPEC_TIMESTAMP + 301).verify(SPEC_BODY, spec_headers(), [SPEC_SECRET], url=URL)
    assert not verdict.ok and "301 seconds old" in verdict.reason


def test_a_timestamp_more_than_five_minutes_ahead_is_refused() -> None:
    verdict = spec_source(now=SPEC_TIMESTAMP - 301).verify(SPEC_BODY, spec_headers(), [SPEC_SECRET], url=URL)
    assert not verdict.ok and "in the future" in verdict.reason


def test_a_timestamp_within_five_minutes_either_way_is_accepted() -> None:
    for now in (SPEC_TIMESTAMP - 299, SPEC_TIMESTAMP + 299):
        assert spec_source(now=now).verify(SPEC_BODY, spec_headers(), [SPEC_SECRET], url=URL).ok


def test_a_timestamp_that_is_not_unix_seconds_is_refused() -> None:
    headers = spec_headers(**{"webhook-timestamp": "2021-02-25T15:02:10Z"})
    assert "unix seconds" in spec_source().verify(SPEC_BODY, headers, [SPEC_SECRET], url=URL).reason


def test_one_matching_signature_among_several_is_enough() -> None:
    # The sender rotates: old and new signatures, plus a v1a (asymmetric) entry we do not use.
    listed = " ".join([
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==",
        SPEC_SIGNATURE,
        "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
    ])
    assert spec_source().verify(SPEC_BODY, spec_headers(**{"webhook-signature": listed}), [SPEC_SECRET], url=URL).ok


def test_only_v1_entries_count() -> None:
    listed = SPEC_SIGNATURE.replace("v1,", "v1a,")
    verdict = spec_source().verify(SPEC_BODY, spec_headers(**{"webhook-signature": listed}), [SPEC_SECRET], url=URL)
    assert not verdict.ok and "no v1" in verdict.reason


def test_our_previous_secret_is_accepted_during_rotation_and_says_so() -> None:
    body = b'{"id":"evt_1"}'
    headers = spec_headers(**{"webhook-signature": signature(PREVIOUS, SPEC_ID, SPEC_TIMESTAMP, body)})
    verdict = spec_source().verify(body, headers, [SECRET, PREVIOUS], url=URL)
    assert verdict.ok and "previous" in verdict.reason
    assert not spec_source().verify(body, headers, [SECRET], url=URL).ok


def test_a_connection_without_a_readable_secret_refuses_everything() -> None:
    verdict = spec_source().verify(SPEC_BODY, spec_headers(), ["whsec_!!!not base64"], url=URL)
    assert not verdict.ok and "no whsec_" in verdict.reason


# --- events -------------------------------------------------------------------------------------


def test_a_batch_becomes_one_item_per_event_keyed_by_its_id() -> None:
    body = json.dumps({"events": [event("evt_1"), event("evt_2", increment=5)]}).encode()
    items = UsageSource().items(body, spec_headers())
    assert [i.delivery_key for i in items] == ["event:evt_1", "event:evt_2"]
    assert json.loads(items[1].body)["increment"] == 5
    assert items[0].webhook_id == SPEC_ID and "webhook-signature" not in (items[0].headers or {})


def test_a_single_event_is_one_item() -> None:
    [item] = UsageSource().items(json.dumps(event()).encode(), spec_headers())
    assert item.topic == "metric" and item.delivery_key == "event:evt_1"


def test_an_event_normalises_to_a_metric_change() -> None:
    source = UsageSource()
    [item] = source.items(json.dumps(event(occurred_at="2026-01-29T12:00:00+02:00")).encode(), spec_headers())
    [changed] = source.normalize(item.topic, json.loads(item.body))
    assert changed == MetricChanged(
        customer=CustomerRef(external_id="acct_42", email="ops@growthcorp.example", company_name="GrowthCorp"),
        metric="api_calls",
        occurred_at=changed.occurred_at,
        increment=Decimal(1200),
    )
    assert changed.occurred_at.isoformat() == "2026-01-29T10:00:00+00:00"


def test_absolute_values_flags_and_exact_decimals_survive_storage() -> None:
    source = UsageSource()
    events = [
        reading("evt_1", value=1000010),
        reading("evt_2", metric="feature.reports", value=True),
        event("evt_3", increment="123456789012345678.123456"),
    ]
    items = source.items(json.dumps({"events": events}).encode(), spec_headers())
    changes = [source.normalize(i.topic, json.loads(i.body))[0] for i in items]
    assert [(c.value, c.increment) for c in changes] == [
        (Decimal(1000010), None), (True, None), (None, Decimal("123456789012345678.123456"))]


def test_a_fractional_number_is_read_exactly() -> None:
    source = UsageSource()
    [item] = source.items(b'{"id":"evt_1","customer":{"email":"a@b.example"},"metric":"storage_gb",'
                          b'"value":0.1,"occurred_at":"2026-01-29T10:00:00Z"}', spec_headers())
    assert source.normalize(item.topic, json.loads(item.body))[0].value == Decimal("0.1")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (event(extra=1), "extra: Unknown field."),
        (event(customer={"name": "No id"}), "customer: needs an external_id or an email"),
        (event(customer={"email": "not-an-email"}), "customer.email: Not a valid email address."),
        (event(customer={"email": "a@b.example", "phone": "1"}), "customer.phone: Unknown field."),
        (event(value=5), "send exactly one of value"),
        (reading("evt_1"), "send exactly one of value"),
        (event(increment=True), "increment: must be a number"),
        (event(increment="12abc"), "increment: must be a number or a plain decimal"),
        (event(increment=0.1234567), "increment: has more than 6 decimal places"),
        (event(metric="API Calls"), "metric: must be lowercase words"),
        (event(metric="order_count"), "metric: is counted from orders"),
        (event(metric="feature.reports", increment=1), "a feature.<name> metric is a flag"),
        (event(occurred_at="2026-01-29T10:00:00"), "occurred_at: Not a valid aware datetime."),
        (event(occurred_at=None), "occurred_at: Field may not be null."),
        (event(id=""), "id: must be 1 to 200 characters without spaces"),
        (event(id="evt 1"), "id: must be 1 to 200 characters without spaces"),
        ({"events": []}, "events: must hold 1 to 1000 events"),
        ({"events": [event(), {"id": "evt_2"}]}, "events[1].customer: Missing data for required field."),
        ({"events": [event("evt_1"), event("evt_1")]}, "event id 'evt_1' appears twice"),
        ({"events": "evt_1"}, "events: Not a valid list."),
        ([event()], "body is not a JSON object"),
    ],
)
def test_a_malformed_event_is_refused_with_a_clear_reason(payload: Any, message: str) -> None:
    with pytest.raises(MalformedDelivery) as raised:
        UsageSource().items(json.dumps(payload).encode(), spec_headers())
    assert message in str(raised.value)


def test_a_body_that_is_not_json_has_nan_or_absurd_nesting_is_refused() -> None:
    for body in (b'{"id": ', b'{"id":"e","customer":{"email":"a@b.example"},"metric":"x","value":NaN,'
                             b'"occurred_at":"2026-01-29T10:00:00Z"}', b"[" * 100_000):
        with pytest.raises(MalformedDelivery, match="not valid JSON"):
            UsageSource().items(body, spec_headers())


# --- through the endpoint -----------------------------------------------------------------------


@pytest.fixture
def usage(app: Any, workspace: Any) -> Any:
    return add_connection(app, workspace.id, "usage", {"signing_secret": SECRET, "previous_signing_secret": PREVIOUS})


def post(client: Any, connection_id: Any, payload: Any, *, secret: str = SECRET, msg_id: str | None = None,
         timestamp: int | None = None, body: bytes | None = None) -> Any:
    body = json.dumps(payload).encode() if body is None else body
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
               "webhook-signature": signature(secret, msg_id, timestamp, body), "Content-Type": "application/json"}
    return client.post(f"/webhooks/usage/{connection_id}", data=body, headers=headers)


def inbox_keys(app: Any) -> list[str]:
    from sqlalchemy import select

    with services_of(app).sessions() as session:
        return list(session.execute(select(InboxDelivery.delivery_key).order_by(InboxDelivery.id)).scalars())


def test_a_batch_is_stored_as_one_inbox_row_per_event(app: Any, client: Any, usage: Any) -> None:
    response = post(client, usage.id, {"events": [event("evt_1"), event("evt_2"), event("evt_3")]})
    assert response.status_code == 200 and response.get_json()["status"] == "accepted"
    assert inbox_keys(app) == ["event:evt_1", "event:evt_2", "event:evt_3"]


def test_redelivered_events_are_ignored_and_new_ones_in_the_same_batch_kept(app: Any, client: Any, usage: Any) -> None:
    post(client, usage.id, {"events": [event("evt_1"), event("evt_2")]})
    again = post(client, usage.id, {"events": [event("evt_1"), event("evt_2")]})
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"
    mixed = post(client, usage.id, {"events": [event("evt_2"), event("evt_3")]})
    assert mixed.get_json()["status"] == "accepted"
    assert inbox_keys(app) == ["event:evt_1", "event:evt_2", "event:evt_3"]


def test_the_previous_secret_still_works_through_the_endpoint(app: Any, client: Any, usage: Any) -> None:
    assert post(client, usage.id, event(), secret=PREVIOUS).status_code == 200
    other = "whsec_" + base64.b64encode(b"somebody-elses-key-32-bytes-lon!").decode()
    assert post(client, usage.id, event("evt_2"), secret=other).status_code == 401


def test_bad_signature_stale_and_future_deliveries_are_401_and_store_nothing(app: Any, client: Any, usage: Any) -> None:
    wrong = "whsec_" + base64.b64encode(b"x" * 32).decode()
    assert post(client, usage.id, event(), secret=wrong).status_code == 401
    stale = post(client, usage.id, event(), timestamp=int(time.time()) - 600)
    assert stale.status_code == 401 and "seconds old" in stale.get_json()["error"]
    assert post(client, usage.id, event(), timestamp=int(time.time()) + 600).status_code == 401
    body = json.dumps(event()).encode()
    tampered = client.post(f"/webhooks/usage/{usage.id}", data=body.replace(b"1200", b"9999"), headers={
        "webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())),
        "webhook-signature": signature(SECRET, "msg_1", int(time.time()), body)})
    assert tampered.status_code == 401
    assert count(services_of(app), InboxDelivery) == 0


def test_a_malformed_event_is_400_with_its_reason_and_stores_nothing(app: Any, client: Any, usage: Any) -> None:
    response = post(client, usage.id, {"events": [event("evt_1"), event("evt_2", metric="Bad Name")]})
    assert response.status_code == 400
    assert response.get_json()["error"].startswith("events[1].metric: must be lowercase words")
    assert count(services_of(app), InboxDelivery) == 0


def test_an_unknown_connection_is_404(app: Any, client: Any, usage: Any) -> None:
    assert post(client, uuid.uuid4(), event()).status_code == 404
    assert post(client, "not-a-uuid", event()).status_code == 404


def test_a_usage_connection_needs_a_whsec_secret(app: Any, workspace: Any) -> None:
    for bad in ("plain-secret", "whsec_not*base64", "whsec_" + base64.b64encode(b"short").decode()):
        with pytest.raises(InvalidSettings) as raised:
            add_connection(app, workspace.id, "usage", {"signing_secret": bad})
        assert "signing_secret" in raised.value.errors
