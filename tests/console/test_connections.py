"""The Connections page: a card per platform, connecting with the schema's form, saving with
secrets kept behind their mask, testing, re-registering webhooks and disconnecting.

Shopify is the demo's stand-in on loopback (its GraphQL answers in the documented shapes) or,
for refusals, ``responses`` with Shopify's documented 401 body.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from plugin import connections as connection_cache
from plugin.demo.standins import SHOPIFY, StandInServer
from plugin.models import Connection, InboxDelivery
from plugin.secrets import MASK
from plugin.webhook_subscriptions import topics_for
from tests.conftest import add_connection, services_of
from tests.console.conftest import post_form

PAGE = "/admin/connections/"
SHOP = "red-hill-fresh.myshopify.com"


@pytest.fixture
def standin() -> Iterator[StandInServer]:
    server = StandInServer().start()
    yield server
    server.stop()


def shopify_form(standin: StandInServer, **changes: str) -> dict[str, str]:
    return {
        "name": "Red Hill Fresh", "setting-shop_domain": SHOP, "setting-access_token": "shpat_live_123",
        "setting-api_secret": "shpss_live_456", "setting-api_version": "2025-07",
        "setting-base_url": standin.base_url(SHOPIFY), **changes,
    }


def post(console: FlaskClient, path: str, data: dict[str, str] | None = None) -> Any:
    return post_form(console, path, data, from_page=PAGE)


def stored(app: Flask, connection_id: Any) -> tuple[Connection, dict[str, Any]]:
    services = services_of(app)
    with services.sessions() as session:
        row = session.get(Connection, connection_id)
        assert row is not None
        session.expunge(row)
        return row, connection_cache.view_of(row, services.secrets).settings


def rows(app: Flask) -> list[Connection]:
    with services_of(app).sessions() as session:
        found = list(session.execute(select(Connection).order_by(Connection.created_at)).scalars())
        session.expunge_all()
        return found


def text_of(answer: Any) -> str:
    return re.sub(r"\s+", " ", answer.get_data(as_text=True))


def test_the_page_offers_every_platform_and_says_nothing_is_connected_yet(console: FlaskClient) -> None:
    answer = console.get(PAGE)
    page = text_of(answer)
    assert answer.status_code == 200
    assert "Nothing is connected yet." in page
    for title in ("Shopify", "WooCommerce", "HubSpot", "Salesforce", "Slack", "Klaviyo", "Email (SMTP)", "Usage events"):
        assert f"Connect {title}" in page
    # The forms come from the connectors' schemas: labels, help and secrets as password fields.
    assert "Admin API access token" in page and "Signs webhooks (X-Shopify-Hmac-Sha256)." in page
    assert re.search(r'id="new-shopify-access_token" type="password" name="setting-access_token"', page)
    assert re.search(r'<option value="dm"', page)  # Slack's CSM routing choices
    assert 'name="setting-starttls" value="1" checked' in page  # SMTP's boolean with its default


def test_connecting_shopify_stores_it_registers_its_webhooks_and_shows_them(
    app: Flask, console: FlaskClient, workspace: Any, standin: StandInServer
) -> None:
    answer = post(console, PAGE + "new/shopify", shopify_form(standin))
    assert answer.status_code == 302
    [row] = rows(app)
    assert answer.headers["Location"].endswith(f"#connection-{row.id}")
    row, settings = stored(app, row.id)
    assert (row.platform, row.name, row.workspace_id, row.lookup_key) == ("shopify", "Red Hill Fresh", workspace.id, SHOP)
    assert settings["access_token"] == "shpat_live_123" and settings["api_secret"] == "shpss_live_456"
    assert "shpat_live_123" not in str(row.settings) and row.secrets  # encrypted, not in the plain settings
    topics = row.webhook_status["topics"]
    assert set(topics) == set(topics_for("shopify"))
    assert topics["orders/paid"] == "registered"

    page = text_of(console.get(PAGE))
    assert "Red Hill Fresh is connected." in page
    assert "webhook topics registered with Shopify." in page
    assert 'value="https://milestones.test/webhooks/shopify"' in page
    assert "<code>orders/paid</code> <span class=\"badge badge-good\">registered</span>" in page
    assert "set in app config" in page  # the compliance topics
    assert "shpat_live_123" not in page and "shpss_live_456" not in page
    assert f'value="{MASK}"' in page


def test_a_refused_connect_form_shows_each_error_keeps_what_was_typed_and_saves_nothing(
    app: Flask, console: FlaskClient, standin: StandInServer
) -> None:
    form = shopify_form(standin, **{"name": "My shop", "setting-shop_domain": "", "setting-base_url": "not a url"})
    answer = post(console, PAGE + "new/shopify", form)
    page = text_of(answer)
    assert answer.status_code == 400
    assert rows(app) == []
    assert "Nothing was saved: check the fields marked below." in page
    assert re.search(r'id="new-shopify-shop_domain".*?<p class="error">Required.</p>', page)
    assert re.search(r'id="new-shopify-base_url".*?<p class="error">Enter a full address', page)
    assert '<details class="advanced" open>' in page  # the advanced part opens on its error
    assert 'value="My shop"' in page and 'value="not a url"' in page  # kept as typed
    assert "shpat_live_123" not in page and "shpss_live_456" not in page  # secrets are not sent back


def test_a_connection_needs_a_name(app: Flask, console: FlaskClient, standin: StandInServer) -> None:
    answer = post(console, PAGE + "new/shopify", shopify_form(standin, name="  "))
    assert answer.status_code == 400
    assert "Give the connection a name" in text_of(answer)
    assert rows(app) == []


def test_a_shop_already_connected_is_refused_next_to_its_domain(
    app: Flask, console: FlaskClient, standin: StandInServer
) -> None:
    assert post(console, PAGE + "new/shopify", shopify_form(standin)).status_code == 302
    again = post(console, PAGE + "new/shopify", shopify_form(standin, name="Twice"))
    assert again.status_code == 409
    assert re.search(r'id="new-shopify-shop_domain".*?<p class="error">already connected</p>', text_of(again))
    assert [r.name for r in rows(app)] == ["Red Hill Fresh"]


def test_an_unknown_platform_is_not_found(app: Flask, console: FlaskClient) -> None:
    assert post(console, PAGE + "new/myspace", {"name": "x"}).status_code == 404
    assert rows(app) == []


def test_saving_keeps_a_secret_sent_back_masked_and_replaces_a_typed_one(
    app: Flask, console: FlaskClient, slack: Any
) -> None:
    _, before = stored(app, slack.id)
    answer = post(console, f"{PAGE}{slack.id}", {
        "name": "CSM alerts", "setting-bot_token": MASK, "setting-signing_secret": "new-signing-secret",
        "setting-channel": "C0NEWCHAN1", "setting-csm_routing": "dm", "setting-base_url": before["base_url"],
    })
    assert answer.status_code == 302
    row, after = stored(app, slack.id)
    assert row.name == "CSM alerts"
    assert after["bot_token"] == before["bot_token"] == "xoxb-test"
    assert after["signing_secret"] == "new-signing-secret"
    assert (after["channel"], after["csm_routing"]) == ("C0NEWCHAN1", "dm")
    assert "CSM alerts: settings saved." in text_of(console.get(PAGE))


def test_a_refused_save_changes_nothing_and_shows_the_form_again(app: Flask, console: FlaskClient, slack: Any) -> None:
    _, before = stored(app, slack.id)
    answer = post(console, f"{PAGE}{slack.id}", {
        "name": "Renamed", "setting-bot_token": "", "setting-signing_secret": "typed-secret",
        "setting-channel": "C0OTHER01", "setting-csm_routing": "channel",
    })
    page = text_of(answer)
    assert answer.status_code == 400
    assert re.search(rf'id="c-{slack.id.hex}-bot_token".*?<p class="error">Required.</p>', page)
    assert 'value="Renamed"' in page and 'value="C0OTHER01"' in page
    assert "typed-secret" not in page
    assert '<details class="edit" open>' in page
    row, after = stored(app, slack.id)
    assert row.name == "Slack" and after == before


def test_test_connection_shows_ok_and_remembers_it(app: Flask, console: FlaskClient, workspace: Any,
                                                   standin: StandInServer) -> None:
    shop = add_connection(app, workspace.id, "shopify", {
        "shop_domain": SHOP, "access_token": "shpat_x", "api_secret": "s", "base_url": standin.base_url(SHOPIFY)})
    answer = post(console, f"{PAGE}{shop.id}/test")
    assert answer.status_code == 302
    page = text_of(console.get(PAGE))
    assert "connection OK — Shopify accepted the credentials." in page
    assert re.search(r'class="last-test"> ?<span class="badge badge-good">OK</span> <time', page)
    row, _ = stored(app, shop.id)
    assert row.webhook_status["check"]["ok"] is True


def test_test_connection_shows_the_platforms_refusal(app: Flask, console: FlaskClient, shop: Any) -> None:
    with responses.RequestsMock() as mock:
        mock.post("https://shop.test/admin/api/2025-07/graphql.json", status=401,
                  json={"errors": "[API] Invalid API key or access token"})
        answer = post(console, f"{PAGE}{shop.id}/test")
    assert answer.status_code == 302
    page = text_of(console.get(PAGE))
    assert "the test failed" in page and "401" in page
    assert re.search(r'class="last-test"> ?<span class="badge badge-bad">Failed</span>', page)
    row, _ = stored(app, shop.id)
    assert row.webhook_status["check"]["ok"] is False


def test_re_register_asks_the_platform_again_and_shows_each_topic(
    app: Flask, console: FlaskClient, workspace: Any, standin: StandInServer
) -> None:
    shop = add_connection(app, workspace.id, "shopify", {
        "shop_domain": "second-shop.myshopify.com", "access_token": "shpat_x", "api_secret": "s",
        "base_url": standin.base_url(SHOPIFY), "api_version": "2025-10"})
    assert "Not registered yet" in text_of(console.get(PAGE))
    first = post(console, f"{PAGE}{shop.id}/webhooks")
    assert first.status_code == 302
    assert stored(app, shop.id)[0].webhook_status["topics"]["orders/create"] == "registered"
    post(console, f"{PAGE}{shop.id}/webhooks")
    page = text_of(console.get(PAGE))
    assert "<code>orders/create</code> <span class=\"badge badge-good\">already registered</span>" in page
    assert "webhook topics registered with Shopify." in page


def test_re_register_failing_says_so_and_records_the_error(app: Flask, console: FlaskClient, shop: Any) -> None:
    with responses.RequestsMock() as mock:
        mock.post("https://shop.test/admin/api/2025-07/graphql.json", status=401,
                  json={"errors": "[API] Invalid API key or access token"})
        post(console, f"{PAGE}{shop.id}/webhooks")
    page = text_of(console.get(PAGE))
    assert "webhook topics could not be registered" in page
    assert re.search(r'class="last-error"> ?<span class="error-text">[^<]*401', page)
    assert "badge-bad" in page


def test_slack_has_no_registration_to_re_register(app: Flask, console: FlaskClient, slack: Any) -> None:
    with responses.RequestsMock():  # any platform call fails the test
        post(console, f"{PAGE}{slack.id}/webhooks")
    assert "set up in Slack itself" in text_of(console.get(PAGE))
    assert stored(app, slack.id)[0].webhook_status in ({}, None)


def test_an_uninstalled_store_is_not_re_registered_until_it_is_saved_again(app: Flask, console: FlaskClient,
                                                                           shop: Any) -> None:
    with services_of(app).sessions() as session, session.begin():
        row = session.get(Connection, shop.id)
        assert row is not None
        row.status = "uninstalled"
    page = text_of(console.get(PAGE))
    assert "says the app was uninstalled" in page and f"/admin/connections/{shop.id}/webhooks" not in page
    with responses.RequestsMock():  # any platform call fails the test
        post(console, f"{PAGE}{shop.id}/webhooks")
    assert "is uninstalled: save its settings with fresh credentials first." in text_of(console.get(PAGE))
    assert stored(app, shop.id)[0].webhook_status in ({}, None)


def test_the_page_shows_the_last_webhook_and_the_reconciliation(app: Flask, console: FlaskClient, shop: Any,
                                                                hubspot: Any, slack: Any) -> None:
    now = datetime.now(UTC)
    with services_of(app).sessions() as session, session.begin():
        session.add_all([
            InboxDelivery(workspace_id=shop.workspace_id, connection_id=shop.id, platform="shopify",
                          delivery_key="evt-1", topic="orders/paid", body="{}", received_at=now - timedelta(minutes=5)),
            InboxDelivery(workspace_id=shop.workspace_id, connection_id=shop.id, platform="shopify",
                          delivery_key="reconcile:1:1", topic="orders/updated", body="{}", received_at=now),
        ])
        row = session.get(Connection, shop.id)
        assert row is not None
        row.webhook_status = {"reconcile": {"watermark": now.isoformat(), "last_run": now.isoformat(), "fetched": 3,
                                            "new": 1, "error": None}}
    page = text_of(console.get(PAGE))
    shop_panel = page[page.index(f'id="connection-{shop.id}"'):page.index(f'id="connection-{hubspot.id}"')]
    assert re.search(r'class="last-webhook"> ?<time [^>]*>5 min ago</time>', shop_panel)  # not the fetched order
    assert "3 orders changed, 1 the webhooks had missed" in shop_panel
    assert f'value="https://milestones.test/webhooks/hubspot/{hubspot.id}"' in page
    assert f'value="https://milestones.test/slack/interactions/{slack.id}"' in page
    assert "none received yet" in page  # HubSpot has not sent anything
    assert "<code>contact.propertyChange</code>" in page  # what to subscribe to in HubSpot


def test_disconnect_forgets_the_secrets_and_takes_it_off_the_page(app: Flask, console: FlaskClient, shop: Any) -> None:
    answer = post(console, f"{PAGE}{shop.id}/disconnect")
    assert answer.status_code == 302
    row, _ = stored(app, shop.id)
    assert (row.status, row.secrets, row.lookup_key) == ("disconnected", None, None)
    page = text_of(console.get(PAGE))
    assert "is disconnected" in page and f'id="connection-{shop.id}"' not in page
    assert post(console, f"{PAGE}{shop.id}/test").status_code == 404  # gone for every action


def test_the_disconnect_button_asks_first(console: FlaskClient, shop: Any) -> None:
    page = text_of(console.get(PAGE))
    assert re.search(rf'action="/admin/connections/{shop.id}/disconnect" class="inline" data-confirm="Disconnect', page)


@pytest.mark.parametrize("action", ["", "/test", "/webhooks", "/disconnect"])
def test_another_workspaces_connection_is_not_found_and_unchanged(
    app: Flask, console: FlaskClient, other_workspace: Any, action: str
) -> None:
    theirs = add_connection(app, other_workspace.id, "slack", {
        "bot_token": "xoxb-theirs", "signing_secret": "theirs", "channel": "C0THEIRS1", "base_url": "https://slack.test/api"})
    before, before_settings = stored(app, theirs.id)
    with responses.RequestsMock():  # nothing may reach their platform
        answer = post(console, f"{PAGE}{theirs.id}{action}", {
            "name": "Mine now", "setting-bot_token": "xoxb-mine", "setting-signing_secret": "x", "setting-channel": "C0MINE0001"})
    assert answer.status_code == 404
    after, after_settings = stored(app, theirs.id)
    assert (after.name, after.status, after.webhook_status) == (before.name, before.status, before.webhook_status)
    assert after_settings == before_settings
    assert "C0THEIRS1" not in console.get(PAGE).get_data(as_text=True)


def test_a_malformed_connection_id_is_not_found(console: FlaskClient) -> None:
    assert post(console, f"{PAGE}not-a-uuid/test").status_code == 404
    assert post(console, f"{PAGE}{uuid.uuid4()}/test").status_code == 404


@pytest.mark.parametrize("action", ["", "/test", "/webhooks", "/disconnect"])
def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    app: Flask, console: FlaskClient, slack: Any, action: str
) -> None:
    before, before_settings = stored(app, slack.id)
    with responses.RequestsMock():
        answer = console.post(f"{PAGE}{slack.id}{action}", data={"name": "Hijacked", "setting-channel": "C0EVIL0001"})
    assert answer.status_code == 403
    after, after_settings = stored(app, slack.id)
    assert (after.name, after.status, after.webhook_status) == (before.name, before.status, before.webhook_status)
    assert after_settings == before_settings


def test_connecting_without_the_csrf_token_creates_nothing(app: Flask, console: FlaskClient,
                                                         standin: StandInServer) -> None:
    assert console.post(PAGE + "new/shopify", data=shopify_form(standin)).status_code == 403
    assert rows(app) == []
