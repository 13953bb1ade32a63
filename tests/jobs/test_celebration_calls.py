"""What the platforms receive when a milestone is celebrated: the HubSpot note and PRD-114's alert."""

from __future__ import annotations

import json

import responses

from tests.support import order, post_order

HUBSPOT = "https://hubspot.test"
SLACK = "https://slack.test/api"


def _fake_platforms(mock: responses.RequestsMock) -> None:
    # https://developers.hubspot.com/docs/api/crm/search — no contact yet
    mock.post(f"{HUBSPOT}/crm/v3/objects/contacts/search", json={"total": 0, "results": []})
    # https://developers.hubspot.com/docs/api/crm/contacts — create answers 201 with the object
    mock.post(f"{HUBSPOT}/crm/v3/objects/contacts", status=201, json={
        "id": "512", "properties": {"email": "alice@example.com"}, "createdAt": "2026-01-06T09:00:00Z",
        "updatedAt": "2026-01-06T09:00:00Z", "archived": False})
    # https://developers.hubspot.com/docs/api/crm/notes
    mock.post(f"{HUBSPOT}/crm/v3/objects/notes", status=201, json={
        "id": "9001", "properties": {"hs_timestamp": "2026-01-06T09:00:00Z"}, "createdAt": "2026-01-06T09:00:00Z",
        "updatedAt": "2026-01-06T09:00:00Z", "archived": False})
    # https://docs.slack.dev/reference/methods/chat.postMessage
    mock.post(f"{SLACK}/chat.postMessage", json={"ok": True, "channel": "C0CSM", "ts": "1767690000.000100",
                                                 "message": {"text": "..."}})


def test_the_first_order_puts_a_trophy_note_on_the_contact_and_alerts_the_csm(client, shop, hubspot, slack):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _fake_platforms(mock)
        assert post_order(client, order(1)).status_code == 200
        notes = [json.loads(c.request.body) for c in mock.calls
                 if c.request.url == f"{HUBSPOT}/crm/v3/objects/notes"]
        posts = [json.loads(c.request.body) for c in mock.calls if c.request.url == f"{SLACK}/chat.postMessage"]

    assert len(notes) == 1
    body = notes[0]["properties"]["hs_note_body"]
    assert "🏆" in body and "1st Order" in body and "2026-01-06" in body
    assert notes[0]["associations"][0]["to"]["id"] == "512"
    assert notes[0]["associations"][0]["types"][0]["associationTypeId"] == 202

    assert len(posts) == 1
    blocks = posts[0]["blocks"]
    text = json.dumps(blocks)
    assert blocks[0]["text"]["text"] == ":trophy: Customer Milestone: Alice Nguyen"
    assert "*Milestone Achieved:* 1st Order!" in text
    assert "Order count reached 1" in text
    assert "Jan 6, 2026" in text
    assert "Time to milestone: 1 month" in text
    actions = [b for b in blocks if b["type"] == "actions"][0]["elements"]
    assert [a["text"]["text"] for a in actions] == [
        "Send Celebration Email", "Request Social Permission", "Mark Celebrated"]
    assert posts[0]["channel"] == "C0CSM01"
