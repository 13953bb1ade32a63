"""HubSpot's CRM changes through the real pipeline: mapped properties, contacts linked to shoppers,
and PRD-114's alert routed to the account's CSM.

HubSpot events are signed v3 deliveries (see tests/webhooks/test_hubspot.py). HubSpot's CRM API
is faked with the shapes of https://developers.hubspot.com/docs/api/crm/search and
/crm/notes; Slack with those of https://docs.slack.dev/reference/methods/users.lookupByEmail,
/conversations.open, /chat.postMessage and /conversations.history.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from sqlalchemy import select

from connectors.payloads import MilestoneAlert
from connectors.slack import SlackConnector
from plugin.events import CustomerRef, CustomerUpdated, MetricChanged
from plugin.models import Customer, CustomerIdentity, CustomerMetric, Effect
from plugin.pipeline.crm_properties import PropertyMapping, translate
from tests.conftest import add_connection, services_of
from tests.pipeline.test_usage_flow import SECRET as USAGE_SECRET
from tests.pipeline.test_usage_flow import reading, send
from tests.support import count, metric, milestone_keys, order, post_order
from tests.webhooks.test_hubspot import NOW_MS, change, created, post_events

HUBSPOT = "https://hubspot.test"
SLACK = "https://slack.test/api"
ALICE = "alice@example.com"
JANE = "jane.csm@redhillfresh.example"
MOMENT = datetime(2026, 1, 29, 10, 0, tzinfo=UTC)
SECRET = "hs-client-secret"


@pytest.fixture
def crm(app: Any, workspace: Any) -> Any:
    return add_connection(app, workspace.id, "hubspot", {
        "access_token": "pat-test", "client_secret": SECRET, "base_url": HUBSPOT,
        "property_map": "annualrevenue=arr, health_score=health_score, hubspot_owner_id=owner_id, "
                        "csm_email=owner_email, customer_since=customer_since, api_calls_total=metric:api_calls, "
                        "roi_achieved=metric:roi_achieved",
        "owner_emails": f"31337={JANE}",
    })


@pytest.fixture
def hubspot_down() -> Iterator[responses.RequestsMock]:
    """HubSpot's API answering 503: CRM notes wait, so only the webhooks link contacts here."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, re.compile(f"{HUBSPOT}/.*"), status=503, body="unavailable")
        yield mock


def found_contact(mock: responses.RequestsMock, contact_id: str) -> None:
    # https://developers.hubspot.com/docs/api/crm/search (POST /crm/v3/objects/contacts/search)
    mock.post(f"{HUBSPOT}/crm/v3/objects/contacts/search", json={
        "total": 1, "results": [{"id": contact_id, "properties": {"email": ALICE, "hs_object_id": contact_id},
                                 "createdAt": "2025-11-02T10:00:00Z", "updatedAt": "2026-01-20T10:00:00Z",
                                 "archived": False}]})
    # https://developers.hubspot.com/docs/api/crm/notes (POST /crm/v3/objects/notes → 201)
    mock.post(f"{HUBSPOT}/crm/v3/objects/notes", status=201, json={"id": "90001", "properties": {}})


def customer(app: Any, email: str) -> Customer:
    with services_of(app).sessions() as session:
        return session.execute(select(Customer).where(Customer.email == email)).scalar_one()


def identities(app: Any, customer_id: Any) -> set[tuple[Any, str]]:
    with services_of(app).sessions() as session:
        rows = session.execute(
            select(CustomerIdentity.connection_id, CustomerIdentity.external_id).where(
                CustomerIdentity.customer_id == customer_id)
        ).all()
    return {(r.connection_id, r.external_id) for r in rows}


# --- the mapping, as a pure function ------------------------------------------------------------

MAPPING = PropertyMapping(
    targets={"annualrevenue": "arr", "health_score": "health_score", "hubspot_owner_id": "owner_id",
             "csm_email": "owner_email", "createdate": "customer_since", "api_calls_total": "metric:api_calls"},
    owner_emails={"31337": JANE},
)
CONTACT = CustomerRef(external_id="512")


