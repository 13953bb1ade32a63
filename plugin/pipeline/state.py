"""What a batch reads and writes: customers (locked), their counters, and order ledger rows.

Loading locks rows in a fixed order — customers by id, then orders by id — so two workers
never deadlock; writing sends each kind of change in one set-based statement.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin.db import pairs_in, utcnow
from plugin.ledger.orders import OrderState
from plugin.milestones.tenure import local_zone, tenure_columns
from plugin.models import Customer, CustomerMetric, Order
from plugin.upsert import upsert

# Written only when an event brings a different value, so a busy customer costs no extra UPDATE.
PROFILE_COLUMNS = (
    Customer.first_name, Customer.last_name, Customer.company_name, Customer.timezone,
    Customer.arr, Customer.health_score, Customer.owner_email,
)
OrderKey = tuple[uuid.UUID, str]  # (connection id, the platform's order id)


@dataclass
class CustomerState:
    id: uuid.UUID
    workspace_id: uuid.UUID
    customer_since: datetime | None
    metrics: dict[str, Decimal]
    observed: dict[str, datetime | None] = field(default_factory=dict)  # when an absolute value was true
    known: dict[str, Any] = field(default_factory=dict)  # profile columns as stored
    changed_metrics: set[str] = field(default_factory=set)
    profile: dict[str, Any] = field(default_factory=dict)
    has_tenure_columns: bool = True


@dataclass
class LedgerRow:
    id: int
    customer_id: uuid.UUID | None
    state: OrderState


class BatchState:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.customers: dict[uuid.UUID, CustomerState] = {}
        self.orders: dict[OrderKey, LedgerRow] = {}
        self.changed_orders: set[OrderKey] = set()

    def order_customers(self, keys: list[OrderKey]) -> set[uuid.UUID]:
        """Customers of already-known orders (a refund names only its order)."""
        if not keys:
            return set()
        rows = self.session.execute(
            select(Order.customer_id).where(pairs_in(Order.connection_id, Order.external_id, keys))
        ).scalars()
        return {customer_id for customer_id in rows if customer_id}

    def lock_customers(self, ids: set[uuid.UUID]) -> None:
        """Per-customer serialisation: rows locked in id order, so two workers never deadlock."""
        ids = ids - set(self.customers)
        if not ids:
            return
        ordered = sorted(ids)
        rows = self.session.execute(
            select(Customer.id, Customer.workspace_id, Customer.customer_since, Customer.since_local, *PROFILE_COLUMNS)
            .where(Customer.id.in_(ordered))
            .order_by(Customer.id)
            .with_for_update()
        ).all()
        metrics: dict[uuid.UUID, dict[str, Decimal]] = defaultdict(dict)
        observed: dict[uuid.UUID, dict[str, datetime | None]] = defaultdict(dict)
        for m in self.session.execute(
            select(CustomerMetric.customer_id, CustomerMetric.metric, CustomerMetric.value,
                   CustomerMetric.observed_at).where(CustomerMetric.customer_id.in_(ordered))
        ):
            metrics[m.customer_id][m.metric] = m.value
            observed[m.customer_id][m.metric] = m.observed_at
        for row in rows:
            known = {column.key: getattr(row, column.key) for column in PROFILE_COLUMNS}
            self.customers[row.id] = CustomerState(
                row.id, row.workspace_id, row.customer_since, metrics[row.id], observed[row.id], known=known,
                has_tenure_columns=row.customer_since is None or row.since_local is not None,
            )

    def lock_orders(self, keys: list[OrderKey], workspace_of: dict[uuid.UUID, uuid.UUID]) -> None:
        """Ledger rows for these orders, created empty if new, locked in id order."""
        if not keys:
            return
        now = utcnow()
        self.session.execute(
            upsert(self.session, Order.__table__, conflict=["connection_id", "external_id"]),
            [
                {
                    "workspace_id": workspace_of[conn], "connection_id": conn, "external_id": ext,
                    "currency": "", "total": Decimal("0"), "refunded": Decimal("0"), "refunds": {},
                    "line_items": [], "created_at": now, "updated_at": now,
                }
                for conn, ext in keys
            ],
        )
        orders = Order.__table__
        rows = self.session.execute(
            select(orders)
            .where(pairs_in(orders.c.connection_id, orders.c.external_id, keys))
            .order_by(orders.c.id)
            .with_for_update()
        ).all()
        late_customers = set()
        for order in rows:
            state = OrderState(
                external_id=order.external_id,
                currency=order.currency,
                total=order.total,
                paid=order.paid,
                cancelled=order.cancelled,
                has_snapshot=order.has_snapshot,
                refunds=dict(order.refunds or {}),
                placed_at=order.placed_at,
                source_updated_at=order.source_updated_at,
                line_items=tuple(order.line_items or ()),
            )
            self.orders[(order.connection_id, order.external_id)] = LedgerRow(order.id, order.customer_id, state)
            if order.customer_id and order.customer_id not in self.customers:
                late_customers.add(order.customer_id)
        # An order whose customer was set by another worker since we looked: lock it too.
        self.lock_customers(late_customers)

    def write(self, timezones: dict[uuid.UUID, str]) -> None:
        now = utcnow()
        if self.changed_orders:
            self.session.execute(
                update(Order),
                [
                    {
                        "id": row.id,
                        "customer_id": row.customer_id,
                        "currency": row.state.currency,
                        "total": row.state.total,
                        "refunded": row.state.refunded,
                        "refunds": row.state.refunds,
                        "paid": row.state.paid,
                        "cancelled": row.state.cancelled,
                        "counted": row.state.counted,
                        "has_snapshot": row.state.has_snapshot,
                        "placed_at": row.state.placed_at,
                        "source_updated_at": row.state.source_updated_at,
                        "line_items": list(row.state.line_items),
                        "updated_at": now,
                    }
                    for row in (self.orders[key] for key in sorted(self.changed_orders, key=str))
                ],
            )
        metric_rows = [
            {"customer_id": s.id, "metric": m, "value": s.metrics[m], "observed_at": s.observed.get(m),
             "updated_at": now}
            for s in self.customers.values()
            for m in sorted(s.changed_metrics)
        ]
        if metric_rows:
            self.session.execute(
                upsert(self.session, CustomerMetric.__table__, conflict=["customer_id", "metric"],
                       update=["value", "observed_at", "updated_at"]),
                metric_rows,
            )
        for state in self.customers.values():  # few per batch, and their columns differ
            if "customer_since" in state.profile or "timezone" in state.profile or not state.has_tenure_columns:
                zone = local_zone(state.known.get("timezone"), timezones.get(state.workspace_id, "UTC"))
                state.profile.update(tenure_columns(state.customer_since, zone))
            if state.profile:
                self.session.execute(
                    update(Customer).where(Customer.id == state.id).values(**state.profile, updated_at=now)
                )
