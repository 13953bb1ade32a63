"""Bad input gets its status and writes nothing; good input is stored before the 200."""

from __future__ import annotations

import json

import pytest

from plugin.demo.shopify_payloads import order_payload, signed_delivery
from plugin.models import Customer, InboxDelivery, Order
from tests.conftest import make_settings, services_of
from tests.support import SHOP_DOMAIN, SHOP_SECRET, count, order, post_order


def _nothing_written(services):
    assert count(services, InboxDelivery) == 0
    assert count(services, Order) == 0
    assert count(services, Customer) == 0


def test_a_bad_signature_is_refused_with_401_and_writes_nothing(app, client, shop):
    response = post_order(client, order(1), secret="not-the-secret")
    assert response.status_code == 401
    assert "signature" in response.get_json()["error"]
    _nothing_written(services_of(app))


def test_a_tampered_body_is_refused_with_401(app, client, shop):
    body, headers = signed_delivery(order_payload(order(1)), topic="orders/paid", shop_domain=SHOP_DOMAIN,
                                    secret=SHOP_SECRET)
    response = client.post("/webhooks/shopify", data=body.replace(b"40.00", b"4000.00"), headers=headers)
    assert response.status_code == 401
    _nothing_written(services_of(app))


def test_an_unknown_shop_is_refused_with_404(app, client, shop):
    body, headers = signed_delivery(order_payload(order(1)), topic="orders/paid", shop_domain="other.myshopify.com",
                                    secret=SHOP_SECRET)
    response = client.post("/webhooks/shopify", data=body, headers=headers)
    assert response.status_code == 404
    _nothing_written(services_of(app))


def test_an_unknown_platform_is_404(app, client, shop):
    assert client.post("/webhooks/nosuch/123", data=b"{}").status_code == 404


def test_malformed_json_with_a_valid_signature_is_400(app, client, shop):
    body = b'{"id": 1, "total_price": '
    _, headers = signed_delivery({}, topic="orders/paid", shop_domain=SHOP_DOMAIN, secret=SHOP_SECRET)
    from webhooks.shopify import sign

    headers["X-Shopify-Hmac-Sha256"] = sign(body, SHOP_SECRET)
    response = client.post("/webhooks/shopify", data=body, headers=headers)
    assert response.status_code == 400
    assert "JSON" in response.get_json()["error"]
    _nothing_written(services_of(app))


def test_a_missing_shop_header_is_400(app, client, shop):
    body, headers = signed_delivery(order_payload(order(1)), topic="orders/paid", shop_domain=SHOP_DOMAIN,
                                    secret=SHOP_SECRET)
    del headers["X-Shopify-Shop-Domain"]
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 400
    _nothing_written(services_of(app))


def test_a_body_over_the_limit_is_413_and_writes_nothing(clean_database, shop_factory):
    from plugin.app import create_app

    app = create_app(make_settings(clean_database, max_webhook_bytes=2048))
    shop_factory(app)
    payload = order_payload(order(1))
    payload["note"] = "x" * 5000
    body, headers = signed_delivery(payload, topic="orders/paid", shop_domain=SHOP_DOMAIN, secret=SHOP_SECRET)
    response = app.test_client().post("/webhooks/shopify", data=body, headers=headers)
    assert response.status_code == 413
    assert count(services_of(app), InboxDelivery) == 0
    app.extensions["milestones"].close()


def test_a_duplicate_delivery_is_200_and_stored_once(app, client, shop):
    first = post_order(client, order(1), event_id="evt-1")
    second = post_order(client, order(1), event_id="evt-1")
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.get_json()["status"], second.get_json()["status"]) == ("accepted", "duplicate")
    assert count(services_of(app), InboxDelivery) == 1


def test_the_previous_secret_is_accepted_during_rotation(app, client, workspace):
    from tests.conftest import add_connection

    add_connection(app, workspace.id, "shopify", {
        "shop_domain": SHOP_DOMAIN, "access_token": "t", "api_secret": "new-secret",
        "previous_api_secret": SHOP_SECRET})
    assert post_order(client, order(1)).status_code == 200
    assert post_order(client, order(2), secret="new-secret").status_code == 200
    assert post_order(client, order(3), secret="older-secret").status_code == 401


def test_the_database_being_down_is_503_not_500(database_url, shop):
    from plugin.app import create_app

    down = create_app(make_settings("postgresql://postgres@127.0.0.1:1/nothing"))
    body, headers = signed_delivery(order_payload(order(1)), topic="orders/paid", shop_domain=SHOP_DOMAIN,
                                    secret=SHOP_SECRET)
    response = down.test_client().post("/webhooks/shopify", data=body, headers=headers)
    assert response.status_code == 503
    assert json.loads(response.data)["error"].startswith("temporarily unavailable")


@pytest.fixture
def shop_factory(workspace_factory):
    from tests.conftest import add_connection

    def make(app):
        ws = workspace_factory(app)
        return add_connection(app, ws.id, "shopify", {"shop_domain": SHOP_DOMAIN, "access_token": "t",
                                                      "api_secret": SHOP_SECRET})

    return make


@pytest.fixture
def workspace_factory():
    from plugin.db import transaction
    from plugin.workspaces import create_workspace

    def make(app):
        with transaction(services_of(app).sessions) as session:
            ws, _ = create_workspace(session, "Second")
        return ws

    return make
