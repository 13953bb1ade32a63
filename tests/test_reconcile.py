"""Reconciliation recovers deliveries the platform dropped — once — and repairs webhooks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import responses
from sqlalchemy import select

from plugin.models import Connection
from plugin.reconcile import reconcile_connection, reconcile_due
from tests.conftest import add_connection, services_of
from tests.pipeline.test_woocommerce_flow import ALICE, SECRET, STORE_API, post, woo_order
from tests.support import metric, milestone_keys

NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)


def _store(app, workspace):
    return add_connection(app, workspace.id, "woocommerce", {
        "store_url": "https://red-hill-fresh.example", "consumer_key": "ck_test", "consumer_secret": "cs_test",
        "webhook_secret": SECRET, "base_url": "https://woo.test"})


def _fake_store(mock: responses.RequestsMock, orders: list[dict], hooks: list[dict] | None = None) -> None:
    # https://woocommerce.github.io/woocommerce-rest-api-docs/#list-all-orders
    mock.get(f"{STORE_API}/orders", json=orders, headers={"X-WP-TotalPages": "1"})
    # https://woocommerce.github.io/woocommerce-rest-api-docs/#list-all-webhooks
    mock.get(f"{STORE_API}/webhooks", json=hooks or [], headers={"X-WP-TotalPages": "1"})
    mock.post(f"{STORE_API}/webhooks", status=201, json={"id": 1, "status": "active"})
    mock.put(f"{STORE_API}/webhooks/142", json={"id": 142, "status": "active"})


def test_an_order_whose_webhook_was_lost_is_counted_once_by_reconciliation(app, client, workspace):
    store = _store(app, workspace)
    services = services_of(app)
    post(client, store.id, woo_order(1))  # delivered
    # Order 2's webhook never arrived; the store's API has both.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _fake_store(mock, [woo_order(1), woo_order(2)])
        first = reconcile_connection(services, store.id, now=NOW)
        again = reconcile_connection(services, store.id, now=NOW + timedelta(minutes=15))
        listed = [c.request for c in mock.calls if c.request.url.startswith(f"{STORE_API}/orders")]
    assert (first.fetched, first.new) == (2, 2)
    assert again.new == 0  # same versions: nothing new to store
    assert metric(services, ALICE, "order_count") == 2
    assert milestone_keys(services, ALICE) == [("order-1", 1)]
    # The second pass asks from its watermark minus the overlap, not from the beginning.
    assert "modified_after=2026-01-20T11%3A50%3A00" in listed[-1].url


def test_reconciliation_reactivates_a_webhook_woocommerce_disabled(app, workspace):
    store = _store(app, workspace)
    delivery_url = f"https://milestones.test/webhooks/woocommerce/{store.id}"
    disabled = {"id": 142, "topic": "order.updated", "status": "disabled", "delivery_url": delivery_url}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _fake_store(mock, [], hooks=[disabled])
        reconcile_connection(services_of(app), store.id, now=NOW)
        puts = [json.loads(c.request.body) for c in mock.calls if c.request.method == "PUT"]
    assert puts and puts[0]["status"] == "active"
    with services_of(app).sessions() as session:
        status = session.execute(select(Connection.webhook_status).where(Connection.id == store.id)).scalar_one()
    assert status["topics"]["order.updated"] == "reactivated"
    assert status["reconcile"]["fetched"] == 0


def test_only_connections_due_are_reconciled(app, workspace):
    store = _store(app, workspace)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _fake_store(mock, [])
        assert [r.connection_id for r in reconcile_due(services_of(app), now=NOW)] == [store.id]
        assert reconcile_due(services_of(app), now=NOW + timedelta(minutes=5)) == []
        assert len(reconcile_due(services_of(app), now=NOW + timedelta(minutes=16))) == 1


def test_an_unreachable_store_is_recorded_not_raised(app, workspace):
    store = _store(app, workspace)
    with responses.RequestsMock() as mock:
        mock.get(f"{STORE_API}/orders", status=503, body="maintenance")
        result = reconcile_connection(services_of(app), store.id, now=NOW)
    assert result.error and "503" in result.error
