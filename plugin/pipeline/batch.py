"""Apply one claimed batch of inbox rows: ledger, counters, crossings — in the caller's transaction.

The caller holds the transaction; this module only reads and writes through ``session``. Work
per batch is a fixed number of set-based queries (:mod:`plugin.pipeline.state`) plus per-event
Python, so an event costs the same for a customer with 5,000 prior orders as for one with none.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.engine.conditions import Facts, crossed
from plugin.events import (
    CanonicalEvent,
    ConnectionUninstalled,
    CustomerDataRequested,
    CustomerRedactRequested,
    CustomerRef,
    CustomerUpdated,
    MetricChanged,
    OrderRefunded,
    OrderSnapshot,
    ShopRedactRequested,
)
from plugin.ledger.orders import OrderState, change_between, merge_refund, merge_snapshot
from plugin.milestones.award import Crossing
from plugin.milestones.definitions import enabled_definitions
from plugin.milestones.reversals import Undoing
from plugin.models import Connection, Workspace
from plugin.pipeline import crm_properties, privacy
from plugin.pipeline import customers as customer_resolution
from plugin.pipeline.customers import RefKey
from plugin.pipeline.normalize import Claimed, Parsed, normalize
from plugin.pipeline.state import BatchState, CustomerState, OrderKey

__all__ = ["BatchResult", "Claimed", "process"]

ORDER_COUNT = "order_count"
LIFETIME_SPEND = "lifetime_spend"
ORDER_METRICS = frozenset({ORDER_COUNT, LIFETIME_SPEND})
ZERO = Decimal(0)


@dataclass
class BatchResult:
    processed: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    crossings: list[Crossing] = field(default_factory=list)
    undone: list[Undoing] = field(default_factory=list)  # orders cancelled or refunded: reversals.reverse


def process(session: Session, deliveries: list[Claimed]) -> BatchResult:
    parsed, failed = normalize(deliveries)
    result = BatchResult(failed=failed)
    if not parsed:
        return result
    applier = _Applier(session, parsed)
    applier.run()
    result.processed = [d.id for d, _ in parsed]
    result.crossings = applier.crossings
    result.undone = applier.undone
    return result


class _Applier:
    def __init__(self, session: Session, parsed: Parsed) -> None:
        self.session = session
        self.parsed = parsed
        self.state = BatchState(session)
        self.crossings: list[Crossing] = []
        self.undone: list[Undoing] = []
        self.awarded: set[tuple[uuid.UUID, uuid.UUID, int]] = set()

    def run(self) -> None:
        # CRM readings ("crm.<property>") become metrics and context by the connection's mapping.
        self.parsed = crm_properties.apply(self.session, self.parsed)
        workspace_ids = {d.workspace_id for d, _ in self.parsed}
        self.definitions = enabled_definitions(self.session, workspace_ids)
        self.timezones: dict[uuid.UUID, str] = {
            row.id: row.timezone
            for row in self.session.execute(select(Workspace.id, Workspace.timezone).where(Workspace.id.in_(workspace_ids)))
        }
        self.resolved = customer_resolution.resolve(self.session, self._customer_refs())
        order_keys = self._order_keys()
        self.state.lock_customers(set(self.resolved.values()) | self.state.order_customers(order_keys))
        if set(self.resolved.values()) - set(self.state.customers):
            # Merged into another customer by a concurrent batch after we resolved: resolve again.
            self.resolved = customer_resolution.resolve(self.session, self._customer_refs())
            self.state.lock_customers(set(self.resolved.values()))
        self.state.lock_orders(order_keys, {d.connection_id: d.workspace_id for d, _ in self.parsed})
        for delivery, events in self.parsed:
            for event in events:
                self._apply(delivery, event)
        self.state.write(self.timezones)

    def _customer_refs(self) -> list[tuple[RefKey, CustomerRef]]:
        refs = []
        for delivery, events in self.parsed:
            for event in events:
                ref = _customer_of(event)
                if ref is not None and ref.is_identifiable:
                    refs.append((RefKey.of(delivery.workspace_id, delivery.connection_id, ref), ref))
        return refs

    def _order_keys(self) -> list[OrderKey]:
        keys = set()
        for delivery, events in self.parsed:
            for event in events:
                if isinstance(event, OrderSnapshot):
                    keys.add((delivery.connection_id, event.external_id))
                elif isinstance(event, OrderRefunded):
                    keys.add((delivery.connection_id, event.order_external_id))
        return sorted(keys, key=lambda k: (str(k[0]), k[1]))

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
        elif isinstance(event, CustomerRedactRequested):
            privacy.redact_customer(self.session, delivery.connection_id, event.customer, event.order_external_ids)
        elif isinstance(event, CustomerDataRequested):
            privacy.record_data_request(self.session, delivery.connection_id, event.customer, event.request_id)
        elif isinstance(event, ShopRedactRequested):
            privacy.redact_connection(self.session, delivery.connection_id)

    def _apply_order(
        self,
        delivery: Claimed,
        external_id: str,
        customer_id: uuid.UUID | None,
        merge: Callable[[OrderState | None], OrderState],
    ) -> None:
        row = self.state.orders[(delivery.connection_id, external_id)]
        old = row.state
        row.customer_id = row.customer_id or customer_id
        row.state = merge(old)
        self.state.changed_orders.add((delivery.connection_id, external_id))
        state = self.state.customers.get(row.customer_id) if row.customer_id else None
        if state is None:
            return
        new = row.state
        if new.paid and new.peak() != new.contribution():
            self.undone.append(Undoing.of(state.id, row.id, new))
        change = change_between(old, new)
        before = dict(state.metrics)
        check = dict(before)
        check[ORDER_COUNT] = before.get(ORDER_COUNT, ZERO) + change.check.count
        check[LIFETIME_SPEND] = before.get(LIFETIME_SPEND, ZERO) + change.check.spend
        state.metrics[ORDER_COUNT] = before.get(ORDER_COUNT, ZERO) + change.delta.count
        state.metrics[LIFETIME_SPEND] = before.get(LIFETIME_SPEND, ZERO) + change.delta.spend
        if change.delta.count or change.delta.spend:
            state.changed_metrics |= ORDER_METRICS
        if new.paid and new.placed_at:
            self._extend_tenure(state, new.placed_at)
        self._evaluate(state, before, check, ORDER_METRICS, new.placed_at or utcnow(), f"order {external_id}", row.id)

    def _apply_metric(self, customer_id: uuid.UUID, event: MetricChanged) -> None:
        state = self.state.customers[customer_id]
        before = dict(state.metrics)
        seen = state.observed.get(event.metric)
        if event.increment is not None:
            if seen is not None and event.occurred_at <= seen:
                return  # already inside the absolute reading taken at `seen`
            state.metrics[event.metric] = before.get(event.metric, ZERO) + event.increment
        else:
            if seen is not None and event.occurred_at < seen:
                return  # an older reading arriving late never moves a counter backwards
            value = event.value
            state.metrics[event.metric] = Decimal(int(value)) if isinstance(value, bool) else Decimal(value or 0)
            state.observed[event.metric] = event.occurred_at
        state.changed_metrics.add(event.metric)
        self._evaluate(state, before, dict(state.metrics), frozenset({event.metric}), event.occurred_at, event.metric)

    def _touch_profile(self, customer_id: uuid.UUID, ref: CustomerRef, update_event: CustomerUpdated | None = None) -> None:
        state = self.state.customers.get(customer_id)
        if state is None:
            return
        for name in ("first_name", "last_name", "company_name", "timezone"):
            value = getattr(ref, name)
            if value and state.known.get(name) != value:
                state.profile[name] = state.known[name] = value
        since = (update_event.customer_since if update_event else None) or ref.created_at
        if since:
            self._extend_tenure(state, since)
        if update_event is not None:
            for name in ("arr", "health_score", "owner_email"):
                value = getattr(update_event, name)
                if value is not None and state.known.get(name) != value:
                    state.profile[name] = state.known[name] = value

    @staticmethod
    def _extend_tenure(state: CustomerState, since: datetime) -> None:
        """"Customer since" is the earliest of account creation and the first paid order."""
        if state.customer_since is None or since < state.customer_since:
            state.customer_since = since
            state.profile["customer_since"] = since

    def _evaluate(
        self,
        state: CustomerState,
        before: dict[str, Decimal],
        check: dict[str, Decimal],
        changed: frozenset[str],
        when: datetime,
        source: str,
        order_id: int | None = None,
    ) -> None:
        definitions = [d for d in self.definitions.get(state.workspace_id, []) if d.metrics & changed]
        if not definitions:
            return
        zone = ZoneInfo(self.timezones.get(state.workspace_id) or "UTC")
        local_day = when.astimezone(zone).date()
        # Tenure counts whole local days: both ends in the workspace's timezone.
        since = state.customer_since.astimezone(zone) if state.customer_since else None
        facts_before = Facts(metrics=before, customer_since=since, as_of=local_day)
        facts_check = Facts(metrics=check, customer_since=since, as_of=local_day)
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
                        order_id=order_id,
                    )
                )


def _customer_of(event: CanonicalEvent) -> CustomerRef | None:
    """The customer an event is about, to resolve (and create). Privacy requests never create one."""
    if isinstance(event, OrderSnapshot | CustomerUpdated | MetricChanged):
        return event.customer
    return None
