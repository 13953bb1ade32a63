"""Shopify webhook registration: found, never duplicated, and reported per topic.

A small fake shop answers the list query and the create mutation with the documented shapes:
https://shopify.dev/docs/api/admin-graphql/2025-07/queries/webhookSubscriptions
https://shopify.dev/docs/api/admin-graphql/2025-07/objects/WebhookSubscription
https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/webhookSubscriptionCreate
https://shopify.dev/docs/api/admin-graphql/2025-07/enums/WebhookSubscriptionTopic
https://shopify.dev/changelog/consolidate-webhook-graphql-surfaces (``uri`` from 2025-10)
https://shopify.dev/docs/api/webhooks?reference=graphql (compliance topics are app configuration)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from connectors.base import Capability
from connectors.errors import ConnectorError
from connectors.shopify import ShopifyConnector
from connectors.shopify_webhooks import (
    ALREADY_REGISTERED,
    APP_CONFIGURED,
    MISSING,
    REGISTERED,
    WEBHOOK_PATH,
    WRONG_ADDRESS,
    graphql_topic,
)

BASE = "https://shopify.test"
GRAPHQL = f"{BASE}/admin/api/2025-07/graphql.json"
PUBLIC_URL = "https://milestones.example.com"
OURS = f"{PUBLIC_URL}/webhooks/shopify"
DELIVERY_URL = OURS
ELSEWHERE = "https://old-host.example.com/webhooks/shopify"
MANIFEST = json.loads((Path(__file__).resolve().parents[2] / "plugin.json").read_text())
TOPICS: list[str] = MANIFEST["webhooks"]["shopify"]["topics"]
PRIVACY = ["customers/data_request", "customers/redact", "shop/redact"]


def connector(**settings: Any) -> ShopifyConnector:
    return ShopifyConnector(
        {
            "shop_domain": "growthcorp.myshopify.com",
            "access_token": "shpat_test_token",
            "api_secret": "webhook-secret",
            "base_url": BASE,
            **settings,
        }
    )


class FakeShop:
    """The shop's webhook subscriptions behind the Admin GraphQL endpoint."""

    def __init__(self, page_size: int = 100, uri: bool = False) -> None:
        self.subscriptions: list[dict[str, Any]] = []
        self.page_size = page_size
        self.uri = uri  # 2025-10 on: ``uri`` instead of ``endpoint { callbackUrl }``
        self.queries: list[dict[str, Any]] = []
        self.creates: list[dict[str, Any]] = []
        self.refuse: dict[str, list[dict[str, Any]]] = {}

    def subscribe(self, topic: str, address: str) -> None:
        node: dict[str, Any] = {
            "id": f"gid://shopify/WebhookSubscription/{len(self.subscriptions) + 1}",
            "topic": topic,
            "format": "JSON",
        }
        if self.uri:
            node["uri"] = address
        else:
            node["endpoint"] = {"__typename": "WebhookHttpEndpoint", "callbackUrl": address}
        self.subscriptions.append(node)

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body or b"{}")
        variables = body["variables"]
        if "webhookSubscriptionCreate(" in body["query"]:
            self.creates.append(body)
            topic = variables["topic"]
            if topic in self.refuse:
                answer = {"webhookSubscription": None, "userErrors": self.refuse[topic]}
            else:
                self.subscribe(topic, variables["webhookSubscription"]["uri" if self.uri else "callbackUrl"])
                answer = {"webhookSubscription": self.subscriptions[-1], "userErrors": []}
            return 200, {}, json.dumps({"data": {"webhookSubscriptionCreate": answer}})
        self.queries.append(body)
        start = int(variables["after"] or 0)
        page = self.subscriptions[start : start + self.page_size]
        more = start + self.page_size < len(self.subscriptions)
        return (
            200,
            {},
            json.dumps(
                {
                    "data": {
                        "webhookSubscriptions": {
                            "nodes": page,
                            "pageInfo": {
                                "hasNextPage": more,
                                "endCursor": str(start + self.page_size) if more else None,
                            },
                        }
                    }
                }
            ),
        )


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def shop(mocked: responses.RequestsMock) -> FakeShop:
    fake = FakeShop()
    mocked.add_callback(responses.POST, GRAPHQL, callback=fake)
    return fake


