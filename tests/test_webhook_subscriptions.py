"""Saving a store connection makes the platform deliver plugin.json's topics here, never twice."""

from __future__ import annotations

import json

import responses
from sqlalchemy import select

from plugin import webhook_subscriptions
from plugin.models import Connection
from tests.conftest import add_connection, services_of

WOO = "https://woo.test/wp-json/wc/v3/webhooks"


def _woo(app, workspace):
    return add_connection(app, workspace.id, "woocommerce", {
        "store_url": "https://woo.test", "consumer_key": "ck_1", "consumer_secret": "cs_1"})


def test_woocommerce_registration_creates_each_topic_for_this_connections_url(app, workspace):
    connection = _woo(app, workspace)
    services = services_of(app)
    topics = webhook_subscriptions.topics_for("woocommerce")
    expected_url = f"https://milestones.test/webhooks/woocommerce/{connection.id}"
    with responses.RequestsMock() as mock:
        # https://woocommerce.github.io/woocommerce-rest-api-docs/#list-all-webhooks
        mock.get(WOO, json=[], headers={"X-WP-TotalPages": "1"})
        # https://woocommerce.github.io/woocommerce-rest-api-docs/#create-a-webhook
        mock.post(WOO, status=201, json={"id": 142, "status": "active", "delivery_url": expected_url})
        status = webhook_subscriptions.register(services, connection.id)
        created = [json.loads(c.request.body) for c in mock.calls if c.request.method == "POST"]
    assert sorted(c["topic"] for c in created) == sorted(topics)
    assert {c["delivery_url"] for c in created} == {expected_url}
    secret = created[0]["secret"]
    assert len(secret) >= 32  # generated when the connection was saved
    assert set(status.values()) == {"created"}
    with services.sessions() as session:
        stored = session.execute(select(Connection).where(Connection.id == connection.id)).scalar_one()
        assert stored.webhook_status["address"] == expected_url
        assert stored.webhook_status["topics"] == status
        assert secret not in json.dumps(stored.settings)  # the secret lives encrypted, not in settings


def test_a_registration_error_is_recorded_on_the_connection(app, workspace):
    connection = _woo(app, workspace)
    with responses.RequestsMock() as mock:
        mock.get(WOO, status=401, json={"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources."})
        status = webhook_subscriptions.register(services_of(app), connection.id)
    assert all(v.startswith("error:") for v in status.values())
    with services_of(app).sessions() as session:
        assert "401" in (session.get(Connection, connection.id).last_error or "")


def test_platforms_without_registration_report_nothing_to_do(app, workspace, slack):
    assert webhook_subscriptions.register(services_of(app), slack.id) == {}
