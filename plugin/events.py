"""Canonical events: what every inbound platform module normalises its payloads into.

``webhooks/<platform>`` turns a delivery into a list of these; the pipeline applies them to the
ledger without knowing which platform sent them. All money is ``Decimal`` with a currency and
all datetimes are aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class CustomerRef:
    """Who an event is about. ``external_id`` is the platform's id on this connection."""

    external_id: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company_name: str | None = None
    created_at: datetime | None = None  # account creation on the platform
    timezone: str | None = None

    @property
    def is_identifiable(self) -> bool:
        return bool(self.external_id or self.email)


@dataclass(frozen=True)
class Refund:
    refund_id: str
    amount: Decimal
    created_at: datetime | None = None


@dataclass(frozen=True)
class LineItem:
    product_id: str | None
    title: str
    quantity: int
    price: Decimal


@dataclass(frozen=True)
class OrderSnapshot:
    """The state of one order as one delivery saw it.

    ``paid`` is True when the payload shows the order was paid at some point (a refunded order
    was paid); ``refunds`` lists every refund the payload knows. Merging snapshots is done by
    :mod:`plugin.ledger.orders` and does not depend on arrival order.
    """

    external_id: str
    customer: CustomerRef | None
    currency: str
    total: Decimal
    placed_at: datetime
    updated_at: datetime
    paid: bool
    cancelled: bool
    refunds: tuple[Refund, ...] = ()
    line_items: tuple[LineItem, ...] = ()


@dataclass(frozen=True)
class OrderRefunded:
    """A refund delivered on its own (Shopify ``refunds/create``), possibly before its order."""

    order_external_id: str
    customer: CustomerRef | None
    refund: Refund


@dataclass(frozen=True)
class CustomerUpdated:
    """Profile and context of a customer (store customer, CRM contact or company)."""

    customer: CustomerRef
    arr: Decimal | None = None
    health_score: int | None = None
    owner_email: str | None = None
    customer_since: datetime | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricChanged:
    """A usage or CRM counter: either an absolute ``value`` or an ``increment``."""

    customer: CustomerRef
    metric: str
    occurred_at: datetime
    value: Decimal | bool | None = None
    increment: Decimal | None = None


@dataclass(frozen=True)
class ConnectionUninstalled:
    """The platform removed our app (Shopify ``app/uninstalled``)."""


@dataclass(frozen=True)
class CustomerRedactRequested:
    """Erase this customer's personal data; keep anonymous counts (Shopify ``customers/redact``)."""

    customer: CustomerRef
    order_external_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class CustomerDataRequested:
    """The merchant asked what we hold about a customer (Shopify ``customers/data_request``)."""

    customer: CustomerRef
    request_id: str | None = None


@dataclass(frozen=True)
class ShopRedactRequested:
    """Erase everything personal of this connection's shop (Shopify ``shop/redact``)."""


CanonicalEvent = (
    OrderSnapshot
    | OrderRefunded
    | CustomerUpdated
    | MetricChanged
    | ConnectionUninstalled
    | CustomerRedactRequested
    | CustomerDataRequested
    | ShopRedactRequested
)
