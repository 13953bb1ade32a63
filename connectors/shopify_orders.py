"""Reading orders back from Shopify for reconciliation, in the shape its webhooks deliver.

The REST ``orders.json`` resource returns the same order JSON as the ``orders/*`` webhooks
(https://shopify.dev/docs/api/admin-rest/2025-07/resources/order#get-orders?status=any),
so a reconciled order goes through exactly the code a delivery does. Pages follow the
``Link: <…page_info=…>; rel="next"`` header (https://shopify.dev/docs/api/usage/pagination-rest).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import requests

from connectors.base import as_utc
from connectors.errors import ConnectorError
from connectors.payloads import FetchedOrder

PAGE_LIMIT = 250
MAX_PAGES = 200
NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')

Get = Callable[[str, dict[str, Any] | None], requests.Response]


def changed_orders(get: Get, base: str, since: datetime) -> list[FetchedOrder]:
    url: str | None = f"{base}/orders.json"
    params: dict[str, Any] | None = {
        "status": "any",
        "updated_at_min": as_utc(since).isoformat(),
        "limit": PAGE_LIMIT,
        "order": "updated_at asc",
    }
    found: list[FetchedOrder] = []
    for _ in range(MAX_PAGES):
        if url is None:
            break
        response = get(url, params)
        try:
            orders = response.json().get("orders")
        except (ValueError, AttributeError) as exc:
            raise ConnectorError("shopify: orders.json did not answer JSON") from exc
        if not isinstance(orders, list):
            raise ConnectorError("shopify: orders.json answered without an orders list")
        found.extend(
            FetchedOrder(str(o["id"]), str(o.get("updated_at") or ""), "orders/updated", o)
            for o in orders
            if isinstance(o, dict) and o.get("id") is not None
        )
        link = NEXT_LINK.search(response.headers.get("Link", ""))
        url, params = (link.group(1), None) if link else (None, None)
    return found
