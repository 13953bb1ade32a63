"""The demo's stand-ins answer the real connectors in the shapes they parse, reconcile lookups included."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from connectors.hubspot import HubSpotConnector
from connectors.payloads import (
    CustomerTag,
    DiscountCode,
    EmailMessage,
    MilestoneAlert,
    Money,
    StoreCredit,
    TimelineNote,
)
from connectors.shopify import ShopifyConnector
from connectors.slack import SlackConnector
from plugin.demo.standins import HUBSPOT, SHOPIFY, SLACK, SLACK_CHANNEL_ID, StandInServer

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def server() -> Iterator[StandInServer]:
    running = StandInServer().start()
    yield running
    running.stop()


def shopify(server: StandInServer) -> ShopifyConnector:
    return ShopifyConnector({"shop_domain": "red-hill-fresh.myshopify.com", "access_token": "shpat_x", "api_secret": "s",
                             "base_url": server.base_url(SHOPIFY)})


def test_store_credit_is_applied_and_found_again_after_a_crash(server: StandInServer) -> None:
    credit = StoreCredit("key-1", "7400000000001", Money(Decimal("10.00"), "USD"), "25th Order (25)")
    applied = shopify(server).apply_store_credit(credit)
    assert applied.external_id and applied.detail["balance"] == "10.00"
    found = shopify(server).find_store_credit(credit, NOW - timedelta(minutes=1))
    assert found is not None and found.external_id == applied.external_id


def test_tags_and_discount_codes_go_to_shopify(server: StandInServer) -> None:
    tagged = shopify(server).add_customer_tag(CustomerTag("key-2", "7400000000002", None, ("VIP",)))
    assert tagged.external_id == "gid://shopify/Customer/7400000000002"
    discount = DiscountCode("key-3", "7400000000002", None, "YEAR1-ABC123", "1 Year Anniversary — thank you", NOW,
                            NOW + timedelta(days=7), percentage=Decimal("20"))
    created = shopify(server).create_discount_code(discount)
    assert created.detail["code"] == "YEAR1-ABC123"
    again = shopify(server).create_discount_code(discount)  # "Code must be unique": the earlier one is ours
    assert again.external_id == created.external_id and again.detail.get("reconciled")


def test_a_hubspot_note_lands_on_a_new_contact_and_is_found_again(server: StandInServer) -> None:
    hubspot = HubSpotConnector({"access_token": "pat", "client_secret": "c", "base_url": server.base_url(HUBSPOT),
                                "email_templates": {"*": 1}})
    note = TimelineNote("key-4", "ruby.chen@example.com", "Ruby", "Chen", "<p>🏆 <strong>10th Order</strong></p>", NOW)
    created = hubspot.add_timeline_note(note)
    assert hubspot.find_contact("ruby.chen@example.com") == created.detail["contact_id"]
    found = hubspot.find_timeline_note(note, NOW - timedelta(minutes=1))
    assert found is not None and found.external_id == created.external_id
    sent = hubspot.send_email(EmailMessage("key-5", "ruby.chen@example.com", "Ruby Chen", "order-10-thank-you",
                                           "Ruby, this is your 10th order!", "<p>Hi</p>", "Hi"))
    assert sent.detail["send_result"] == "SENT"


def test_a_slack_alert_is_posted_and_found_again(server: StandInServer) -> None:
    slack = SlackConnector({"bot_token": "xoxb", "signing_secret": "s", "channel": SLACK_CHANNEL_ID,
                            "base_url": server.base_url(SLACK)})
    alert = MilestoneAlert("key-6", "m-1", "Ruby Chen", "ruby.chen@example.com", "10th Order", "10th Order!",
                           "Order count reached 10", date.today(), "3 months", date.today(), None, None, ())
    posted = slack.post_alert(alert)
    found = slack.find_alert(alert, NOW - timedelta(minutes=1))
    assert found is not None and found.external_id == posted.external_id
    assert server.standins.recorded(SLACK, "/chat.postMessage")[-1].body["blocks"][0]["type"] == "header"
