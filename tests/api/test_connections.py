"""Connecting platforms through the API: secrets write-only, webhooks registered on save.

WooCommerce's REST API is faked with ``responses`` in the shapes of its documentation
(https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks, #list-all-coupons).
"""

from __future__ import annotations

import json

import responses
from sqlalchemy import select

from plugin import connections, webhook_subscriptions
from plugin.models import Connection, InboxDelivery
from plugin.secrets import MASK
from tests.api.support import AUTH, OTHER_AUTH
from tests.conftest import services_of
from tests.support import SHOP_DOMAIN, count, order, post_order

WOO = "https://woo.test"
WEBHOOKS = f"{WOO}/wp-json/wc/v3/webhooks"
COUPONS = f"{WOO}/wp-json/wc/v3/coupons"
WOO_SETTINGS = {"store_url": WOO, "consumer_key": "ck_live_1", "consumer_secret": "cs_live_1"}


def _stored_settings(app, connection_id):
    services = services_of(app)
    with services.sessions() as session:
        row = session.get(Connection, connection_id)
        return connections.view_of(row, services.secrets).settings


def _create_woo(client):
    with responses.RequestsMock() as mock:
        mock.get(WEBHOOKS, json=[], headers={"X-WP-TotalPages": "1"})
        mock.post(WEBHOOKS, status=201, json={"id": 142, "status": "active"})
        response = client.post("/api/connections", headers=AUTH,
                               json={"platform": "woocommerce", "name": "Woo shop", "settings": WOO_SETTINGS})
        created = [json.loads(c.request.body) for c in mock.calls if c.request.method == "POST"]
    return response, created


def test_saving_a_woocommerce_store_registers_its_webhooks_and_answers_masked(app, client, workspace):
    response, created = _create_woo(client)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    url = f"https://milestones.test/webhooks/woocommerce/{body['id']}"
    assert body["platform"] == "woocommerce" and body["name"] == "Woo shop" and body["status"] == "active"
    assert body["webhook_url"] == url
    assert body["settings"]["store_url"] == WOO
    assert body["settings"]["consumer_key"] == MASK and body["settings"]["consumer_secret"] == MASK
    assert body["settings"]["webhook_secret"] == MASK  # generated, sent to WooCommerce, never shown
    assert "ck_live_1" not in response.get_data(as_text=True)
    topics = webhook_subscriptions.topics_for("woocommerce")
    assert body["webhooks"] == {topic: "created" for topic in topics}
    assert sorted(c["topic"] for c in created) == sorted(topics) and {c["delivery_url"] for c in created} == {url}
    assert body["webhook_status"]["topics"] == body["webhooks"]


def test_a_masked_secret_sent_back_keeps_the_stored_one_and_a_new_one_replaces_it(app, client, workspace):
    created, _ = _create_woo(client)
    connection_id = created.get_json()["id"]
    stored_before = _stored_settings(app, connection_id)
    form = {**created.get_json()["settings"], "consumer_key": "ck_rotated"}  # the form: masks plus one change
    with responses.RequestsMock() as mock:
        mock.get(WEBHOOKS, json=[{"id": 142, "topic": t, "status": "active",
                                  "delivery_url": created.get_json()["webhook_url"]}
                                 for t in webhook_subscriptions.topics_for("woocommerce")],
                 headers={"X-WP-TotalPages": "1"})
        mock.put(f"{WEBHOOKS}/142", json={"id": 142, "status": "active"})
        response = client.patch(f"/api/connections/{connection_id}", json={"name": "Renamed", "settings": form},
                                headers=AUTH)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["name"] == "Renamed" and response.get_json()["settings"]["consumer_key"] == MASK
    stored = _stored_settings(app, connection_id)
    assert stored["consumer_key"] == "ck_rotated"
    assert stored["consumer_secret"] == "cs_live_1" == stored_before["consumer_secret"]
    assert stored["webhook_secret"] == stored_before["webhook_secret"]
    assert MASK not in json.dumps(stored)


