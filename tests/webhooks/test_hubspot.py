"""HubSpot in: v3 and v1 signatures, one inbox row per event, events read into canonical ones.

Signatures: https://developers.hubspot.com/docs/apps/developer-platform/build-apps/authentication/request-validation
(v3), https://developers.hubspot.com/docs/faq/v1-request-validation (v1, with the worked example
used below). The v3 known-good vector is the one HubSpot's own Python client tests against
(HubSpot/hubspot-api-python, tests/spec/utils/test_signature.py, ``test_get_signature__v3``).
Payloads: https://developers.hubspot.com/docs/api/webhooks ("Webhook payloads") and, for the
generic ``object.*`` types, https://developers.hubspot.com/docs/apps/legacy-apps/public-apps/create-generic-webhook-subscriptions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient

from plugin.connections import InvalidSettings
from plugin.events import CustomerRedactRequested, CustomerRef, CustomerUpdated, MetricChanged
from plugin.models import InboxDelivery
from tests.conftest import add_connection, services_of
from tests.support import count
from tests.test_manifest import MANIFEST
from webhooks.base import MalformedDelivery
from webhooks.hubspot import TOPICS, HubSpotSource, signed_uri

# HubSpot's documented examples (v1 docs page; HubSpot's Python client for v3).
DOC_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
DOC_V1_BODY = (
    b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":'
    b'"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]'
)
DOC_V1_SIGNATURE = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
CLIENT_V3_BODY = b"{'example_field':'example_value'}"
CLIENT_V3_URL = "https://www.example.com/webhook_uri"
CLIENT_V3_TIMESTAMP = 15000000
CLIENT_V3_SIGNATURE = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="

SECRET = "hs-client-secret"
PREVIOUS = "hs-previous-secret"
URL = "https://milestones.test/webhooks/hubspot/1b8c1d8e-0000-4000-8000-000000000001"
NOW_MS = 1_769_680_800_000  # 2026-01-29T10:00:00Z
_event_ids = itertools.count(100)


def v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp: int | str) -> str:
    """Computed here from HubSpot's words, independently of webhooks.hubspot."""
    message = f"{method}{uri}".encode() + body + str(timestamp).encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def v3_headers(body: bytes, *, secret: str = SECRET, url: str = URL, timestamp: int = NOW_MS) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": v3_signature(secret, "POST", url, body, timestamp),
        "X-HubSpot-Request-Timestamp": str(timestamp),
    }


def v1_headers(body: bytes, *, secret: str = SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Signature": hashlib.sha256(secret.encode() + body).hexdigest(),
        "X-HubSpot-Signature-Version": "v1",
    }


def at(now_ms: int = NOW_MS) -> HubSpotSource:
    return HubSpotSource(clock=lambda: now_ms / 1000)


def change(object_id: int, name: str, value: Any, *, kind: str = "contact", occurred_ms: int = NOW_MS,
           event_id: int | None = None) -> dict[str, Any]:
    """A ``<kind>.propertyChange`` event as HubSpot sends it (values are strings)."""
    return {
        "eventId": event_id if event_id is not None else next(_event_ids), "subscriptionId": 2451, "portalId": 62515,
        "appId": 54321, "occurredAt": occurred_ms, "subscriptionType": f"{kind}.propertyChange", "attemptNumber": 0,
        "objectId": object_id, "propertyName": name, "propertyValue": value, "changeSource": "CRM_UI",
    }


def created(object_id: int, *, kind: str = "contact", occurred_ms: int = NOW_MS) -> dict[str, Any]:
    return {
        "eventId": next(_event_ids), "subscriptionId": 2450, "portalId": 62515, "appId": 54321,
        "occurredAt": occurred_ms, "subscriptionType": f"{kind}.creation", "attemptNumber": 0,
        "objectId": object_id, "changeFlag": "CREATED", "changeSource": "CRM_UI",
    }


def encode(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events, separators=(",", ":")).encode()


def post_events(client: FlaskClient, connection_id: Any, events: list[dict[str, Any]], *, secret: str = SECRET) -> Any:
    """A signed v3 delivery through the real endpoint, stamped now."""
    body = encode(events)
    url = f"https://milestones.test/webhooks/hubspot/{connection_id}"
    headers = v3_headers(body, secret=secret, url=url, timestamp=int(time.time() * 1000))
    return client.post(f"/webhooks/hubspot/{connection_id}", data=body, headers=headers)


# --- signatures ---------------------------------------------------------------------------------