def test_the_webhook_path_is_the_manifests_shopify_endpoint() -> None:
    assert MANIFEST["webhooks"]["shopify"]["endpoint"] == WEBHOOK_PATH
    assert Capability.REGISTER_WEBHOOKS in ShopifyConnector.capabilities


@pytest.mark.parametrize(
    ("topic", "enum"),
    [
        ("orders/create", "ORDERS_CREATE"),
        ("orders/cancelled", "ORDERS_CANCELLED"),
        ("refunds/create", "REFUNDS_CREATE"),
        ("customers/update", "CUSTOMERS_UPDATE"),
        ("app/uninstalled", "APP_UNINSTALLED"),
        ("inventory_levels/update", "INVENTORY_LEVELS_UPDATE"),
    ],
)
def test_rest_topic_names_map_to_the_graphql_enum(topic: str, enum: str) -> None:
    assert graphql_topic(topic) == enum


def test_registering_on_a_fresh_shop_creates_every_api_topic(shop: FakeShop) -> None:
    result = connector().register_webhooks(DELIVERY_URL, TOPICS)

    api_topics = [t for t in TOPICS if t not in PRIVACY]
    assert result == {t: (APP_CONFIGURED if t in PRIVACY else REGISTERED) for t in TOPICS}
    assert [c["variables"] for c in shop.creates] == [
        {"topic": graphql_topic(t), "webhookSubscription": {"callbackUrl": OURS, "format": "JSON"}}
        for t in api_topics
    ]
    assert (
        "webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription)"
        in shop.creates[0]["query"]
    )
    assert shop.queries[0]["variables"] == {"after": None}


def test_the_privacy_topics_are_never_sent_to_the_api(shop: FakeShop) -> None:
    result = connector().register_webhooks(DELIVERY_URL, PRIVACY)

    assert result == dict.fromkeys(PRIVACY, APP_CONFIGURED)
    assert shop.creates == [] and shop.queries == []


def test_saving_twice_subscribes_each_topic_once(shop: FakeShop) -> None:
    connector().register_webhooks(DELIVERY_URL, TOPICS)
    creates_after_first = len(shop.creates)

    again = connector().register_webhooks(DELIVERY_URL + "/", TOPICS)

    assert len(shop.creates) == creates_after_first
    assert {t: v for t, v in again.items() if t not in PRIVACY} == {
        t: ALREADY_REGISTERED for t in TOPICS if t not in PRIVACY
    }
    assert len(shop.subscriptions) == len(TOPICS) - len(PRIVACY)


def test_an_existing_subscription_on_a_later_page_is_found(mocked: responses.RequestsMock) -> None:
    fake = FakeShop(page_size=2)
    mocked.add_callback(responses.POST, GRAPHQL, callback=fake)
    for topic in ("ORDERS_PAID", "PRODUCTS_UPDATE", "REFUNDS_CREATE", "ORDERS_CREATE"):
        fake.subscribe(topic, OURS)

    result = connector().register_webhooks(DELIVERY_URL, ["orders/create", "orders/paid"])

    assert result == {"orders/create": ALREADY_REGISTERED, "orders/paid": ALREADY_REGISTERED}
    assert fake.creates == []
    assert [q["variables"]["after"] for q in fake.queries] == [None, "2"]


def test_a_subscription_elsewhere_is_kept_and_ours_added_beside_it(shop: FakeShop) -> None:
    shop.subscribe("ORDERS_CREATE", ELSEWHERE)
    assert connector().webhook_status(DELIVERY_URL, ["orders/create"]) == {"orders/create": WRONG_ADDRESS}

    result = connector().register_webhooks(DELIVERY_URL, ["orders/create"])

    assert result == {"orders/create": REGISTERED}
    assert [s["endpoint"]["callbackUrl"] for s in shop.subscriptions] == [ELSEWHERE, OURS]
    assert connector().webhook_status(DELIVERY_URL, ["orders/create"]) == {"orders/create": REGISTERED}


def test_status_reports_each_topic(shop: FakeShop) -> None:
    shop.subscribe("ORDERS_CREATE", OURS)
    shop.subscribe("ORDERS_PAID", ELSEWHERE)

    status = connector().webhook_status(
        DELIVERY_URL, ["orders/create", "orders/paid", "refunds/create", "shop/redact"]
    )

    assert status == {
        "orders/create": REGISTERED,
        "orders/paid": WRONG_ADDRESS,
        "refunds/create": MISSING,
        "shop/redact": APP_CONFIGURED,
    }
    assert shop.creates == []


