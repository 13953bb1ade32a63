"""Connecting a Shopify store in a real browser against the demo's Shopify stand-in on loopback:
connect, test, re-register, see a webhook arrive; and the README's screenshot of the page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from connectors.shopify_webhooks import PRIVACY_TOPICS
from plugin.demo.standins import HUBSPOT, SHOPIFY, SLACK, StandInServer
from plugin.webhook_subscriptions import topics_for
from tests.conftest import add_connection
from tests.console.conftest import screenshot
from tests.support import SHOP_DOMAIN, SHOP_SECRET, order, post_order

# The compliance topics are declared with the app, not subscribed through the API.
SUBSCRIBED = len([topic for topic in topics_for("shopify") if topic not in PRIVACY_TOPICS])


@pytest.fixture
def standin() -> Iterator[StandInServer]:
    server = StandInServer().start()
    yield server
    server.stop()


def test_connect_shopify_test_it_and_re_register_its_webhooks(page: Any, app: Flask, workspace: Any,
                                                               standin: StandInServer) -> None:
    add_connection(app, workspace.id, "hubspot", {
        "access_token": "pat-na1-11aa", "client_secret": "hs-secret", "base_url": standin.base_url(HUBSPOT)},
        name="Red Hill Fresh CRM")
    add_connection(app, workspace.id, "slack", {
        "bot_token": "xoxb-1-2-3", "signing_secret": "slack-secret", "channel": "C0CSMCELEB",
        "base_url": standin.base_url(SLACK)}, name="#csm-celebrations")
    page.goto("/admin/connections/")
    assert page.inner_text("h1") == "Connections"

    page.click("#new-shopify > summary")
    page.fill("#new-shopify-name", "Red Hill Fresh")
    page.fill("#new-shopify-shop_domain", SHOP_DOMAIN)
    page.fill("#new-shopify-access_token", "shpat_4f1c0ffee")
    page.fill("#new-shopify-api_secret", SHOP_SECRET)
    page.click("#new-shopify details.advanced > summary")
    page.fill("#new-shopify-base_url", standin.base_url(SHOPIFY))
    page.click("#new-shopify button[type=submit]")

    flashes = page.inner_text(".flashes")
    assert "Red Hill Fresh is connected." in flashes
    assert f"{SUBSCRIBED} webhook topics registered with Shopify." in flashes
    shop = page.locator("#platform-shopify article.connection")
    assert shop.locator("h3").inner_text().startswith("Red Hill Fresh")
    assert shop.locator("input[readonly]").input_value() == "https://milestones.test/webhooks/shopify"
    assert "Not tested yet" in shop.locator(".last-test").inner_text()

    shop.get_by_role("button", name="Test connection").click()
    assert "connection OK — Shopify accepted the credentials." in page.inner_text(".flashes")
    shop = page.locator("#platform-shopify article.connection")
    assert re.match(r"OK\s+just now", shop.locator(".last-test").inner_text())

    shop.get_by_role("button", name="Re-register webhooks").click()
    assert f"{SUBSCRIBED} webhook topics registered with Shopify." in page.inner_text(".flashes")
    shop = page.locator("#platform-shopify article.connection")
    topics = {item.split()[0]: " ".join(item.split()[1:]) for item in shop.locator("ul.topics li").all_inner_texts()}
    assert topics["orders/paid"] == "already registered" and topics["app/uninstalled"] == "already registered"
    assert topics["shop/redact"] == "set in app config"
    created = [r for r in standin.standins.recorded(SHOPIFY) if "webhookSubscriptionCreate" in str(r.body)]
    assert len(created) == SUBSCRIBED  # subscribed once each: re-registering found them in place

    # An order arrives through the real webhook endpoint, signed with the secret typed above.
    assert post_order(app.test_client(), order(1)).status_code == 200
    for platform in ("hubspot", "slack"):
        page.locator(f"#platform-{platform} article.connection").get_by_role("button", name="Test connection").click()
        assert "connection OK" in page.inner_text(".flashes")
    page.reload()
    shop = page.locator("#platform-shopify article.connection")
    assert "just now" in shop.locator(".last-webhook").inner_text()
    assert page.locator(".last-test .badge-good").count() == 3
    assert "shpat_4f1c0ffee" not in page.content()
    # As tall as the page, so the sidebar runs the full length of the full-page screenshot.
    page.set_viewport_size({"width": 1360, "height": page.evaluate("document.documentElement.scrollHeight")})
    screenshot(page, "connections.png")