def test_hubspots_own_v3_vector_verifies() -> None:
    headers = {"X-HubSpot-Signature-v3": CLIENT_V3_SIGNATURE, "X-HubSpot-Request-Timestamp": str(CLIENT_V3_TIMESTAMP)}
    assert v3_signature(DOC_SECRET, "POST", CLIENT_V3_URL, CLIENT_V3_BODY, CLIENT_V3_TIMESTAMP) == CLIENT_V3_SIGNATURE
    assert at(CLIENT_V3_TIMESTAMP).verify(CLIENT_V3_BODY, headers, [DOC_SECRET], url=CLIENT_V3_URL).ok


def test_the_documented_v1_example_verifies() -> None:
    headers = {"X-HubSpot-Signature": DOC_V1_SIGNATURE, "X-HubSpot-Signature-Version": "v1"}
    assert at().verify(DOC_V1_BODY, headers, [DOC_SECRET], url=URL).ok


def test_a_v3_signature_computed_independently_verifies() -> None:
    body = encode([change(123, "annualrevenue", "65000")])
    verdict = at().verify(body, v3_headers(body), [SECRET], url=URL)
    assert verdict.ok and verdict.reason == ""


@pytest.mark.parametrize("headers_of", [v3_headers, v1_headers], ids=["v3", "v1"])
def test_a_tampered_body_is_refused(headers_of: Any) -> None:
    body = encode([change(123, "annualrevenue", "65000")])
    headers = headers_of(body)
    tampered = body.replace(b"65000", b"95000")
    verdict = at().verify(tampered, headers, [SECRET], url=URL)
    assert not verdict.ok and "does not match" in verdict.reason


@pytest.mark.parametrize("headers_of", [v3_headers, v1_headers], ids=["v3", "v1"])
def test_a_wrong_secret_is_refused(headers_of: Any) -> None:
    body = encode([created(123)])
    assert not at().verify(body, headers_of(body, secret="someone-elses-secret"), [SECRET], url=URL).ok


def test_v3_signs_the_url_so_another_endpoint_is_refused() -> None:
    body = encode([created(123)])
    headers = v3_headers(body, url="https://milestones.test/webhooks/hubspot/another-connection")
    assert not at().verify(body, headers, [SECRET], url=URL).ok


@pytest.mark.parametrize("headers_of", [v3_headers, v1_headers], ids=["v3", "v1"])
def test_the_previous_secret_is_accepted_during_rotation(headers_of: Any) -> None:
    body = encode([created(123)])
    verdict = at().verify(body, headers_of(body, secret=PREVIOUS), [SECRET, PREVIOUS], url=URL)
    assert verdict.ok and verdict.reason == "signed with the previous client secret"


@pytest.mark.parametrize(
    ("drop", "reason"),
    [
        (("X-HubSpot-Signature-v3",), "missing X-HubSpot-Signature-v3 header"),
        (("X-HubSpot-Request-Timestamp",), "missing X-HubSpot-Request-Timestamp header"),
    ],
)
def test_a_missing_header_is_refused(drop: tuple[str, ...], reason: str) -> None:
    body = encode([created(123)])
    headers = {k: v for k, v in v3_headers(body).items() if k not in drop}
    verdict = at().verify(body, headers, [SECRET], url=URL)
    assert not verdict.ok and reason in verdict.reason


def test_v1_without_its_version_header_is_refused() -> None:
    body = encode([created(123)])
    headers = {k: v for k, v in v1_headers(body).items() if k != "X-HubSpot-Signature-Version"}
    verdict = at().verify(body, headers, [SECRET], url=URL)
    assert not verdict.ok and "X-HubSpot-Signature-Version" in verdict.reason


@pytest.mark.parametrize(
    ("offset_ms", "ok", "reason"),
    [
        (-(5 * 60 * 1000 + 1), False, "seconds old (more than 5 minutes)"),
        (5 * 60 * 1000 + 1, False, "in the future"),
        (-4 * 60 * 1000, True, ""),
        (4 * 60 * 1000, True, ""),
    ],
    ids=["stale", "future", "4-minutes-late", "4-minutes-early"],
)
def test_the_v3_timestamp_must_be_within_five_minutes(offset_ms: int, ok: bool, reason: str) -> None:
    body = encode([created(123)])
    headers = v3_headers(body, timestamp=NOW_MS + offset_ms)
    verdict = at().verify(body, headers, [SECRET], url=URL)
    assert verdict.ok is ok and reason in verdict.reason


