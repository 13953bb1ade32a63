"""Every platform of the issue at once: a WooCommerce store and a product's usage events feed one
workspace; milestones, the store-credit coupon and the celebration emails come out exactly once.

The scenario runs once per email connector (Klaviyo, SMTP against a local aiosmtpd server, HubSpot
transactional single-send). Deliveries are signed and go through the real endpoints, duplicates
and status changes included: WooCommerce order webhooks
(https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks) and Standard Webhooks usage
events. Third-party APIs are faked with their documented shapes: WooCommerce's create-a-coupon
(https://woocommerce.github.io/woocommerce-rest-api-docs/#create-a-coupon), Klaviyo's Create Event
(https://developers.klaviyo.com/en/reference/create_event, 202), HubSpot's single-send
(https://developers.hubspot.com/docs/api-reference/marketing-transactional-single-send-v3/single-send/post-marketing-v3-transactional-single-email-send)
and CRM search/notes (https://developers.hubspot.com/docs/api/crm/search).
"""

from __future__ import annotations

import email.utils
import itertools
import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import responses
from aiosmtpd.controller import Controller
from sqlalchemy import select

from connectors.woocommerce import credit_code
from plugin.models import Customer, CustomerMilestone, Effect, MilestoneDefinition
from tests.conftest import add_connection, services_of
from tests.pipeline.test_emails_flow import Inbox, add_email_to
from tests.pipeline.test_woocommerce_flow import SECRET as WOO_SECRET
from tests.pipeline.test_woocommerce_flow import post as post_woo
from tests.support import count, metric, milestone_keys
from webhooks.usage import sign as sign_usage

STORE_API = "https://woo.test/wp-json/wc/v3"
KLAVIYO_EVENTS = "https://klaviyo.test/api/events"
HUBSPOT = "https://hubspot.test"
SINGLE_SEND = f"{HUBSPOT}/marketing/v3/transactional/single-email/send"
USAGE_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Shopper:
    woo_id: int
    email: str
    first_name: str
    last_name: str
    account: str  # the product's id for the same person


ALICE = Shopper(7001, "alice@example.com", "Alice", "Nguyen", "acct_alice")
BOB = Shopper(7002, "bob@example.com", "Bob", "Okafor", "acct_bob")

EXPECTED_MILESTONES = {
    ALICE.email: [("api-calls-1m", 1), ("order-1", 1), ("order-10", 1), ("order-25", 1), ("spend-500", 1)],
    BOB.email: [("feature-adoption", 1), ("order-1", 1), ("users-100", 1)],
}
# Every milestone whose recognition includes an email (order-25's is added by the test, so the
# coupon's code has an email to go to).
EXPECTED_EMAILS = sorted(
    [(ALICE.email, key) for key in ("api-calls-1m", "order-1", "order-10", "order-25", "spend-500")]
    + [(BOB.email, key) for key in ("feature-adoption", "order-1", "users-100")]
)


# --- the two streams ----------------------------------------------------------------------------


def _gmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def woo_order(shopper: Shopper, number: int, status: str, total: str, *, modified: int) -> dict[str, Any]:
    """A REST v3 order resource as ``order.*`` webhooks deliver it."""
    order_id = shopper.woo_id * 100 + number
    placed = T0 + timedelta(days=number, hours=shopper.woo_id - 7000)
    changed = placed + timedelta(minutes=modified)
    paid = status in ("processing", "completed")
    return {
        "id": order_id, "parent_id": 0, "number": str(order_id), "status": status, "currency": "USD",
        "date_created": _gmt(placed), "date_created_gmt": _gmt(placed),
        "date_modified": _gmt(changed), "date_modified_gmt": _gmt(changed),
        "total": total, "customer_id": shopper.woo_id,
        "billing": {"first_name": shopper.first_name, "last_name": shopper.last_name, "company": "",
                    "email": shopper.email},
        "date_paid_gmt": _gmt(placed) if paid else None,
        "line_items": [{"id": order_id * 10, "name": "Seasonal veg box", "product_id": 93, "variation_id": 0,
                        "quantity": 1, "subtotal": total, "total": total, "sku": "", "price": float(total)}],
        "refunds": [],
    }


def place(client: Any, store: Any, shopper: Shopper, number: int, total: str) -> None:
    """One order's life: created unpaid, paid (delivered twice, as WooCommerce re-sends), and
    every fifth one completed later — a status change that must not count it again."""
    assert post_woo(client, store.id, woo_order(shopper, number, "pending", total, modified=0), "order.created").status_code == 200
    paid = woo_order(shopper, number, "processing", total, modified=2)
    assert post_woo(client, store.id, paid).get_json()["status"] == "accepted"
    assert post_woo(client, store.id, paid).get_json()["status"] == "duplicate"
    if number % 5 == 0:
        completed = woo_order(shopper, number, "completed", total, modified=60)
        assert post_woo(client, store.id, completed).status_code == 200