def crm_reading(name: str, value: Any) -> MetricChanged:
    return MetricChanged(customer=CONTACT, metric=f"crm.{name}", occurred_at=MOMENT, value=value)


def test_a_property_mapped_to_a_metric_becomes_that_metric_at_the_same_time() -> None:
    assert translate(crm_reading("api_calls_total", Decimal(1_000_000)), MAPPING) == [
        MetricChanged(customer=CONTACT, metric="api_calls", occurred_at=MOMENT, value=Decimal(1_000_000))
    ]


@pytest.mark.parametrize(
    ("name", "value", "context"),
    [
        ("annualrevenue", Decimal("65000.456"), {"arr": Decimal("65000.46")}),
        ("health_score", Decimal("87"), {"health_score": 87}),
        ("hubspot_owner_id", Decimal("31337"), {"owner_email": JANE}),
        ("createdate", Decimal("1704067200000"), {"customer_since": datetime(2024, 1, 1, tzinfo=UTC)}),
    ],
)
def test_context_properties_become_customer_context(name: str, value: Decimal, context: dict[str, Any]) -> None:
    assert translate(crm_reading(name, value), MAPPING) == [CustomerUpdated(customer=CONTACT, **context)]


def test_text_properties_map_to_context_and_the_rest_is_dropped() -> None:
    event = CustomerUpdated(customer=CONTACT, properties={"crm.csm_email": "Jane.CSM@RedHillFresh.example",
                                                          "crm.createdate": "2024-01-01", "crm.nickname": "Al"})
    assert translate(event, MAPPING) == [
        CustomerUpdated(customer=CONTACT, owner_email=JANE, customer_since=datetime(2024, 1, 1, tzinfo=UTC))
    ]


@pytest.mark.parametrize(
    "event",
    [
        crm_reading("unmapped_property", Decimal(3)),
        crm_reading("hubspot_owner_id", Decimal(999)),  # an owner nobody mapped to an email
        crm_reading("annualrevenue", True),  # a flag is no amount
        crm_reading("annualrevenue", Decimal(-5)),
    ],
)
def test_what_the_mapping_cannot_use_is_dropped(event: MetricChanged) -> None:
    assert translate(event, MAPPING) == []


def test_events_that_are_not_crm_readings_pass_unchanged() -> None:
    usage = MetricChanged(customer=CONTACT, metric="api_calls", occurred_at=MOMENT, increment=Decimal(5))
    assert translate(usage, MAPPING) == [usage]


# --- mapped properties through the pipeline ------------------------------------------------------


def test_crm_properties_set_context_and_metrics_and_award_business_milestones(app, client, crm, hubspot_down) -> None:
    services = services_of(app)
    post_events(client, crm.id, [
        created(512),
        change(512, "email", ALICE),
        change(512, "firstname", "Alice"),
        change(512, "annualrevenue", "65000"),
        change(512, "health_score", "87"),
        change(512, "hubspot_owner_id", "31337"),
        change(512, "customer_since", "1704067200000"),
        change(512, "api_calls_total", "999999"),
    ])
    alice = customer(app, ALICE)
    assert (alice.first_name, alice.arr, alice.health_score, alice.owner_email) == ("Alice", Decimal("65000.00"), 87, JANE)
    assert alice.customer_since == datetime(2024, 1, 1, tzinfo=UTC)
    assert metric(services, ALICE, "api_calls") == 999_999
    assert milestone_keys(services, ALICE) == []

    post_events(client, crm.id, [change(512, "api_calls_total", "1000200", occurred_ms=NOW_MS + 60_000),
                                 change(512, "roi_achieved", "true", occurred_ms=NOW_MS + 60_000)])
    assert milestone_keys(services, ALICE) == [("api-calls-1m", 1), ("roi-achieved", 1)]
    assert count(services, Customer) == 1
    # A late, older reading never moves the counter back.
    post_events(client, crm.id, [change(512, "api_calls_total", "10", occurred_ms=NOW_MS - 60_000)])
    assert metric(services, ALICE, "api_calls") == 1_000_200