def test_a_timestamp_in_seconds_or_text_is_refused() -> None:
    body = encode([created(123)])
    headers = v3_headers(body)
    headers["X-HubSpot-Request-Timestamp"] = "2026-01-29T10:00:00Z"
    assert "not epoch milliseconds" in at().verify(body, headers, [SECRET], url=URL).reason
    headers = v3_headers(body, timestamp=NOW_MS // 1000)  # seconds: decades in the past
    assert not at().verify(body, headers, [SECRET], url=URL).ok


def test_a_connection_without_a_client_secret_refuses_everything() -> None:
    body = encode([created(123)])
    verdict = at().verify(body, v3_headers(body), [], url=URL)
    assert not verdict.ok and "no client secret" in verdict.reason


def test_the_uri_is_signed_with_the_documented_escapes_decoded() -> None:
    url = "https://milestones.test/webhooks/hubspot/x?portal=62515&from=a%3Ab%2Fc%20d"
    assert signed_uri(url) == "https://milestones.test/webhooks/hubspot/x?portal=62515&from=a:b/c%20d"
    body = encode([created(123)])
    headers = v3_headers(body, url=signed_uri(url))
    assert at().verify(body, headers, [SECRET], url=url).ok


# --- splitting a delivery into inbox items -------------------------------------------------------


def test_each_event_of_a_batch_is_its_own_item_keyed_by_its_event_id() -> None:
    events = [created(123), change(123, "email", "ada@example.com"), change(77, "annualrevenue", "65000", kind="company")]
    items = at().items(encode(events), {})
    assert [i.topic for i in items] == ["contact.creation", "contact.propertyChange", "company.propertyChange"]
    assert len({i.delivery_key for i in items}) == 3
    assert items[1].delivery_key == f"contact.propertyChange:{events[1]['eventId']}:123:email"
    assert [json.loads(i.body) for i in items] == events
    assert items[1].webhook_id == "2451"


def test_a_retried_event_has_the_same_key_and_a_repeated_one_is_stored_once() -> None:
    event = change(123, "health_score", "87", event_id=5)
    retry = {**event, "attemptNumber": 1}
    first = at().items(encode([event]), {})
    again = at().items(encode([retry, retry]), {})
    assert [i.delivery_key for i in again] == [first[0].delivery_key]


def test_generic_object_events_are_read_by_their_object_type() -> None:
    event = {**change(123, "roi_achieved", "true"), "subscriptionType": "object.propertyChange", "objectTypeId": "0-1"}
    company = {**created(9), "subscriptionType": "object.creation", "objectTypeId": "0-2"}
    deal = {**created(5), "subscriptionType": "object.creation", "objectTypeId": "0-3"}
    assert [i.topic for i in at().items(encode([event, company, deal]), {})] == ["contact.propertyChange", "company.creation"]


def test_events_we_do_not_use_are_acknowledged_and_not_stored() -> None:
    events = [{**created(1), "subscriptionType": "deal.creation"}, {**created(2), "subscriptionType": "contact.deletion"}]
    assert at().items(encode(events), {}) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"eventId": 1}', "JSON array of events"),
        (b"[1, 2]", "JSON array of events"),
        (encode([{**created(1), "eventId": None}]), "[0].eventId is missing"),
        (encode([{**created(1), "occurredAt": "yesterday"}]), "[0].occurredAt"),
        (encode([{**created(1), "subscriptionType": None}]), "[0].subscriptionType is missing"),
    ],
)
def test_a_malformed_delivery_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(MalformedDelivery, match=message.replace("[", r"\[").replace("]", r"\]")):
        at().items(body, {})


# --- normalising --------------------------------------------------------------------------------


def normalize(event: dict[str, Any]) -> list[Any]:
    [item] = at().items(encode([event]), {})
    return at().normalize(item.topic, json.loads(item.body))


def test_a_new_contact_is_known_by_its_id() -> None:
    assert normalize(created(123)) == [CustomerUpdated(customer=CustomerRef(external_id="123"))]


def test_an_email_change_gives_the_contact_its_email() -> None:
    assert normalize(change(123, "email", " Ada@Example.com ")) == [
        CustomerUpdated(customer=CustomerRef(external_id="123", email="Ada@Example.com"))
    ]
    assert normalize(change(123, "email", "not an email")) == [CustomerUpdated(customer=CustomerRef(external_id="123"))]


def test_names_fill_the_profile_and_a_company_is_its_own_customer() -> None:
    assert normalize(change(123, "firstname", "Ada")) == [
        CustomerUpdated(customer=CustomerRef(external_id="123", first_name="Ada"))
    ]
    assert normalize(change(77, "name", "GrowthCorp", kind="company")) == [
        CustomerUpdated(customer=CustomerRef(external_id="company:77", company_name="GrowthCorp"))
    ]


def test_numbers_and_checkboxes_are_crm_readings_with_their_time() -> None:
    moment = datetime(2026, 1, 29, 10, 0, tzinfo=UTC)
    assert normalize(change(123, "api_calls_total", "1000000.5")) == [
        MetricChanged(customer=CustomerRef(external_id="123"), metric="crm.api_calls_total", occurred_at=moment,
                      value=Decimal("1000000.5"))
    ]
    [flag] = normalize(change(77, "roi_achieved", "true", kind="company"))
    assert isinstance(flag, MetricChanged) and flag.value is True and flag.customer.external_id == "company:77"
    [off] = normalize(change(123, "roi_achieved", "false"))
    assert isinstance(off, MetricChanged) and off.value is False