def test_a_concurrent_registration_counts_as_already_registered(shop: FakeShop) -> None:
    shop.refuse["ORDERS_CREATE"] = [
        {
            "field": ["webhookSubscription", "callbackUrl"],
            "message": "Address for this topic has already been taken",
        }
    ]

    assert connector().register_webhooks(DELIVERY_URL, ["orders/create"]) == {
        "orders/create": ALREADY_REGISTERED
    }


def test_a_refused_topic_is_reported_and_the_others_still_registered(shop: FakeShop) -> None:
    shop.refuse["ORDERS_PAID"] = [
        {"field": ["webhookSubscription", "callbackUrl"], "message": "Address is invalid"}
    ]

    result = connector().register_webhooks(DELIVERY_URL, ["orders/create", "orders/paid", "refunds/create"])

    assert result == {
        "orders/create": REGISTERED,
        "orders/paid": "error: Address is invalid",
        "refunds/create": REGISTERED,
    }


def test_a_topic_that_is_not_a_shopify_topic_is_reported_not_sent(shop: FakeShop) -> None:
    result = connector().register_webhooks(DELIVERY_URL, ["orders/create", "Orders.Create"])

    assert result["orders/create"] == REGISTERED
    assert result["Orders.Create"].startswith("error: not a Shopify webhook topic")
    assert [c["variables"]["topic"] for c in shop.creates] == ["ORDERS_CREATE"]


def test_from_2025_10_the_address_is_the_uri(mocked: responses.RequestsMock) -> None:
    fake = FakeShop(uri=True)
    mocked.add_callback(responses.POST, f"{BASE}/admin/api/2025-10/graphql.json", callback=fake)
    fake.subscribe("ORDERS_PAID", OURS)

    result = connector(api_version="2025-10").register_webhooks(DELIVERY_URL, ["orders/create", "orders/paid"])

    assert result == {"orders/create": REGISTERED, "orders/paid": ALREADY_REGISTERED}
    assert fake.creates[0]["variables"]["webhookSubscription"] == {"uri": OURS, "format": "JSON"}
    assert "nodes { id topic format uri }" in fake.queries[0]["query"]
    assert "endpoint" not in fake.creates[0]["query"]


def test_a_throttled_create_is_reported_for_its_topic(mocked: responses.RequestsMock) -> None:
    empty = {
        "data": {"webhookSubscriptions": {"nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}}
    }
    throttled = {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": {
            "cost": {
                "requestedQueryCost": 10,
                "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 0, "restoreRate": 100.0},
            }
        },
    }
    ok = {
        "data": {
            "webhookSubscriptionCreate": {
                "webhookSubscription": {
                    "id": "gid://shopify/WebhookSubscription/9",
                    "topic": "ORDERS_PAID",
                    "format": "JSON",
                    "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": OURS},
                },
                "userErrors": [],
            }
        }
    }
    for answer in (empty, throttled, ok):
        mocked.post(GRAPHQL, json=answer)

    result = connector().register_webhooks(DELIVERY_URL, ["orders/create", "orders/paid"])

    assert result["orders/create"].startswith("error: shopify: throttled")
    assert result["orders/paid"] == REGISTERED


@pytest.mark.parametrize("operation", ["register_webhooks", "webhook_status"])
@pytest.mark.parametrize(
    ("status", "body", "headers", "permanent", "retry_after"),
    [
        (
            401,
            {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"},
            {},
            True,
            None,
        ),
        (404, {"errors": "Not Found"}, {}, True, None),
        (429, {"errors": "Exceeded 2 calls per second"}, {"Retry-After": "2.0"}, False, 2.0),
        (502, {"errors": "Bad Gateway"}, {}, False, None),
    ],
)
def test_a_failed_listing_raises_and_creates_nothing(
    mocked: responses.RequestsMock,
    operation: str,
    status: int,
    body: dict[str, str],
    headers: dict[str, str],
    permanent: bool,
    retry_after: float | None,
) -> None:
    mocked.post(GRAPHQL, json=body, status=status, headers=headers)

    with pytest.raises(ConnectorError) as caught:
        getattr(connector(), operation)(DELIVERY_URL, ["orders/create"])

    assert (caught.value.status, caught.value.permanent, caught.value.retry_after) == (
        status,
        permanent,
        retry_after,
    )
    assert len(mocked.calls) == 1
