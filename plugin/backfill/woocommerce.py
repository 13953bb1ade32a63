"""WooCommerce history through the REST API v3: every customer, then every order, page by page.

``GET /wp-json/wc/v3/customers`` and ``/orders`` with ``page``/``per_page`` (at most 100) and
``orderby=id&order=asc``, so a page number taken today still resumes at the same place tomorrow;
the answer's ``X-WP-TotalPages`` says where the collection ends
(https://woocommerce.github.io/woocommerce-rest-api-docs/#list-all-customers,
#list-all-orders, #pagination). Orders of every status are listed by default.

The REST resources are exactly what order.* and customer.* webhooks deliver, so they are read by
the webhook source's own normaliser (:meth:`webhooks.woocommerce.WooCommerceSource.normalize`):
an imported order and a delivered one become the same ledger row. HTTP (HTTPS-only Basic auth,
``base_url``) goes through :meth:`connectors.woocommerce.WooCommerceConnector.send`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any

from connectors.errors import ConnectorError
from connectors.woocommerce import PAGE_SIZE, WooCommerceConnector
from plugin.backfill.fetch import with_retries
from plugin.backfill.rows import Page, page_of
from plugin.events import CustomerUpdated, OrderSnapshot
from webhooks.base import MalformedDelivery
from webhooks.woocommerce import WooCommerceSource

NORMALIZER = WooCommerceSource()


class WooCommerceHistory:
    name = "woocommerce"

    def __init__(self, connector: WooCommerceConnector, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.connector = connector
        self.sleep = sleep

    def pages(self, cursor: Mapping[str, Any]) -> Iterator[Page]:
        stage, done = cursor.get("stage", "customers"), int(cursor.get("page") or 0)
        if stage == "customers":
            for number, items in self._collection("customers", done + 1):
                customers, skipped = self._read(items, "customer.updated", "customer")
                yield page_of({"stage": "customers", "page": number}, customers, [], skipped)
            done = 0
        for number, items in self._collection("orders", done + 1):
            orders, skipped = self._read(items, "order.updated", "order")
            yield page_of({"stage": "orders", "page": number}, [], orders, skipped)

    def _collection(self, resource: str, first: int) -> Iterator[tuple[int, list[Any]]]:
        number = first
        while True:
            params = {"page": number, "per_page": PAGE_SIZE, "orderby": "id", "order": "asc"}
            response = with_retries(partial(self.connector.send, "GET", resource, params=params), sleep=self.sleep)
            try:
                items = response.json()
            except ValueError as exc:
                raise ConnectorError(f"woocommerce: {resource} page {number} is not JSON") from exc
            if not isinstance(items, list):
                raise ConnectorError(f"woocommerce: unexpected answer listing {resource}")
            total = response.headers.get("X-WP-TotalPages", "")
            last = int(total) if total.isdigit() else None
            if not items and (last is None or number > last):
                return  # past the end (a resumed run whose last page was the last one)
            yield number, items
            if len(items) < PAGE_SIZE or (last is not None and number >= last):
                return
            number += 1

    @staticmethod
    def _read(items: list[Any], topic: str, what: str) -> tuple[list[Any], list[str]]:
        found: list[Any] = []
        skipped: list[str] = []
        for item in items:
            try:
                events = NORMALIZER.normalize(topic, item)
            except MalformedDelivery as exc:
                ident = item.get("id") if isinstance(item, Mapping) else None
                skipped.append(f"woocommerce {what} {ident or '?'}: {exc}")
                continue
            for event in events:
                if isinstance(event, CustomerUpdated):
                    found.append(event.customer)
                elif isinstance(event, OrderSnapshot):
                    found.append(event)
        return found, skipped