def test_renaming_alone_makes_no_platform_call(app, client, workspace):
    created, _ = _create_woo(client)
    with responses.RequestsMock():  # any call would fail the test
        response = client.patch(f"/api/connections/{created.get_json()['id']}", json={"name": "Just a name"},
                                headers=AUTH)
    assert response.status_code == 200 and "webhooks" not in response.get_json()


def test_a_shopify_registration_failure_is_reported_and_the_connection_is_kept(app, client, workspace):
    settings = {"shop_domain": "new-shop.myshopify.com", "access_token": "shpat_x", "api_secret": "shpss_x",
                "base_url": "https://shop.test"}
    with responses.RequestsMock() as mock:
        mock.post("https://shop.test/admin/api/2025-07/graphql.json", status=401,
                  json={"errors": "[API] Invalid API key or access token"})
        response = client.post("/api/connections", json={"platform": "shopify", "name": "Shop", "settings": settings},
                               headers=AUTH)
    assert response.status_code == 201
    body = response.get_json()
    assert body["webhook_url"] == "https://milestones.test/webhooks/shopify"
    assert body["settings"]["shop_domain"] == "new-shop.myshopify.com" and body["settings"]["access_token"] == MASK
    assert any(v.startswith("error:") for v in body["webhooks"].values())
    assert "401" in body["last_error"]


def test_slack_gets_its_interactivity_url_and_no_registration(client, workspace):
    response = client.post("/api/connections", headers=AUTH, json={
        "platform": "slack", "name": "CSM Slack",
        "settings": {"bot_token": "xoxb-1", "signing_secret": "s3cret", "channel": "C0CSM01"}})
    body = response.get_json()
    assert response.status_code == 201
    assert body["webhook_url"] == f"https://milestones.test/slack/interactions/{body['id']}"
    assert "webhooks" not in body or body["webhooks"] is None
    settings = body["settings"]
    assert (settings["bot_token"], settings["signing_secret"], settings["channel"]) == (MASK, MASK, "C0CSM01")


def test_invalid_settings_are_400_per_field_and_nothing_is_stored(app, client, workspace):
    missing = client.post("/api/connections", headers=AUTH,
                          json={"platform": "shopify", "name": "Shop", "settings": {"shop_domain": "bad domain!"}})
    masked = client.post("/api/connections", headers=AUTH, json={
        "platform": "woocommerce", "name": "W", "settings": {**WOO_SETTINGS, "consumer_secret": MASK}})
    unknown = client.post("/api/connections", headers=AUTH,
                          json={"platform": "myspace", "name": "M", "settings": {}})
    assert missing.status_code == 400
    details = missing.get_json()["details"]["settings"]
    assert set(details) == {"shop_domain", "access_token", "api_secret"}
    assert masked.status_code == 400 and "mask" in masked.get_json()["details"]["settings"]["consumer_secret"][0]
    assert unknown.status_code == 400 and "platform" in unknown.get_json()["details"]
    assert count(services_of(app), Connection) == 0


def test_the_same_shop_cannot_be_connected_twice(client, shop):
    response = client.post("/api/connections", headers=AUTH, json={
        "platform": "shopify", "name": "Again",
        "settings": {"shop_domain": SHOP_DOMAIN.upper(), "access_token": "t", "api_secret": "s"}})
    assert response.status_code == 409 and "already connected" in response.get_json()["error"]


def test_test_connection_says_whether_the_credentials_work(client, workspace):
    connection_id = _create_woo(client)[0].get_json()["id"]
    with responses.RequestsMock() as mock:
        mock.get(COUPONS, json=[])
        good = client.post(f"/api/connections/{connection_id}/test", headers=AUTH)
        mock.replace(responses.GET, COUPONS, status=401,
                     json={"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources."})
        bad = client.post(f"/api/connections/{connection_id}/test", headers=AUTH)
    assert good.get_json() == {"ok": True}
    assert bad.get_json()["ok"] is False and "401" in bad.get_json()["error"]


