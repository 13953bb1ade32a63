"""Shopify history through the Admin GraphQL API: every customer, then every order, by cursor.

Both connections are read with ``first``/``after`` and ``pageInfo { hasNextPage endCursor }``
(https://shopify.dev/docs/api/usage/pagination-graphql), sorted by ``ID`` so a cursor taken
today still resumes at the same place tomorrow, while new orders land at the end. The cursor of
the last committed page is what a resumed run starts ``after``.

Ids are the REST ids (``legacyResourceId``), which is what webhooks carry: an order imported
here and delivered by ``orders/paid`` is one ledger row, and a refund seen in both counts once.
An imported order's placement date is ``processedAt`` — for orders imported into Shopify from
another platform it is the original date, while ``createdAt`` is the day of the import
(https://shopify.dev/docs/api/admin-graphql/latest/objects/Order). Paid and cancelled are read
the way :mod:`webhooks.shopify` reads them: ``displayFinancialStatus`` PAID, PARTIALLY_PAID,
PARTIALLY_REFUNDED or REFUNDED (https://shopify.dev/docs/api/admin-graphql/latest/enums/OrderDisplayFinancialStatus)
and a ``cancelledAt``; each refund is its ``totalRefundedSet`` (objects/Refund).

Without the ``read_all_orders`` scope Shopify only returns the last 60 days of orders (see the
note on objects/Order). Page sizes keep a query under the 1,000-point cost limit; a throttled
call waits for the cost bucket (:func:`connectors.shopify.throttle_wait`) and tries again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from connectors.shopify import ShopifyConnector
from plugin.backfill.fetch import with_retries
from plugin.backfill.rows import Page, page_of
from plugin.events import CustomerRef, LineItem, OrderSnapshot, Refund

CUSTOMERS_PER_PAGE = 250
ORDERS_PER_PAGE = 100
LINE_ITEMS_PER_ORDER = 5
PAID_STATUSES = frozenset({"PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED", "REFUNDED"})
# Customer.defaultEmailAddress exists from 2025-04 on, and Customer.email is deprecated there.
# https://shopify.dev/changelog/adding-defaultemailaddress-field-to-customer
DEFAULT_EMAIL_SINCE = "2025-04"


def _email_field(api_version: str) -> str:
    return "defaultEmailAddress { emailAddress }" if api_version >= DEFAULT_EMAIL_SINCE else "email"


def customers_query(api_version: str) -> str:
    # https://shopify.dev/docs/api/admin-graphql/latest/queries/customers
    return f"""
query backfillCustomers($first: Int!, $after: String) {{
  customers(first: $first, after: $after, sortKey: ID) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ legacyResourceId firstName lastName createdAt {_email_field(api_version)} }}
  }}
}}
"""


def orders_query(api_version: str) -> str:
    # https://shopify.dev/docs/api/admin-graphql/latest/queries/orders
    return f"""
query backfillOrders($first: Int!, $after: String) {{
  orders(first: $first, after: $after, sortKey: ID) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      legacyResourceId
      email
      createdAt
      processedAt
      updatedAt
      cancelledAt
      displayFinancialStatus
      totalPriceSet {{ shopMoney {{ amount currencyCode }} }}
      customer {{ legacyResourceId firstName lastName createdAt {_email_field(api_version)} }}
      refunds {{ legacyResourceId createdAt totalRefundedSet {{ shopMoney {{ amount currencyCode }} }} }}
      lineItems(first: {LINE_ITEMS_PER_ORDER}) {{
        nodes {{ title quantity product {{ legacyResourceId }} originalUnitPriceSet {{ shopMoney {{ amount }} }} }}
      }}
    }}
  }}
}}
"""


class ShopifyHistory:
    name = "shopify"

    def __init__(self, connector: ShopifyConnector, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.connector = connector
        self.sleep = sleep

    def pages(self, cursor: Mapping[str, Any]) -> Iterator[Page]:
        version = self.connector.api_version
        stage, after = cursor.get("stage", "customers"), cursor.get("after")
        if stage == "customers":
            for nodes, end in self._connection(customers_query(version), "customers", after):
                customers, skipped = _read(nodes, _customer)
                yield page_of({"stage": "customers", "after": end}, customers, [], skipped)
            after = None
        for nodes, end in self._connection(orders_query(version), "orders", after):
            orders, skipped = _read(nodes, _order)
            yield page_of({"stage": "orders", "after": end}, [], orders, skipped)

    def _connection(self, query: str, field: str, after: str | None) -> Iterator[tuple[list[Any], str | None]]:
        size = CUSTOMERS_PER_PAGE if field == "customers" else ORDERS_PER_PAGE
        while True:
            variables = {"first": size, "after": after}
            data = with_retries(partial(self.connector.graphql, query, variables), sleep=self.sleep)
            connection = data.get(field) or {}
            info = connection.get("pageInfo") or {}
            end = info.get("endCursor") or after
            yield list(connection.get("nodes") or []), end
            if not info.get("hasNextPage"):
                return
            after = end


def _read(nodes: list[Any], read: Callable[[Mapping[str, Any]], Any]) -> tuple[list[Any], list[str]]:
    found, skipped = [], []
    for node in nodes:
        try:
            found.append(read(node))
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            ident = node.get("legacyResourceId") if isinstance(node, Mapping) else None
            skipped.append(f"shopify {ident or '?'}: {type(exc).__name__}: {exc}")
    return found, skipped


def _timestamp(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without offset: {value!r}")
    return moment


def _optional_timestamp(value: str | None) -> datetime | None:
    return _timestamp(value) if value else None


def _email(node: Mapping[str, Any]) -> str | None:
    default = node.get("defaultEmailAddress")
    return (default or {}).get("emailAddress") if "defaultEmailAddress" in node else node.get("email")


def _customer(node: Mapping[str, Any]) -> CustomerRef:
    return CustomerRef(
        external_id=str(node["legacyResourceId"]),
        email=_email(node),
        first_name=node.get("firstName"),
        last_name=node.get("lastName"),
        created_at=_optional_timestamp(node.get("createdAt")),
    )


def _order(node: Mapping[str, Any]) -> OrderSnapshot:
    money = node["totalPriceSet"]["shopMoney"]
    customer = node.get("customer")
    placed_at = _timestamp(node.get("processedAt") or node["createdAt"])
    return OrderSnapshot(
        external_id=str(node["legacyResourceId"]),
        customer=_customer(customer) if customer else (CustomerRef(email=node["email"]) if node.get("email") else None),
        currency=str(money["currencyCode"]).upper(),
        total=Decimal(str(money["amount"])),
        placed_at=placed_at,
        updated_at=_optional_timestamp(node.get("updatedAt")) or placed_at,
        paid=node.get("displayFinancialStatus") in PAID_STATUSES,
        cancelled=node.get("cancelledAt") is not None,
        refunds=tuple(
            Refund(
                refund_id=str(r["legacyResourceId"]),
                amount=Decimal(str(r["totalRefundedSet"]["shopMoney"]["amount"])),
                created_at=_optional_timestamp(r.get("createdAt")),
            )
            for r in node.get("refunds") or []
        ),
        line_items=tuple(
            LineItem(
                product_id=str(li["product"]["legacyResourceId"]) if li.get("product") else None,
                title=li.get("title") or "",
                quantity=int(li["quantity"]),
                price=Decimal(str(li["originalUnitPriceSet"]["shopMoney"]["amount"])),
            )
            for li in (node.get("lineItems") or {}).get("nodes") or []
        ),
    )