def test_a_company_is_a_customer_of_its_own_fed_by_its_properties(app, client, crm, hubspot_down) -> None:
    post_events(client, crm.id, [created(77, kind="company"), change(77, "name", "GrowthCorp", kind="company"),
                                 change(77, "annualrevenue", "120000", kind="company")])
    with services_of(app).sessions() as session:
        company = session.execute(select(Customer).where(Customer.company_name == "GrowthCorp")).scalar_one()
    assert company.arr == Decimal("120000.00") and company.email is None
    assert identities(app, company.id) == {(crm.id, "company:77")}


# --- linking contacts to shoppers --------------------------------------------------------------


def test_a_contact_known_by_id_merges_into_the_store_customer_when_its_email_arrives(
    app, client, shop, crm, hubspot_down
) -> None:
    services = services_of(app)
    for number in (1, 2):
        post_order(client, order(number))
    post_events(client, crm.id, [created(512), change(512, "health_score", "91"), change(512, "annualrevenue", "65000"),
                                 change(512, "api_calls_total", "12000"), change(512, "roi_achieved", "true"),
                                 change(512, "customer_since", "1704067200000")])
    assert count(services, Customer) == 2  # the contact stands alone until we know who it is
    assert milestone_keys(services) == [("order-1", 1), ("roi-achieved", 1)]

    post_events(client, crm.id, [change(512, "email", "Alice@Example.com")])

    assert count(services, Customer) == 1
    alice = customer(app, ALICE)
    assert (alice.health_score, alice.arr, alice.first_name) == (91, Decimal("65000.00"), "Alice")
    assert alice.customer_since == datetime(2024, 1, 1, tzinfo=UTC)
    assert alice.since_local is not None and alice.since_local.isoformat() == "2024-01-01"
    assert metric(services, ALICE, "order_count") == 2
    assert metric(services, ALICE, "api_calls") == 12_000
    assert metric(services, ALICE, "roi_achieved") == 1
    assert milestone_keys(services, ALICE) == [("order-1", 1), ("roi-achieved", 1)]
    assert identities(app, alice.id) == {(shop.id, "7001"), (crm.id, "512")}

    post_events(client, crm.id, [change(512, "health_score", "55")])
    assert customer(app, ALICE).health_score == 55 and count(services, Customer) == 1


def test_a_merge_keeps_the_store_customers_own_readings_and_milestones(app, client, shop, crm, workspace,
                                                                        hubspot_down) -> None:
    services = services_of(app)
    usage = add_connection(app, workspace.id, "usage", {"signing_secret": USAGE_SECRET})
    post_order(client, order(1))
    account = {"external_id": "acct_7", "email": ALICE}
    send(client, usage, reading("roi_achieved", True, 0, customer=account), reading("api_calls", 500, 0, customer=account))
    post_events(client, crm.id, [created(512), change(512, "roi_achieved", "true"), change(512, "api_calls_total", "42"),
                                 change(512, "health_score", "70")])
    assert [k for k, _ in milestone_keys(services)].count("roi-achieved") == 2

    post_events(client, crm.id, [change(512, "email", ALICE)])

    assert count(services, Customer) == 1
    assert milestone_keys(services, ALICE) == [("order-1", 1), ("roi-achieved", 1)]
    assert metric(services, ALICE, "api_calls") == 500  # both had it: the store customer's stays
    assert customer(app, ALICE).health_score == 70  # only the CRM knew it
    with services.sessions() as session:
        assert session.scalar(select(Effect).where(Effect.kind == "task").limit(1)) is not None


def test_a_contact_created_and_given_its_email_in_one_delivery_is_one_customer(app, client, shop, crm,
                                                                              hubspot_down) -> None:
    post_order(client, order(1))
    post_events(client, crm.id, [created(512), change(512, "email", ALICE), change(512, "health_score", "80")])
    services = services_of(app)
    assert count(services, Customer) == 1
    assert identities(app, customer(app, ALICE).id) == {(shop.id, "7001"), (crm.id, "512")}
    assert customer(app, ALICE).health_score == 80