def test_text_properties_are_reported_as_they_are() -> None:
    assert normalize(change(123, "csm_email", "jane@acme.example")) == [
        CustomerUpdated(customer=CustomerRef(external_id="123"), properties={"crm.csm_email": "jane@acme.example"})
    ]


def test_a_cleared_property_says_nothing() -> None:
    assert normalize(change(123, "annualrevenue", "")) == []
    assert normalize(change(123, "annualrevenue", None)) == []


def test_a_privacy_deletion_asks_to_redact_the_contact() -> None:
    event = {**created(123), "subscriptionType": "contact.privacyDeletion"}
    assert normalize(event) == [CustomerRedactRequested(customer=CustomerRef(external_id="123"))]


def test_the_manifest_lists_the_topics_the_source_accepts() -> None:
    assert set(MANIFEST["webhooks"]["hubspot"]["topics"]) == set(TOPICS)


# --- through the endpoint -----------------------------------------------------------------------


@pytest.fixture
def crm(app: Any, workspace: Any) -> Any:
    return add_connection(app, workspace.id, "hubspot", {"access_token": "pat-test", "client_secret": SECRET,
                                                         "base_url": "https://hubspot.test"})


def test_a_signed_batch_is_stored_as_one_inbox_row_per_event_and_a_retry_as_none(app, client, crm) -> None:
    services = services_of(app)
    events = [created(501), change(501, "firstname", "Ada"), change(501, "health_score", "87")]
    response = post_events(client, crm.id, events)
    assert response.status_code == 200 and response.get_json()["status"] == "accepted"
    assert count(services, InboxDelivery) == 3
    retried = [{**e, "attemptNumber": 1} for e in events]
    assert post_events(client, crm.id, retried).get_json()["status"] == "duplicate"
    assert count(services, InboxDelivery) == 3


def test_a_v1_signed_delivery_is_accepted_through_the_endpoint(app, client, crm) -> None:
    body = encode([created(502)])
    response = client.post(f"/webhooks/hubspot/{crm.id}", data=body, headers=v1_headers(body))
    assert response.status_code == 200
    assert count(services_of(app), InboxDelivery) == 1


def test_a_bad_signature_is_401_and_stores_nothing(app, client, crm) -> None:
    response = post_events(client, crm.id, [created(503)], secret="not-the-secret")
    assert response.status_code == 401
    assert count(services_of(app), InboxDelivery) == 0


def test_a_malformed_body_is_400_and_an_unknown_connection_404(app, client, crm) -> None:
    body = b'{"eventId": 1}'
    url = f"https://milestones.test/webhooks/hubspot/{crm.id}"
    headers = v3_headers(body, url=url, timestamp=int(time.time() * 1000))
    assert client.post(f"/webhooks/hubspot/{crm.id}", data=body, headers=headers).status_code == 400
    assert post_events(client, uuid.uuid4(), [created(504)]).status_code == 404
    assert count(services_of(app), InboxDelivery) == 0


# --- the mapping setting ------------------------------------------------------------------------


def test_the_property_map_defaults_and_takes_the_admin_forms_text(app, workspace) -> None:
    default = add_connection(app, workspace.id, "hubspot", {"access_token": "t", "client_secret": "s"})
    assert default.settings["property_map"]["annualrevenue"] == "arr"
    assert default.settings["property_map"]["roi_achieved"] == "metric:roi_achieved"
    typed = add_connection(app, workspace.id, "hubspot", {
        "access_token": "t", "client_secret": "s",
        "property_map": "annualrevenue=arr, seats_used=metric:active_users\ncsm_email=owner_email",
        "owner_emails": "1234=Jane@Acme.example"})
    assert typed.settings["property_map"] == {"annualrevenue": "arr", "seats_used": "metric:active_users",
                                              "csm_email": "owner_email"}
    assert typed.settings["owner_emails"] == {"1234": "jane@acme.example"}


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ("annualrevenue=revenue", "is not one of"),
        ("orders=metric:order_count", "counted from orders"),
        ("x=metric:API Calls", "lowercase"),
        ("email=owner_email", "email always links"),
        ("annualrevenue", "is not property=target"),
    ],
)
def test_a_property_map_that_cannot_work_is_refused(app, workspace, mapping: str, message: str) -> None:
    with pytest.raises(InvalidSettings) as caught:
        add_connection(app, workspace.id, "hubspot", {"access_token": "t", "client_secret": "s", "property_map": mapping})
    assert message in str(caught.value.errors["property_map"])
