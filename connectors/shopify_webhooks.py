"""Shopify webhook subscriptions: register the topics we listen to, once, and report their state.

Subscriptions made through the Admin API belong to the shop and to our app; listing them shows
only ours. Registration lists what exists first and creates only what is missing, so saving a
connection twice never subscribes a topic twice (Shopify would deliver every event twice).

The address field changed name in 2025-10: ``callbackUrl`` (input) and ``endpoint { … on
WebhookHttpEndpoint { callbackUrl } }`` (object) before, ``uri`` on both from then on
(https://shopify.dev/changelog/consolidate-webhook-graphql-surfaces). The documents below follow
the connection's API version.

The mandatory privacy topics (``customers/data_request``, ``customers/redact``, ``shop/redact``)
cannot be subscribed through the API at all: they are declared once for the app, as
``compliance_topics`` in ``shopify.app.toml`` or in the Partner Dashboard
(https://shopify.dev/docs/api/webhooks?reference=graphql, "You can make app-specific subscriptions
to all non-compliance topics …"; https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance).
Registration skips them and reports them as :data:`APP_CONFIGURED`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from connectors.errors import ConnectorError

# Where our app receives every Shopify topic; plugin.json's webhooks.shopify.endpoint.
WEBHOOK_PATH = "/webhooks/shopify"
URI_SINCE_VERSION = "2025-10"
PRIVACY_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
_TOPIC = re.compile(r"^[a-z_]+/[a-z_]+$")

REGISTERED = "registered"
ALREADY_REGISTERED = "already registered"
MISSING = "missing"
WRONG_ADDRESS = "wrong address"
APP_CONFIGURED = "configured with the app (compliance topic)"

GraphQL = Callable[[str, dict[str, Any] | None], dict[str, Any]]

# https://shopify.dev/docs/api/admin-graphql/2025-07/queries/webhookSubscriptions
# https://shopify.dev/docs/api/admin-graphql/2025-07/objects/WebhookSubscription
# Unfiltered on purpose: a ``topics`` filter holding one value the version's enum lacks fails
# the whole query, and an app has few subscriptions per shop.
_LIST = """
query webhookSubscriptions($after: String) {
  webhookSubscriptions(first: 100, after: $after) {
    nodes { %s }
    pageInfo { hasNextPage endCursor }
  }
}
"""

# https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/webhookSubscriptionCreate
# https://shopify.dev/docs/api/admin-graphql/2025-07/payloads/WebhookSubscriptionCreatePayload
_CREATE = """
mutation webhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { %s }
    userErrors { field message }
  }
}
"""

_NODE_BEFORE_URI = "id topic format endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } }"
_NODE_WITH_URI = "id topic format uri"


@dataclass(frozen=True)
class Subscription:
    id: str
    topic: str  # the GraphQL enum, ORDERS_CREATE
    address: str | None  # None for Pub/Sub and EventBridge endpoints before 2025-10


def graphql_topic(topic: str) -> str:
    """The ``WebhookSubscriptionTopic`` value of a REST topic name: ``orders/create`` → ``ORDERS_CREATE``.

    https://shopify.dev/docs/api/admin-graphql/2025-07/enums/WebhookSubscriptionTopic
    """
    if not _TOPIC.match(topic):
        raise ValueError(f"not a Shopify webhook topic: {topic!r}")
    return topic.replace("/", "_").upper()


def callback_url(delivery_url: str) -> str:
    """The address Shopify delivers to (``MILESTONES_PUBLIC_URL`` + :data:`WEBHOOK_PATH`)."""
    return delivery_url.rstrip("/")


def _uses_uri(api_version: str) -> bool:
    return api_version >= URI_SINCE_VERSION  # "unstable" sorts after every date too


def _node_fields(api_version: str) -> str:
    return _NODE_WITH_URI if _uses_uri(api_version) else _NODE_BEFORE_URI


def _address(node: dict[str, Any]) -> str | None:
    if "uri" in node:
        return node["uri"]
    return (node.get("endpoint") or {}).get("callbackUrl")


def same_address(a: str | None, b: str) -> bool:
    if a is None:
        return False
    left, right = urlsplit(a), urlsplit(b)
    return (left.scheme.lower(), left.netloc.lower(), left.path.rstrip("/"), left.query) == (
        right.scheme.lower(),
        right.netloc.lower(),
        right.path.rstrip("/"),
        right.query,
    )


def list_subscriptions(graphql: GraphQL, api_version: str) -> list[Subscription]:
    """Every subscription of ours in the shop, following every page."""
    found: list[Subscription] = []
    query = _LIST % _node_fields(api_version)
    after: str | None = None
    while True:
        data = graphql(query, {"after": after})
        page = data.get("webhookSubscriptions")
        if page is None:
            raise ConnectorError("shopify: webhookSubscriptions returned nothing")
        found.extend(Subscription(n["id"], n["topic"], _address(n)) for n in page.get("nodes") or [])
        info = page.get("pageInfo") or {}
        if not info.get("hasNextPage") or not info.get("endCursor"):
            return found
        after = info["endCursor"]


def _plan(topics: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Topics we can subscribe (REST name → GraphQL enum), and the answers already known."""
    wanted: dict[str, str] = {}
    known: dict[str, str] = {}
    for topic in dict.fromkeys(topics):
        if topic in PRIVACY_TOPICS:
            known[topic] = APP_CONFIGURED
            continue
        try:
            wanted[topic] = graphql_topic(topic)
        except ValueError as exc:
            known[topic] = f"error: {exc}"
    return wanted, known