def test_crm_events_first_then_store_orders_join_the_same_customer(app, client, shop, crm, hubspot_down) -> None:
    services = services_of(app)
    post_events(client, crm.id, [created(600), change(600, "health_score", "88")])
    post_events(client, crm.id, [change(600, "email", ALICE)])
    assert count(services, Customer) == 1

    for number in (1, 2, 3):
        post_order(client, order(number))

    assert count(services, Customer) == 1
    alice = customer(app, ALICE)
    assert alice.health_score == 88 and alice.first_name == "Alice"
    assert metric(services, ALICE, "order_count") == 3
    assert identities(app, alice.id) == {(crm.id, "600"), (shop.id, "7001")}


def test_a_crm_note_records_the_contact_so_later_crm_events_reach_the_shopper(app, client, shop, crm) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        found_contact(mock, "512")
        post_order(client, order(1))
    services = services_of(app)
    with services.sessions() as session:
        note = session.execute(select(Effect).where(Effect.kind == "crm_note")).scalar_one()
    assert note.status == "succeeded" and note.payload["result"]["contact_id"] == "512"

    with responses.RequestsMock(assert_all_requests_are_fired=False):
        post_events(client, crm.id, [change(512, "health_score", "77")])  # no email in sight

    assert count(services, Customer) == 1
    assert customer(app, ALICE).health_score == 77


def test_a_crm_note_merges_a_contact_first_known_by_its_id(app, client, shop, crm, hubspot_down) -> None:
    post_events(client, crm.id, [created(555), change(555, "health_score", "64")])
    hubspot_down.reset()
    found_contact(hubspot_down, "555")
    post_order(client, order(1))

    services = services_of(app)
    assert count(services, Customer) == 1
    alice = customer(app, ALICE)
    assert alice.health_score == 64
    assert identities(app, alice.id) == {(shop.id, "7001"), (crm.id, "555")}


# --- PRD-114's alert, routed to the account's CSM ---------------------------------------------

LOOKUP = f"{SLACK}/users.lookupByEmail"
POST_MESSAGE = f"{SLACK}/chat.postMessage"
OPEN = f"{SLACK}/conversations.open"
HISTORY = f"{SLACK}/conversations.history"
JANE_MEMBER = {"ok": True, "user": {"id": "W012A3CDE", "team_id": "T012AB3C4", "name": "jane", "deleted": False,
                                    "real_name": "Jane CSM", "profile": {"email": JANE}}}


def posted(channel: str) -> dict[str, Any]:
    """The documented chat.postMessage answer."""
    return {"ok": True, "channel": channel, "ts": "1503435956.000247",
            "message": {"text": "...", "bot_id": "B123ABC456", "type": "message", "subtype": "bot_message",
                        "ts": "1503435956.000247"}}


def slack_connection(app: Any, workspace: Any, routing: str | None) -> Any:
    settings = {"bot_token": "xoxb-test", "signing_secret": "slack-secret", "channel": "C0CSM01", "base_url": SLACK}
    if routing:
        settings["csm_routing"] = routing
    return add_connection(app, workspace.id, "slack", settings)


def reach_roi(client: Any, crm: Any, *owner_events: dict[str, Any]) -> None:
    """Alice's contact, her owner, then ROI achieved: PRD-114's business milestone and its alert."""
    post_events(client, crm.id, [created(512), change(512, "email", ALICE), *owner_events])
    post_events(client, crm.id, [change(512, "roi_achieved", "true", occurred_ms=NOW_MS + 1000)])


def alert_effect(app: Any) -> Effect:
    with services_of(app).sessions() as session:
        return session.execute(select(Effect).where(Effect.kind == "slack_alert")).scalar_one()


def sent_message(mock: responses.RequestsMock) -> dict[str, Any]:
    [call] = [c for c in mock.calls if c.request.url == POST_MESSAGE]
    return json.loads(call.request.body)


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "section"]


