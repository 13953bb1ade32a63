"""HubSpot timeline notes through the CRM v3 objects API, faked with the docs' own shapes.

Request and answer shapes:
https://developers.hubspot.com/docs/api/crm/search (contacts/notes search, associations.{type})
https://developers.hubspot.com/docs/api/crm/contacts (create; GET by email with idProperty=email)
https://developers.hubspot.com/docs/api/crm/notes (create with hs_timestamp, hs_note_body, associations)
https://developers.hubspot.com/docs/api/crm/associations (note → contact is HUBSPOT_DEFINED 202)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from connectors.errors import ConnectorError
from connectors.hubspot import HubSpotConnector, HubSpotSettings, note_marker
from connectors.payloads import TimelineNote

BASE = "https://hubspot.test"
CONTACT_SEARCH = f"{BASE}/crm/v3/objects/contacts/search"
CONTACTS = f"{BASE}/crm/v3/objects/contacts"
NOTES = f"{BASE}/crm/v3/objects/notes"
NOTE_SEARCH = f"{BASE}/crm/v3/objects/notes/search"
BODY = "<p>🏆 10th order — 2026-11-21</p>"


def connector() -> HubSpotConnector:
    return HubSpotConnector({"access_token": "pat-na1-test", "client_secret": "app-secret", "base_url": BASE})


def timeline_note(**overrides: Any) -> TimelineNote:
    fields: dict[str, Any] = {
        "idempotency_key": "effect-42-note",
        "customer_email": "ada@example.com",
        "customer_first_name": "Ada",
        "customer_last_name": "Lovelace",
        "body_html": BODY,
        "occurred_at": datetime(2026, 11, 21, 15, 30, 12, 345678, tzinfo=UTC),
    }
    return TimelineNote(**{**fields, **overrides})


def sent(call: Any) -> dict[str, Any]:
    return json.loads(call.request.body)


def contact(contact_id: str, email: str = "ada@example.com") -> dict[str, Any]:
    return {
        "id": contact_id,
        "properties": {
            "createdate": "2026-11-21T15:30:13.011Z",
            "email": email,
            "hs_object_id": contact_id,
            "lastmodifieddate": "2026-11-21T15:30:13.011Z",
        },
        "createdAt": "2026-11-21T15:30:13.011Z",
        "updatedAt": "2026-11-21T15:30:13.011Z",
        "archived": False,
    }


def search_answer(*results: dict[str, Any]) -> dict[str, Any]:
    return {"total": len(results), "results": list(results)}


def note_object(note_id: str, body: str, timestamp: str = "2026-11-21T15:30:12.345Z") -> dict[str, Any]:
    return {
        "id": note_id,
        "properties": {
            "hs_createdate": "2026-11-21T15:30:14.200Z",
            "hs_lastmodifieddate": "2026-11-21T15:30:14.200Z",
            "hs_note_body": body,
            "hs_object_id": note_id,
            "hs_timestamp": timestamp,
        },
        "createdAt": "2026-11-21T15:30:14.200Z",
        "updatedAt": "2026-11-21T15:30:14.200Z",
        "archived": False,
    }


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def test_note_is_created_on_the_existing_contact(mocked: responses.RequestsMock) -> None:
    mocked.post(CONTACT_SEARCH, json=search_answer(contact("151")))
    mocked.post(NOTES, json=note_object("9876", BODY), status=201)

    result = connector().add_timeline_note(timeline_note())

    search, create = mocked.calls
    assert sent(search)["filterGroups"] == [
        {"filters": [{"propertyName": "email", "operator": "EQ", "value": "ada@example.com"}]}
    ]
    assert create.request.headers["Authorization"] == "Bearer pat-na1-test"
    body = sent(create)
    assert body["properties"]["hs_timestamp"] == "2026-11-21T15:30:12.345Z"
    assert body["properties"]["hs_note_body"].startswith(BODY)
    assert note_marker("effect-42-note") in body["properties"]["hs_note_body"]
    assert body["associations"] == [
        {"to": {"id": "151"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}]}
    ]
    assert result.external_id == "9876"
    assert result.detail == {"contact_id": "151"}


def test_the_marker_is_an_html_comment_a_reader_does_not_see() -> None:
    assert note_marker("effect-42-note") == "<!-- milestones:effect-42-note -->"
    assert "--" not in note_marker("a--b>c")[4:-3]


def test_absent_contact_is_created_then_noted(mocked: responses.RequestsMock) -> None:
    mocked.post(CONTACT_SEARCH, json=search_answer())
    mocked.post(CONTACTS, json=contact("512"), status=201)
    mocked.post(NOTES, json=note_object("9877", BODY), status=201)

    result = connector().add_timeline_note(timeline_note())

    _, create_contact, create_note = mocked.calls
    assert sent(create_contact) == {
        "properties": {"email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace"}
    }
    assert sent(create_note)["associations"][0]["to"] == {"id": "512"}
    assert result.detail == {"contact_id": "512"}


def test_a_contact_without_names_is_created_with_its_email_only(mocked: responses.RequestsMock) -> None:
    mocked.post(CONTACT_SEARCH, json=search_answer())
    mocked.post(CONTACTS, json=contact("513"), status=201)
    mocked.post(NOTES, json=note_object("9878", BODY), status=201)

    connector().add_timeline_note(timeline_note(customer_first_name=None, customer_last_name=None))

    assert sent(mocked.calls[1]) == {"properties": {"email": "ada@example.com"}}


def test_conflict_on_create_reads_the_winners_contact_by_email(mocked: responses.RequestsMock) -> None:
    email = "ada+shop@example.com"
    mocked.post(CONTACT_SEARCH, json=search_answer())
    mocked.post(
        CONTACTS,
        status=409,
        json={
            "status": "error",
            "message": "Contact already exists. Existing ID: 514",
            "correlationId": "7f1c7a3e-1b0a-4c39-9e1e-5b1d5d7d1c11",
            "category": "CONFLICT",
        },
    )
    mocked.get(f"{CONTACTS}/ada%2Bshop@example.com", json=contact("514", email))
    mocked.post(NOTES, json=note_object("9879", BODY), status=201)

    result = connector().add_timeline_note(timeline_note(customer_email=email))

    read = mocked.calls[2].request
    assert parse_qs(urlparse(str(read.url)).query) == {"idProperty": ["email"]}
    assert sent(mocked.calls[3])["associations"][0]["to"] == {"id": "514"}
    assert result.detail == {"contact_id": "514"}


@pytest.mark.parametrize(
    ("status", "category"),
    [(401, "INVALID_AUTHENTICATION"), (403, "MISSING_SCOPES"), (404, "OBJECT_NOT_FOUND")],
)
def test_auth_scope_and_not_found_errors_are_permanent(
    mocked: responses.RequestsMock, status: int, category: str
) -> None:
    mocked.post(
        CONTACT_SEARCH,
        status=status,
        json={"status": "error", "message": "refused", "correlationId": "c-1", "category": category},
    )

    with pytest.raises(ConnectorError) as caught:
        connector().add_timeline_note(timeline_note())

    assert caught.value.permanent is True
    assert caught.value.status == status
    assert category in caught.value.message


def test_429_is_transient_with_retry_after(mocked: responses.RequestsMock) -> None:
    # https://developers.hubspot.com/docs/api/usage-details (rate limit error body)
    mocked.post(
        CONTACT_SEARCH,
        status=429,
        headers={"Retry-After": "1"},
        json={
            "status": "error",
            "message": "You have reached your secondly limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": "c-2",
            "policyName": "SECONDLY",
        },
    )

    with pytest.raises(ConnectorError) as caught:
        connector().add_timeline_note(timeline_note())

    assert caught.value.permanent is False
    assert caught.value.retry_after == 1.0


def test_5xx_while_creating_the_note_is_transient(mocked: responses.RequestsMock) -> None:
    mocked.post(CONTACT_SEARCH, json=search_answer(contact("151")))
    mocked.post(NOTES, status=502, body="Bad Gateway")

    with pytest.raises(ConnectorError) as caught:
        connector().add_timeline_note(timeline_note())

    assert caught.value.permanent is False
    assert caught.value.status == 502


SINCE = datetime(2026, 11, 21, 15, 30, 0, tzinfo=UTC)


def test_reconcile_finds_the_note_by_its_marker(mocked: responses.RequestsMock) -> None:
    mocked.post(CONTACT_SEARCH, json=search_answer(contact("151")))
    mocked.post(
        NOTE_SEARCH,
        json=search_answer(
            note_object("9001", "<p>🏆 $500 spent</p>" + note_marker("effect-43-note")),
            note_object("9876", BODY + note_marker("effect-42-note")),
        ),
    )

    found = connector().find_timeline_note(timeline_note(), since=SINCE)

    assert found is not None and found.external_id == "9876"
    body = sent(mocked.calls[1])
    assert body["filterGroups"] == [
        {
            "filters": [
                {"propertyName": "associations.contact", "operator": "EQ", "value": "151"},
                # 15:28:00Z: since minus the two-minute skew allowance, in epoch milliseconds
                {"propertyName": "hs_createdate", "operator": "GTE", "value": "1795274880000"},
            ]
        }
    ]
    assert "hs_note_body" in body["properties"]


def test_reconcile_recognises_a_note_whose_marker_hubspot_stripped(mocked: responses.RequestsMock) -> None:
    mocked.post(CONTACT_SEARCH, json=search_answer(contact("151")))
    mocked.post(
        NOTE_SEARCH,
        json=search_answer(
            note_object("9001", "<p>🏆 $500 spent</p>"),  # same moment, another milestone
            note_object("9876", "<p>🏆 10th order &mdash; 2026-11-21</p>"),
        ),
    )

    found = connector().find_timeline_note(timeline_note(), since=SINCE)

    assert found is not None and found.external_id == "9876"


def test_reconcile_finds_nothing_when_no_note_is_ours(mocked: responses.RequestsMock) -> None:
    mocked.post(CONTACT_SEARCH, json=search_answer(contact("151")))
    mocked.post(
        NOTE_SEARCH,
        json=search_answer(
            note_object("9001", BODY + note_marker("effect-99-note")),  # same text, another effect's
            note_object("9002", BODY, timestamp="2026-11-21T15:31:00.000Z"),  # same text, other moment
        ),
    )

    assert connector().find_timeline_note(timeline_note(), since=SINCE) is None


def test_reconcile_without_a_contact_finds_nothing_and_creates_nothing(mocked: responses.RequestsMock) -> None:
    mocked.post(CONTACT_SEARCH, json=search_answer())

    assert connector().find_timeline_note(timeline_note(), since=SINCE) is None
    assert len(mocked.calls) == 1


def test_check_connection_makes_one_cheap_authenticated_read(mocked: responses.RequestsMock) -> None:
    mocked.get(CONTACTS, json={"results": [contact("151")], "paging": {"next": {"after": "152"}}})

    connector().check_connection()

    request = mocked.calls[0].request
    assert request.headers["Authorization"] == "Bearer pat-na1-test"
    assert parse_qs(urlparse(str(request.url)).query) == {"limit": ["1"]}


def test_default_host_is_hubspots_api(mocked: responses.RequestsMock) -> None:
    mocked.get("https://api.hubapi.com/crm/v3/objects/contacts", json={"results": []})

    HubSpotConnector({"access_token": "pat-na1-test", "client_secret": "s"}).check_connection()

    assert len(mocked.calls) == 1


def test_settings_mark_both_credentials_secret() -> None:
    assert HubSpotSettings.secret_fields() == {"access_token", "client_secret", "previous_client_secret"}