def test_webhooks_can_be_checked_and_re_registered(client, workspace):
    connection_id = _create_woo(client)[0].get_json()["id"]
    topics = webhook_subscriptions.topics_for("woocommerce")
    with responses.RequestsMock() as mock:
        mock.get(WEBHOOKS, json=[], headers={"X-WP-TotalPages": "1"})
        checked = client.get(f"/api/connections/{connection_id}/webhooks", headers=AUTH)
        mock.post(WEBHOOKS, status=201, json={"id": 7, "status": "active"})
        again = client.post(f"/api/connections/{connection_id}/webhooks", headers=AUTH)
    assert checked.get_json()["topics"] == {t: "missing" for t in topics}
    assert again.get_json()["topics"] == {t: "created" for t in topics}
    assert again.get_json()["webhook_url"].endswith(f"/webhooks/woocommerce/{connection_id}")


def test_deleting_a_connection_stops_its_webhooks_and_keeps_what_referenced_it(app, client, shop, build):
    post_order(client, order(1))
    effect = build(lambda rows: rows.effect(rows.milestone(rows.customer("bo@example.com"), "order-25"),
                                            "store_credit", "pending", connection_id=shop.id))
    assert count(services_of(app), InboxDelivery) == 1
    response = client.delete(f"/api/connections/{shop.id}", headers=AUTH)
    assert response.status_code == 204 and response.get_data() == b""
    assert client.get(f"/api/connections/{shop.id}", headers=AUTH).status_code == 404
    assert client.get("/api/connections", headers=AUTH).get_json()["total"] == 0
    assert post_order(client, order(2)).status_code == 404  # the shop's webhooks no longer find it
    assert count(services_of(app), InboxDelivery) == 1
    effects = client.get("/api/effects?kind=store_credit", headers=AUTH).get_json()["items"]
    assert [(e["id"], e["connection_id"]) for e in effects] == [(effect.id, str(shop.id))]
    with services_of(app).sessions() as session:
        row = session.execute(select(Connection).where(Connection.id == shop.id)).scalar_one()
        assert (row.status, row.secrets, row.lookup_key) == ("disconnected", None, None)


def test_another_workspaces_connection_is_not_found_and_not_changed(app, client, shop, other_workspace):
    for method, path, body in [("GET", "", None), ("PATCH", "", {"name": "Mine now"}), ("DELETE", "", None),
                               ("POST", "/test", None), ("GET", "/webhooks", None), ("POST", "/webhooks", None)]:
        with responses.RequestsMock():
            response = client.open(f"/api/connections/{shop.id}{path}", method=method, json=body, headers=OTHER_AUTH)
        assert response.status_code == 404, (method, path)
        assert response.get_json()["error"] == f"no connection {shop.id}"
    assert client.get("/api/connections", headers=OTHER_AUTH).get_json()["total"] == 0
    mine = client.get(f"/api/connections/{shop.id}", headers=AUTH).get_json()
    assert (mine["name"], mine["status"]) == ("Shopify", "active")


def test_platforms_describe_each_settings_form(client, workspace):
    body = client.get("/api/platforms", headers=AUTH).get_json()
    by_name = {p["platform"]: p for p in body["items"]}
    assert body["total"] == len(by_name) >= 8
    shopify = {f["name"]: f for f in by_name["shopify"]["fields"]}
    assert shopify["access_token"]["secret"] is True and shopify["access_token"]["required"] is True
    assert shopify["shop_domain"]["label"] == "Shop domain" and shopify["shop_domain"]["secret"] is False
    assert shopify["api_version"]["default"] == "2025-07"
    assert by_name["shopify"]["registers_webhooks"] is True and by_name["slack"]["registers_webhooks"] is False
    assert {f["name"]: f["type"] for f in by_name["smtp"]["fields"]}["port"] == "integer"