def webhook_status(
    graphql: GraphQL, api_version: str, delivery_url: str, topics: list[str]
) -> dict[str, str]:
    """Per topic: :data:`REGISTERED`, :data:`MISSING`, or :data:`WRONG_ADDRESS` (subscribed, but
    delivered somewhere else than ``delivery_url``)."""
    wanted, result = _plan(topics)
    address = callback_url(delivery_url)
    existing = list_subscriptions(graphql, api_version) if wanted else []
    for topic, enum in wanted.items():
        ours = [s for s in existing if s.topic == enum]
        if any(same_address(s.address, address) for s in ours):
            result[topic] = REGISTERED
        else:
            result[topic] = WRONG_ADDRESS if ours else MISSING
    return {topic: result[topic] for topic in dict.fromkeys(topics)}


def register_webhooks(
    graphql: GraphQL, api_version: str, delivery_url: str, topics: list[str]
) -> dict[str, str]:
    """Subscribe every topic not yet delivered to our address; per topic :data:`REGISTERED`,
    :data:`ALREADY_REGISTERED`, :data:`APP_CONFIGURED` or ``"error: …"``.

    A subscription of the same topic to another address is left alone (it may be another
    deployment of the same app); ours is added beside it. A failure to list raises; a failure
    to create one topic is reported for that topic and the others still go ahead.
    """
    wanted, result = _plan(topics)
    address = callback_url(delivery_url)
    existing = list_subscriptions(graphql, api_version) if wanted else []
    mutation = _CREATE % _node_fields(api_version)
    field = "uri" if _uses_uri(api_version) else "callbackUrl"
    for topic, enum in wanted.items():
        if any(s.topic == enum and same_address(s.address, address) for s in existing):
            result[topic] = ALREADY_REGISTERED
            continue
        variables = {"topic": enum, "webhookSubscription": {field: address, "format": "JSON"}}
        try:
            payload = graphql(mutation, variables).get("webhookSubscriptionCreate") or {}
        except ConnectorError as exc:
            result[topic] = f"error: {exc.message}"
            continue
        errors = payload.get("userErrors") or []
        if errors and all("already been taken" in str(e.get("message")).lower() for e in errors):
            result[topic] = ALREADY_REGISTERED  # created by a concurrent save since we listed
        elif errors:
            result[topic] = "error: " + "; ".join(str(e.get("message")) for e in errors)
        elif not payload.get("webhookSubscription"):
            result[topic] = "error: webhookSubscriptionCreate returned no subscription"
        else:
            result[topic] = REGISTERED
    return {topic: result[topic] for topic in dict.fromkeys(topics)}