_message_ids = itertools.count(1)


def usage_event(event_id: str, shopper: Shopper, metric_name: str, minute: int, *, value: Any = None,
                increment: Any = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": event_id, "customer": {"external_id": shopper.account, "email": shopper.email},
        "metric": metric_name, "occurred_at": (T0 + timedelta(days=30, minutes=minute)).isoformat(),
    }
    event.update({"value": value} if increment is None else {"increment": increment})
    return event


def report(client: Any, usage: Any, *events: dict[str, Any]) -> str:
    """A Standard Webhooks delivery of usage events; the endpoint's answer status."""
    body = json.dumps({"events": list(events)}).encode()
    msg_id, stamp = f"msg_{next(_message_ids)}_{uuid.uuid4().hex[:6]}", int(time.time())
    response = client.post(f"/webhooks/usage/{usage.id}", data=body, headers={
        "webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": sign_usage(msg_id, stamp, body, USAGE_SECRET)})
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["status"])


def run_streams(client: Any, store: Any, usage: Any) -> None:
    """Both streams, interleaved, for the same two people."""
    report(client, usage, usage_event("alice-api-0", ALICE, "api_calls", 0, value=999_000),
           usage_event("bob-users-0", BOB, "active_users", 0, value=60))
    for number in range(1, 27):
        place(client, store, ALICE, number, "25.00")  # $500 spent at the 20th order
        if number <= 3:
            place(client, store, BOB, number, "10.00")
        if number == 12:
            features = [usage_event(f"bob-{name}", BOB, f"feature.{name}", 5, value=True)
                        for name in ("dashboards", "reports", "integrations", "alerts")]
            assert report(client, usage, *features) == "accepted"
            assert report(client, usage, *features) == "duplicate"  # the sender retried
        if number == 18:
            crossing = usage_event("alice-api-1", ALICE, "api_calls", 10, increment=1_500)
            assert report(client, usage, crossing) == "accepted"
            assert report(client, usage, crossing) == "duplicate"
            report(client, usage, usage_event("bob-users-1", BOB, "active_users", 10, value=100))
    cancelled = woo_order(BOB, 3, "cancelled", "10.00", modified=90)  # Bob's third order falls through
    assert post_woo(client, store.id, cancelled).status_code == 200
    report(client, usage, usage_event("alice-api-2", ALICE, "api_calls", 20, increment=10))


# --- the email connectors under test --------------------------------------------------------------


@dataclass
class Sent:
    to: str
    milestone: str
    text: str


@dataclass
class EmailConnector:
    platform: str
    delivered: Callable[[], list[Sent]]


def _klaviyo(app: Any, workspace: Any, api: responses.RequestsMock) -> EmailConnector:
    add_connection(app, workspace.id, "klaviyo", {"api_key": "pk_test", "base_url": "https://klaviyo.test"})
    api.post(KLAVIYO_EVENTS, status=202, body="")

    def delivered() -> list[Sent]:
        events = [json.loads(c.request.body)["data"]["attributes"] for c in api.calls if c.request.url == KLAVIYO_EVENTS]
        return [Sent(e["profile"]["data"]["attributes"]["email"], e["properties"]["milestone_key"],
                     e["properties"]["message_text"]) for e in events]

    return EmailConnector("klaviyo", delivered)


def _hubspot(app: Any, workspace: Any, api: responses.RequestsMock) -> EmailConnector:
    add_connection(app, workspace.id, "hubspot", {"access_token": "pat-test", "client_secret": "hs-secret",
                                                  "base_url": HUBSPOT, "email_templates": "*=4000"})
    api.post(SINGLE_SEND, json={"status": "PENDING", "statusId": "status-1", "requestedAt": "2026-02-01T09:00:00Z"})

    def contact_of(request: Any) -> tuple[int, dict[str, str], str]:
        wanted = json.loads(request.body)["filterGroups"][0]["filters"][0]["value"]
        contact_id = {ALICE.email: "512", BOB.email: "513"}[wanted]
        return 200, {}, json.dumps({"total": 1, "results": [{"id": contact_id, "properties": {"email": wanted}}]})

    # The CRM side of the same connection: each milestone's timeline note.
    api.add_callback(responses.POST, f"{HUBSPOT}/crm/v3/objects/contacts/search", callback=contact_of,
                     content_type="application/json")
    api.post(f"{HUBSPOT}/crm/v3/objects/notes", status=201, json={"id": "90001", "properties": {}})

    def delivered() -> list[Sent]:
        sends = [json.loads(c.request.body) for c in api.calls if c.request.url == SINGLE_SEND]
        return [Sent(s["message"]["to"], s["customProperties"]["milestone_key"], s["customProperties"]["message_text"])
                for s in sends]

    return EmailConnector("hubspot", delivered)


