"""The webhook path's driver-level INSERT and the session's upsert store the same inbox row; a
dead connection costs one 503, never the next delivery."""

from __future__ import annotations

import json

import psycopg
from sqlalchemy import select

from plugin import connections, inbox
from plugin.db import transaction
from plugin.models import InboxDelivery
from tests.conftest import services_of
from tests.support import SHOP_DOMAIN, SHOP_SECRET, order, post_order
from webhooks.base import InboxItem
from webhooks.reading import RequestHeaders, header

COMPARED = ("workspace_id", "connection_id", "platform", "topic", "webhook_id", "headers", "body", "status",
            "attempts", "error", "claimed_at", "processed_at")


def _item(key: str) -> InboxItem:
    return InboxItem(topic="orders/paid", delivery_key=key, body='{"id": 1}', webhook_id="wh-1",
                     headers={"X-Shopify-Topic": "orders/paid", "X-Shopify-Event-Id": "evt-1"})


def _stored(services, key: str) -> dict:
    with services.sessions() as session:
        row = session.scalars(select(InboxDelivery).where(InboxDelivery.delivery_key == key)).one()
        return {name: getattr(row, name) for name in (*COMPARED, "received_at")}


def test_the_driver_insert_and_the_session_upsert_write_the_same_row(app, shop):
    services = services_of(app)
    view = connections.view_of(shop, services.secrets)
    fast = inbox.receive(services, view, [_item("fast")])
    with transaction(services.sessions) as session:
        slow = inbox.store_items(session, view.workspace_id, view.id, view.platform, [_item("slow")])
    assert len(fast) == len(slow) == 1 and fast != slow
    first, second = _stored(services, "fast"), _stored(services, "slow")
    assert {n: first[n] for n in COMPARED} == {n: second[n] for n in COMPARED}
    assert first["status"] == "pending" and first["attempts"] == 0 and first["headers"]["X-Shopify-Event-Id"] == "evt-1"
    assert first["received_at"].tzinfo is not None and first["received_at"] <= second["received_at"]


def test_the_driver_insert_stores_each_key_once_and_returns_only_new_ids(app, shop):
    services = services_of(app)
    view = connections.view_of(shop, services.secrets)
    first = inbox.receive(services, view, [_item("a"), _item("b"), _item("a")])
    again = inbox.receive(services, view, [_item("b"), _item("c")])
    assert len(first) == 2 and first == sorted(first)
    assert len(again) == 1 and again[0] > max(first)
    with services.sessions() as session:
        assert sorted(session.scalars(select(InboxDelivery.delivery_key))) == ["a", "b", "c"]


def test_a_connection_killed_under_the_endpoint_costs_one_503_then_it_recovers(app, client, shop):
    services = services_of(app)
    assert post_order(client, order(1), event_id="evt-1").status_code == 200
    assert services.thread_connections is not None
    with services.thread_connections.connection() as driver:  # this thread's: the one the endpoint used
        backend = driver.execute("SELECT pg_backend_pid()").fetchone()[0]
    admin_url = services.settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
    failed = post_order(client, order(2), event_id="evt-2")
    assert failed.status_code == 503
    assert json.loads(failed.data)["error"].startswith("temporarily unavailable")
    retried = post_order(client, order(2), event_id="evt-2")  # the platform's retry: a fresh connection
    assert retried.status_code == 200 and retried.get_json()["status"] == "accepted"
    with services.sessions() as session:
        assert session.scalars(select(InboxDelivery.delivery_key).order_by(InboxDelivery.id)).all() == [
            "orders/paid:event:evt-1", "orders/paid:event:evt-2"]


def test_a_cached_connection_is_found_without_opening_a_session(app, shop):
    services = services_of(app)
    found = connections.find_inbound(services.sessions, services.secrets, "shopify", connection_id=None,
                                     lookup_key=SHOP_DOMAIN)
    assert found is not None and found.settings["api_secret"] == SHOP_SECRET

    def no_session():
        raise AssertionError("the cache should have answered")

    again = connections.find_inbound(no_session, services.secrets, "shopify", connection_id=None,  # type: ignore[arg-type]
                                     lookup_key=SHOP_DOMAIN)
    assert again == found


def test_request_headers_read_any_case_from_the_environ():
    headers = RequestHeaders({
        "HTTP_X_SHOPIFY_TOPIC": "orders/paid", "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "12",
        "HTTP_X_BLANK": "  ", "PATH_INFO": "/webhooks/shopify", "wsgi.input": object(),
    })
    assert header(headers, "X-Shopify-Topic") == header(headers, "x-shopify-topic") == "orders/paid"
    assert headers["Content-Type"] == "application/json" and headers.get("content-length") == "12"
    assert header(headers, "X-Blank") is None and header(headers, "X-Missing") is None
    assert sorted(headers) == ["content-length", "content-type", "x-blank", "x-shopify-topic"]
    assert len(headers) == 4


def test_one_key_in_two_requests_of_a_batch_is_stored_once_and_the_first_request_gets_it(app, shop):
    services = services_of(app)
    view = connections.view_of(shop, services.secrets)
    assert services.thread_connections is not None

    def rows(*keys):
        return inbox._rows(view.workspace_id, view.id, view.platform, [_item(k) for k in keys])

    original, retry, other = inbox.insert_requests(services.thread_connections,
                                                   [rows("k1", "k2"), rows("k1"), rows("k3")])
    assert len(original) == 2 and retry == [] and len(other) == 1
    with services.sessions() as session:
        stored = dict(session.execute(select(InboxDelivery.delivery_key, InboxDelivery.id)).all())
    assert sorted(stored) == ["k1", "k2", "k3"]
    assert original == sorted([stored["k1"], stored["k2"]]) and other == [stored["k3"]]


def test_concurrent_webhooks_through_the_group_writer_each_answer_for_their_own_rows(app, shop):
    import threading

    services = services_of(app)
    view = connections.view_of(shop, services.secrets)
    answers: dict[str, list[int]] = {}

    def send(key: str) -> None:
        answers[key] = inbox.receive(services, view, [_item(key), _item(key + "-b")])

    threads = [threading.Thread(target=send, args=(f"w{i}",)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    with services.sessions() as session:
        stored = dict(session.execute(select(InboxDelivery.delivery_key, InboxDelivery.id)).all())
    assert len(stored) == 32
    for key, ids in answers.items():
        assert ids == sorted([stored[key], stored[key + "-b"]])
