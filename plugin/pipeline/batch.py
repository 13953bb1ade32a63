"""Apply one claimed batch of inbox rows: ledger, counters, crossings — in the caller's transaction.

The caller holds the transaction; this module only reads and writes through ``session``. Work
per batch is a fixed number of set-based queries plus per-event Python, so an event costs the
same for a customer with 5,000 prior orders as for one with none.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from plugin.db import upsert_statement, utcnow
from plugin.engine.conditions import Facts, crossed
from plugin.events import (
    CanonicalEvent,
    ConnectionUninstalled,
    CustomerRef,
    CustomerUpdated,
    MetricChanged,
    OrderRefunded,
    OrderSnapshot,
)
from plugin.ledger.orders import OrderState, change_between, merge_refund, merge_snapshot
from plugin.milestones.award import Crossing
from plugin.milestones.definitions import enabled_definitions
from plugin.models import Connection, Customer, CustomerMetric, Order, Workspace
from plugin.pipeline import customers as customer_resolution
from plugin.pipeline.customers import RefKey
from webhooks.base import MalformedDelivery
from webhooks.registry import source_for

log = logging.getLogger(__name__)

ORDER_COUNT = "order_count"
LIFETIME_SPEND = "lifetime_spend"
ORDER_METRICS = frozenset({ORDER_COUNT, LIFETIME_SPEND})
# Written only when an event brings a different value, so a busy customer costs no extra UPDATE.
PROFILE_COLUMNS = (
    Customer.first_name, Customer.last_name, Customer.company_name, Customer.timezone,
    Customer.arr, Customer.health_score, Customer.owner_email,
)


@dataclass(frozen=True)
class Claimed:
    id: int
    workspace_id: uuid.UUID
    connection_id: uuid.UUID
    platform: str
    topic: str
    body: str


@dataclass
class BatchResult:
    processed: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    crossings: list[Crossing] = field(default_factory=list)


@dataclass
class _CustomerState:
    id: uuid.UUID
    workspace_id: uuid.UUID
    customer_since: datetime | None
    metrics: dict[str, Decimal]
    known: dict[str, Any] = field(default_factory=dict)  # profile columns as stored
    changed_metrics: set[str] = field(default_factory=set)
    profile: dict[str, Any] = field(default_factory=dict)


def normalize(deliveries: list[Claimed]) -> tuple[list[tuple[Claimed, list[CanonicalEvent]]], dict[int, str]]:
    parsed: list[tuple[Claimed, list[CanonicalEvent]]] = []
    failed: dict[int, str] = {}
    for delivery in deliveries:
        source = source_for(delivery.platform)
        if source is None:
            failed[delivery.id] = f"no webhook source for platform {delivery.platform!r}"
            continue
        try:
            parsed.append((delivery, source.normalize(delivery.topic, json.loads(delivery.body))))
        except (MalformedDelivery, ValueError, TypeError, KeyError) as exc:
            failed[delivery.id] = f"{type(exc).__name__}: {exc}"
    return parsed, failed


def process(session: Session, deliveries: list[Claimed]) -> BatchResult:
    parsed, failed = normalize(deliveries)
    result = BatchResult(failed=failed)
    if not parsed:
        return result
    applier = _Applier(session, parsed)
    applier.run()
    result.processed = [d.id for d, _ in parsed]
    result.crossings = applier.crossings
    return result


class _Applier:
    def __init__(self, session: Session, parsed: list[tuple[Claimed, list[CanonicalEvent]]]) -> None:
        self.session = session
        self.parsed = parsed
        self.crossings: list[Crossing] = []
        self.customers: dict[uuid.UUID, _CustomerState] = {}
        self.orders: dict[tuple[uuid.UUID, str], tuple[int, uuid.UUID | None, OrderState]] = {}
        self.changed_orders: dict[tuple[uuid.UUID, str], tuple[uuid.UUID | None, OrderState]] = {}
        self.awarded: set[tuple[uuid.UUID, uuid.UUID, int]] = set()

    # -- loading -------------------------------------------------------------------------------
    def run(self) -> None:
        workspace_ids = {d.workspace_id for d, _ in self.parsed}
        self.definitions = enabled_definitions(self.session, workspace_ids)
        self.timezones: dict[uuid.UUID, str] = {
            row.id: row.timezone
            for row in self.session.execute(select(Workspace.id, Workspace.timezone).where(Workspace.id.in_(workspace_ids)))
        }
        refs = self._customer_refs()
        self.resolved = customer_resolution.resolve(self.session, refs)
        order_keys = self._order_keys()
        known_order_customers = self._order_customers(order_keys)
        self._lock_customers(set(self.resolved.values()) | {c for c in known_order_customers.values() if c})
        self._lock_orders(order_keys)
        for delivery, events in self.parsed:
            for event in events:
                self._apply(delivery, event)
        self._write()

    def _customer_refs(self) -> list[tuple[RefKey, CustomerRef]]:
        refs = []
        for delivery, events in self.parsed:
            for event in events:
                ref = _customer_of(event)
                if ref is not None and ref.is_identifiable:
                    refs.append((RefKey.of(delivery.workspace_id, delivery.connection_id, ref), ref))
        return refs

    def _order_keys(self) -> list[tuple[uuid.UUID, str]]:
        keys = set()
        for delivery, events in self.parsed:
            for event in events:
                if isinstance(event, OrderSnapshot):
                    keys.add((delivery.connection_id, event.external_id))
                elif isinstance(event, OrderRefunded):
                    keys.add((delivery.connection_id, event.order_external_id))
        return sorted(keys, key=lambda k: (str(k[0]), k[1]))

    def _order_customers(self, keys: list[tuple[uuid.UUID, str]]) -> dict[tuple[uuid.UUID, str], uuid.UUID | None]:
        if not keys:
            return {}
        rows = self.session.execute(
            select(Order.connection_id, Order.external_id, Order.customer_id).where(
                tuple_(Order.connection_id, Order.external_id).in_(keys)
            )
        ).all()
        return {(r.connection_id, r.external_id): r.customer_id for r in rows}

    def _lock_customers(self, ids: set[uuid.UUID]) -> None:
        """Per-customer serialisation: rows locked in id order, so two workers never deadlock."""
        ids = ids - set(self.customers)
        if not ids:
            return
        rows = self.session.execute(
            select(Customer.id, Customer.workspace_id, Customer.customer_since, *PROFILE_COLUMNS)
            .where(Customer.id.in_(sorted(ids)))
            .order_by(Customer.id)
            .with_for_update()
        ).all()
        metrics: dict[uuid.UUID, dict[str, Decimal]] = defaultdict(dict)
        for m in self.session.execute(
            select(CustomerMetric.customer_id, CustomerMetric.metric, CustomerMetric.value).where(
                CustomerMetric.customer_id.in_(sorted(ids))
            )
        ):
            metrics[m.customer_id][m.metric] = m.value
        for row in rows:
            known = {column.key: getattr(row, column.key) for column in PROFILE_COLUMNS}
            self.customers[row.id] = _CustomerState(
                row.id, row.workspace_id, row.customer_since, metrics[row.id], known=known
            )

    def _lock_orders(self, keys: list[tuple[uuid.UUID, str]]) -> None:
        if not keys:
            return
        workspace_of = {d.connection_id: d.workspace_id for d, _ in self.parsed}
        self.session.execute(
            upsert_statement(self.session, Order.__table__)
            .values(
                [
                    {
                        "workspace_id": workspace_of[conn],
                        "connection_id": conn,
                        "external_id": ext,
                        "currency": "",
                        "total": Decimal("0"),
                        "refunded": Decimal("0"),
                        "refunds": {},
                        "line_items": [],
                        "created_at": utcnow(),
                        "updated_at": utcnow(),
                    }
                    for conn, ext in keys
                ]
            )
            .on_conflict_do_nothing(index_elements=["connection_id", "external_id"])
        )
        orders = Order.__table__
        rows = self.session.execute(
            select(orders)
            .where(tuple_(orders.c.connection_id, orders.c.external_id).in_(keys))
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
            self.orders[(order.connection_id, order.external_id)] = (order.id, order.customer_id, state)
            if order.customer_id and order.customer_id not in self.customers:
                late_customers.add(order.customer_id)
        # An order whose customer was set by another worker since we looked: lock it too.
        self._lock_customers(late_customers)

    # -- applying ------------------------------------------------------------------------------
    def _customer_id(self, delivery: Claimed, ref: CustomerRef | None) -> uuid.UUID | None:
        if ref is None or not ref.is_identifiable:
            return None
        return self.resolved.get(RefKey.of(delivery.workspace_id, delivery.connection_id, ref))

    def _apply(self, delivery: Claimed, event: CanonicalEvent) -> None:
        if isinstance(event, OrderSnapshot):
            customer_id = self._customer_id(delivery, event.customer)
            self._apply_order(delivery, event.external_id, customer_id, lambda s: merge_snapshot(s, event))
            if customer_id and event.customer:
                self._touch_profile(customer_id, event.customer)
        elif isinstance(event, OrderRefunded):
            self._apply_order(
                delivery, event.order_external_id, None, lambda s: merge_refund(s, event.order_external_id, event.refund)
            )
        elif isinstance(event, CustomerUpdated):
            customer_id = self._customer_id(delivery, event.customer)
            if customer_id:
                self._touch_profile(customer_id, event.customer, event)
        elif isinstance(event, MetricChanged):
            customer_id = self._customer_id(delivery, event.customer)
            if customer_id:
                self._apply_metric(customer_id, event)
        elif isinstance(event, ConnectionUninstalled):
            self.session.execute(
                update(Connection).where(Connection.id == delivery.connection_id).values(status="uninstalled")
            )

    def _apply_order(self, delivery: Claimed, external_id: str, customer_id: uuid.UUID | None, merge: Any) -> None:
        key = (delivery.connection_id, external_id)
        _, known_customer, old = self.orders[key]
        customer_id = known_customer or customer_id
        new = merge(old)
        self.orders[key] = (self.orders[key][0], customer_id, new)
        self.changed_orders[key] = (customer_id, new)
        state = self.customers.get(customer_id) if customer_id else None
        if state is None:
            return
        change = change_between(old, new)
        before = dict(state.metrics)
        check = dict(before)
        check[ORDER_COUNT] = before.get(ORDER_COUNT, Decimal(0)) + change.check.count
        check[LIFETIME_SPEND] = before.get(LIFETIME_SPEND, Decimal(0)) + change.check.spend
        state.metrics[ORDER_COUNT] = before.get(ORDER_COUNT, Decimal(0)) + change.delta.count
        state.metrics[LIFETIME_SPEND] = before.get(LIFETIME_SPEND, Decimal(0)) + change.delta.spend
        if change.delta.count or change.delta.spend:
            state.changed_metrics |= ORDER_METRICS
        if new.paid and new.placed_at and (state.customer_since is None or new.placed_at < state.customer_since):
            state.customer_since = new.placed_at
            state.profile["customer_since"] = new.placed_at
        when = new.placed_at or utcnow()
        self._evaluate(state, before, check, ORDER_METRICS, when, delivery.id, f"order {external_id}")

    def _apply_metric(self, customer_id: uuid.UUID, event: MetricChanged) -> None:
        state = self.customers[customer_id]
        before = dict(state.metrics)
        current = before.get(event.metric, Decimal(0))
        if event.increment is not None:
            value: Decimal | bool = Decimal(current) + event.increment
        elif isinstance(event.value, bool):
            value = event.value
        else:
            value = Decimal(event.value or 0)
        state.metrics[event.metric] = Decimal(int(value)) if isinstance(value, bool) else value
        state.changed_metrics.add(event.metric)
        after = dict(state.metrics)
        self._evaluate(state, before, after, frozenset({event.metric}), event.occurred_at, None, event.metric)

    def _touch_profile(self, customer_id: uuid.UUID, ref: CustomerRef, update_event: CustomerUpdated | None = None) -> None:
        state = self.customers.get(customer_id)
        if state is None:
            return
        for name in ("first_name", "last_name", "company_name", "timezone"):
            value = getattr(ref, name)
            if value and state.known.get(name) != value:
                state.profile[name] = state.known[name] = value
        since = (update_event.customer_since if update_event else None) or ref.created_at
        if since and (state.customer_since is None or since < state.customer_since):
            state.customer_since = since
            state.profile["customer_since"] = since
        if update_event is not None:
            for name in ("arr", "health_score", "owner_email"):
                value = getattr(update_event, name)
                if value is not None and state.known.get(name) != value:
                    state.profile[name] = state.known[name] = value

    def _evaluate(
        self,
        state: _CustomerState,
        before: dict[str, Decimal],
        check: dict[str, Decimal],
        changed: frozenset[str],
        when: datetime,
        delivery_id: int | None,
        source: str,
    ) -> None:
        definitions = [d for d in self.definitions.get(state.workspace_id, []) if d.metrics & changed]
        if not definitions:
            return
        local_day = when.astimezone(ZoneInfo(self.timezones.get(state.workspace_id) or "UTC")).date()
        facts_before = Facts(metrics=before, customer_since=state.customer_since, as_of=local_day)
        facts_check = Facts(metrics=check, customer_since=state.customer_since, as_of=local_day)
        for definition in definitions:
            for occurrence in crossed(definition.condition, facts_before, facts_check):
                key = (state.id, definition.id, occurrence.number)
                if key in self.awarded:
                    continue
                self.awarded.add(key)
                self.crossings.append(
                    Crossing(
                        workspace_id=state.workspace_id,
                        customer_id=state.id,
                        definition=definition,
                        occurrence=occurrence.number,
                        value=occurrence.value,
                        achieved_at=when,
                        customer_since=state.customer_since,
                        metrics={k: str(v) for k, v in check.items()},
                        source=source,
                    )
                )

    # -- writing -------------------------------------------------------------------------------
    def _write(self) -> None:
        now = utcnow()
        if self.changed_orders:
            self.session.execute(
                update(Order),
                [
                    {
                        "id": self.orders[key][0],
                        "customer_id": customer_id,
                        "currency": state.currency,
                        "total": state.total,
                        "refunded": state.refunded,
                        "refunds": state.refunds,
                        "paid": state.paid,
                        "cancelled": state.cancelled,
                        "counted": state.counted,
                        "has_snapshot": state.has_snapshot,
                        "placed_at": state.placed_at,
                        "source_updated_at": state.source_updated_at,
                        "line_items": list(state.line_items),
                        "updated_at": now,
                    }
                    for key, (customer_id, state) in self.changed_orders.items()
                ],
            )
        metric_rows = [
            {"customer_id": s.id, "metric": m, "value": s.metrics[m], "updated_at": now}
            for s in self.customers.values()
            for m in sorted(s.changed_metrics)
        ]
        if metric_rows:
            statement = upsert_statement(self.session, CustomerMetric.__table__).values(metric_rows)
            self.session.execute(
                statement.on_conflict_do_update(
                    index_elements=["customer_id", "metric"],
                    set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
                )
            )
        profiles = [{"id": s.id, **s.profile, "updated_at": now} for s in self.customers.values() if s.profile]
        for profile in profiles:  # few per batch, and their columns differ
            self.session.execute(update(Customer).where(Customer.id == profile.pop("id")).values(**profile))


def _customer_of(event: CanonicalEvent) -> CustomerRef | None:
    if isinstance(event, OrderSnapshot):
        return event.customer
    if isinstance(event, CustomerUpdated | MetricChanged):
        return event.customer
    return None
