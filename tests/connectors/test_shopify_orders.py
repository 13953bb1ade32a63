"""Reading changed orders back from Shopify (reconciliation), page by page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import responses

from connectors.errors import ConnectorError
from connectors.shopify import ShopifyConnector

BASE = "https://shop.test/admin/api/2025-07"


def connector() -> ShopifyConnector:
    return ShopifyConnector({"shop_domain": "red-hill-fresh.myshopify.com", "access_token": "shpat_x",
                             "api_secret": "s", "base_url": "https://shop.test"})


def test_changed_orders_follows_the_next_link_and_keeps_the_webhook_shape():
    # https://shopify.dev/docs/api/admin-rest/2025-07/resources/order#get-orders?status=any
    # https://shopify.dev/docs/api/usage/pagination-rest (Link header, page_info)
    page_two = f"{BASE}/orders.json?limit=250&page_info=eyJsYXN0X2lkIjo0NTB9"
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/orders.json", json={"orders": [
            {"id": 450789469, "updated_at": "2026-01-20T11:55:00-05:00", "financial_status": "paid"}]},
            headers={"Link": f'<{page_two}>; rel="next"'}, match=[responses.matchers.query_param_matcher(
                {"status": "any", "updated_at_min": "2026-01-20T11:50:00+00:00", "limit": "250",
                 "order": "updated_at asc"})])
        mock.get(page_two, json={"orders": [{"id": 450789470, "updated_at": "2026-01-20T11:58:00-05:00"}]})
        found = connector().changed_orders(datetime(2026, 1, 20, 11, 50, tzinfo=UTC))
        assert mock.calls[0].request.headers["X-Shopify-Access-Token"] == "shpat_x"
    assert [(o.external_id, o.version, o.topic) for o in found] == [
        ("450789469", "2026-01-20T11:55:00-05:00", "orders/updated"),
        ("450789470", "2026-01-20T11:58:00-05:00", "orders/updated"),
    ]
    assert found[0].payload["financial_status"] == "paid"


def test_a_throttled_listing_is_a_transient_error_with_retry_after():
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/orders.json", status=429, headers={"Retry-After": "2.0"},
                 json={"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."})
        with pytest.raises(ConnectorError) as raised:
            connector().changed_orders(datetime(2026, 1, 20, tzinfo=UTC))
    assert not raised.value.permanent and raised.value.retry_after == 2.0