def test_the_alert_mentions_the_crm_owner_in_the_channel(app, client, crm, workspace) -> None:
    slack_connection(app, workspace, None)  # mention is the default
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        found_contact(mock, "512")
        mock.get(LOOKUP, json=JANE_MEMBER)
        mock.post(POST_MESSAGE, json=posted("C0CSM01"))
        reach_roi(client, crm, change(512, "hubspot_owner_id", "31337"))
        body = sent_message(mock)
        [lookup] = [c for c in mock.calls if c.request.url.startswith(LOOKUP)]
    assert parse_qs(urlparse(lookup.request.url).query) == {"email": [JANE]}
    assert body["channel"] == "C0CSM01"
    assert body["text"].endswith("(CSM: <@W012A3CDE>)")
    assert "*CSM:* <@W012A3CDE>" in texts(body["blocks"])
    effect = alert_effect(app)
    assert effect.status == "succeeded" and effect.payload["request"]["owner_email"] == JANE
    assert effect.payload["result"]["routed"] == "mention" and effect.payload["result"]["csm_user_id"] == "W012A3CDE"


def test_the_alert_goes_to_the_csm_as_a_dm_when_set_so(app, client, crm, workspace) -> None:
    slack_connection(app, workspace, "dm")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        found_contact(mock, "512")
        mock.get(LOOKUP, json=JANE_MEMBER)
        # https://docs.slack.dev/reference/methods/conversations.open
        mock.post(OPEN, json={"ok": True, "channel": {"id": "D069C7QFK"}})
        mock.post(POST_MESSAGE, json=posted("D069C7QFK"))
        reach_roi(client, crm, change(512, "csm_email", JANE.upper()))
        body = sent_message(mock)
        [opened] = [json.loads(c.request.body) for c in mock.calls if c.request.url == OPEN]
    assert opened == {"users": "W012A3CDE"}
    assert body["channel"] == "D069C7QFK" and "CSM:" not in body["text"]
    assert alert_effect(app).payload["result"]["routed"] == "dm"
    assert alert_effect(app).external_id == "D069C7QFK:1503435956.000247"


@pytest.mark.parametrize(
    ("lookup_answer", "why"),
    [
        ({"ok": False, "error": "users_not_found"}, f"no Slack member has the CRM owner's email {JANE}"),
        ({"ok": False, "error": "missing_scope", "needed": "users:read.email", "provided": "chat:write"},
         "users.lookupByEmail failed (slack users.lookupByEmail: missing_scope)"),
    ],
    ids=["nobody", "no-scope"],
)
def test_the_channel_gets_the_alert_when_the_csm_cannot_be_found(app, client, crm, workspace, lookup_answer, why) -> None:
    slack_connection(app, workspace, "dm")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        found_contact(mock, "512")
        mock.get(LOOKUP, json=lookup_answer)
        mock.post(POST_MESSAGE, json=posted("C0CSM01"))
        reach_roi(client, crm, change(512, "hubspot_owner_id", "31337"))
        body = sent_message(mock)
        assert not [c for c in mock.calls if c.request.url == OPEN]
    assert body["channel"] == "C0CSM01" and "<@" not in body["text"]
    result = alert_effect(app).payload["result"]
    assert result["routed"] == "channel" and why in result["fallback"]


def test_a_dm_that_cannot_be_opened_mentions_the_csm_in_the_channel(app, client, crm, workspace) -> None:
    slack_connection(app, workspace, "dm")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        found_contact(mock, "512")
        mock.get(LOOKUP, json=JANE_MEMBER)
        mock.post(OPEN, json={"ok": False, "error": "missing_scope", "needed": "im:write"})
        mock.post(POST_MESSAGE, json=posted("C0CSM01"))
        reach_roi(client, crm, change(512, "hubspot_owner_id", "31337"))
        body = sent_message(mock)
    assert body["channel"] == "C0CSM01" and "*CSM:* <@W012A3CDE>" in texts(body["blocks"])
    result = alert_effect(app).payload["result"]
    assert result["routed"] == "mention" and "could not open a DM" in result["fallback"]


def test_routing_to_the_channel_only_looks_nobody_up(app, client, crm, workspace) -> None:
    slack_connection(app, workspace, "channel")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        found_contact(mock, "512")
        mock.post(POST_MESSAGE, json=posted("C0CSM01"))
        reach_roi(client, crm, change(512, "hubspot_owner_id", "31337"))
        assert sent_message(mock)["channel"] == "C0CSM01"
        assert not [c for c in mock.calls if c.request.url.startswith(LOOKUP)]