def _smtp(app: Any, workspace: Any, api: responses.RequestsMock, server: tuple[Inbox, int]) -> EmailConnector:
    inbox, port = server
    add_connection(app, workspace.id, "smtp", {"host": "127.0.0.1", "port": port, "starttls": False,
                                               "from_address": "Red Hill Fresh <hello@redhillfresh.test>"})

    def delivered() -> list[Sent]:
        with services_of(app).sessions() as session:
            key_of = dict(session.execute(
                select(Effect.external_id, MilestoneDefinition.key)
                .join(CustomerMilestone, CustomerMilestone.id == Effect.milestone_id)
                .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
                .where(Effect.kind == "email", Effect.external_id.is_not(None))
            ).tuples().all())
        return [
            Sent(email.utils.parseaddr(str(m["To"]))[1], key_of.get(str(m["Message-ID"]), "?"),
                 m.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
            for m in inbox.messages
        ]

    return EmailConnector("smtp", delivered)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    """The store's REST API, and whatever the email connector under test adds; any other call fails
    the effect that made it (and so the assertions on effect statuses)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(f"{STORE_API}/coupons", status=201, json={
            "id": 719, "code": "placeholder", "amount": "10.00", "discount_type": "fixed_cart",
            "date_expires": None, "date_expires_gmt": None, "usage_limit": 1, "usage_limit_per_user": 1,
            "individual_use": False, "email_restrictions": [ALICE.email], "used_by": [], "meta_data": []})
        yield mock


@pytest.fixture(params=["klaviyo", "smtp", "hubspot"])
def email_connector(request: pytest.FixtureRequest, app: Any, workspace: Any, api: responses.RequestsMock) -> EmailConnector:
    if request.param == "klaviyo":
        return _klaviyo(app, workspace, api)
    if request.param == "hubspot":
        return _hubspot(app, workspace, api)
    return _smtp(app, workspace, api, request.getfixturevalue("smtp_server"))


# --- the test -------------------------------------------------------------------------------------


def test_orders_and_usage_award_each_milestone_once_one_coupon_and_one_email_per_milestone(
    app: Any, client: Any, workspace: Any, api: responses.RequestsMock, email_connector: EmailConnector
) -> None:
    services = services_of(app)
    store = add_connection(app, workspace.id, "woocommerce", {
        "store_url": "https://red-hill-fresh.example", "consumer_key": "ck_test", "consumer_secret": "cs_test",
        "webhook_secret": WOO_SECRET, "base_url": "https://woo.test"})
    usage = add_connection(app, workspace.id, "usage", {"signing_secret": USAGE_SECRET})
    add_email_to(app, "order-25", "order-thank-you")

    run_streams(client, store, usage)

    # One customer per person, whichever stream named them first.
    assert count(services, Customer) == 2
    assert metric(services, ALICE.email, "order_count") == 26
    assert metric(services, ALICE.email, "lifetime_spend") == Decimal("650.00")
    assert metric(services, ALICE.email, "api_calls") == 1_000_510
    assert metric(services, BOB.email, "order_count") == 2
    assert metric(services, BOB.email, "active_users") == 100

    # The right milestones, once each.
    for shopper, expected in EXPECTED_MILESTONES.items():
        assert milestone_keys(services, shopper) == expected

    # The order-25 credit: one WooCommerce coupon, restricted to Alice.
    coupons = [json.loads(c.request.body) for c in api.calls
               if c.request.method == "POST" and c.request.url == f"{STORE_API}/coupons"]
    assert len(coupons) == 1
    [coupon] = coupons
    assert (coupon["amount"], coupon["discount_type"], coupon["email_restrictions"]) == ("10.00", "fixed_cart", [ALICE.email])
    with services.sessions() as session:
        credit = session.execute(select(Effect).where(Effect.kind == "store_credit")).scalar_one()
        emails = session.execute(select(Effect).where(Effect.kind == "email")).scalars().all()
    assert credit.status == "succeeded" and coupon["code"] == credit_code(credit.payload["request"]["idempotency_key"])

    # Exactly one email per milestone that has an email recognition, through the connector under test.
    assert sorted(e.status for e in emails) == ["succeeded"] * len(EXPECTED_EMAILS)
    sent = email_connector.delivered()
    assert sorted((s.to, s.milestone) for s in sent) == EXPECTED_EMAILS
    [thanks] = [s for s in sent if s.milestone == "order-25"]
    assert coupon["code"] in thanks.text  # the email quotes the coupon actually issued