def dm_alert() -> MilestoneAlert:
    return MilestoneAlert("effect-9-alert", "m-9", "Alice Nguyen", ALICE, "ROI Achieved", "ROI Achieved!",
                          "ROI achieved", MOMENT.date(), None, None, None, None, (), owner_email=JANE)


def history(*keys: str) -> dict[str, Any]:
    messages = [{"type": "message", "bot_id": "B123ABC456", "text": "…", "ts": f"1769680{n}.000100",
                 "metadata": {"event_type": "customer_milestone",
                              "event_payload": {"milestone_id": "m-9", "idempotency_key": key}}}
                for n, key in enumerate(keys, 100)]
    return {"ok": True, "messages": messages, "has_more": False, "pin_count": 0,
            "response_metadata": {"next_cursor": ""}}


def test_a_crashed_dm_alert_is_found_in_the_dm() -> None:
    connector = SlackConnector({"bot_token": "xoxb-test", "signing_secret": "s", "channel": "C0CSM01",
                                "csm_routing": "dm", "base_url": SLACK})
    with responses.RequestsMock() as mock:
        mock.get(LOOKUP, json=JANE_MEMBER)
        mock.post(OPEN, json={"ok": True, "channel": {"id": "D069C7QFK"}})
        mock.get(HISTORY, json=history("effect-9-alert"))
        found = connector.find_alert(dm_alert(), since=MOMENT - timedelta(minutes=5))
        channels = [parse_qs(urlparse(c.request.url).query)["channel"] for c in mock.calls if c.request.url.startswith(HISTORY)]
    assert found is not None and found.external_id == "D069C7QFK:1769680100.000100"
    assert channels == [["D069C7QFK"]]


def test_a_dm_alert_that_fell_back_is_found_in_the_channel() -> None:
    connector = SlackConnector({"bot_token": "xoxb-test", "signing_secret": "s", "channel": "C0CSM01",
                                "csm_routing": "dm", "base_url": SLACK})
    with responses.RequestsMock() as mock:
        mock.get(LOOKUP, json={"ok": False, "error": "users_not_found"})
        mock.get(HISTORY, json=history("effect-9-alert"))
        found = connector.find_alert(dm_alert(), since=MOMENT - timedelta(minutes=5))
    assert found is not None and found.external_id.startswith("C0CSM01:")


def test_a_busy_lookup_during_a_reconcile_is_retried_rather_than_guessed() -> None:
    from connectors.errors import ConnectorError

    connector = SlackConnector({"bot_token": "xoxb-test", "signing_secret": "s", "channel": "C0CSM01",
                                "csm_routing": "dm", "base_url": SLACK})
    with responses.RequestsMock() as mock:
        mock.get(LOOKUP, status=429, headers={"Retry-After": "20"}, json={"ok": False, "error": "ratelimited"})
        with pytest.raises(ConnectorError) as caught:
            connector.find_alert(dm_alert(), since=MOMENT)
    assert not caught.value.permanent


def test_metric_rows_belong_to_the_merged_customer_only(app, client, shop, crm, hubspot_down) -> None:
    post_order(client, order(1))
    post_events(client, crm.id, [created(512), change(512, "api_calls_total", "7")])
    post_events(client, crm.id, [change(512, "email", ALICE)])
    with services_of(app).sessions() as session:
        owners = set(session.execute(select(CustomerMetric.customer_id)).scalars())
    assert owners == {customer(app, ALICE).id}


def test_a_gdpr_deletion_in_hubspot_erases_the_contacts_personal_data(app, client, crm, hubspot_down) -> None:
    post_events(client, crm.id, [created(512), change(512, "email", ALICE), change(512, "firstname", "Alice"),
                                 change(512, "api_calls_total", "7")])
    alice_id = customer(app, ALICE).id
    post_events(client, crm.id, [{**created(512), "subscriptionType": "contact.privacyDeletion"}])
    with services_of(app).sessions() as session:
        erased = session.get(Customer, alice_id)
        assert erased is not None and (erased.email, erased.first_name) == (None, None)
    assert identities(app, alice_id) == set()
