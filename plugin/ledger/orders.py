"""Merging what deliveries say about one order, so that arrival order never matters.

Shopify (and every store) delivers the same order several times — created, paid, updated,
cancelled, refunded — duplicated, late and out of order. Each delivery is merged into the
ledger row with rules that are commutative and idempotent:

* ``paid`` and ``cancelled`` are sticky: once any delivery shows them, they stay;
* refunds are a map keyed by refund id, so a refund seen in ``refunds/create`` and again in an
  ``orders/updated`` payload counts once;
* descriptive fields (total, line items, customer) come from the newest snapshot by the
  platform's ``updated_at``.

An order *counts* (adds 1 to ``order_count`` and its net amount to ``lifetime_spend``) when it
was paid, is not cancelled and is not fully refunded.

Milestone detection uses the order's *peak* contribution the first time it is seen paid: the
full total, before its own refunds or cancellation. Replayed in the natural order, a refund or
cancellation arrives after the payment and the customer briefly had that spend; seen in any
other order, the same peak is used, so "paid before create" and "cancelled before paid" award
exactly what the natural order awards.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from plugin.events import LineItem, OrderSnapshot, Refund

ZERO = Decimal("0")


@dataclass(frozen=True)
class Contribution:
    count: int = 0
    spend: Decimal = ZERO

    def minus(self, other: Contribution) -> Contribution:
        return Contribution(self.count - other.count, self.spend - other.spend)


@dataclass(frozen=True)
class OrderState:
    external_id: str
    currency: str = ""
    total: Decimal = ZERO
    paid: bool = False
    cancelled: bool = False
    has_snapshot: bool = False
    refunds: dict[str, str] = field(default_factory=dict)  # refund id -> amount (str of Decimal)
    placed_at: datetime | None = None
    source_updated_at: datetime | None = None
    line_items: tuple[dict[str, Any], ...] = ()

    @property
    def refunded(self) -> Decimal:
        return sum((Decimal(v) for v in self.refunds.values()), ZERO)

    @property
    def counted(self) -> bool:
        return self.has_snapshot and self.paid and not self.cancelled and self.refunded < self.total

    def contribution(self) -> Contribution:
        if not self.counted:
            return Contribution()
        return Contribution(1, self.total - self.refunded)

    def peak(self) -> Contribution:
        """What the order contributed at its best moment: paid in full, before any undoing."""
        if not (self.has_snapshot and self.paid):
            return Contribution()
        return Contribution(1, self.total)


def _line_items(items: tuple[LineItem, ...]) -> tuple[dict[str, Any], ...]:
    return tuple(
        {"product_id": i.product_id, "title": i.title, "quantity": i.quantity, "price": str(i.price)}
        for i in items
    )


def _with_refunds(refunds: dict[str, str], new: tuple[Refund, ...]) -> dict[str, str]:
    merged = dict(refunds)
    for refund in new:
        merged[refund.refund_id] = str(refund.amount)
    return merged


def merge_snapshot(state: OrderState | None, snapshot: OrderSnapshot) -> OrderState:
    state = state or OrderState(external_id=snapshot.external_id)
    newer = state.source_updated_at is None or snapshot.updated_at >= state.source_updated_at
    merged = replace(
        state,
        paid=state.paid or snapshot.paid,
        cancelled=state.cancelled or snapshot.cancelled,
        has_snapshot=True,
        refunds=_with_refunds(state.refunds, snapshot.refunds),
    )
    if newer:
        merged = replace(
            merged,
            currency=snapshot.currency,
            total=snapshot.total,
            placed_at=snapshot.placed_at,
            source_updated_at=snapshot.updated_at,
            line_items=_line_items(snapshot.line_items),
        )
    return merged


def merge_refund(state: OrderState | None, order_external_id: str, refund: Refund) -> OrderState:
    state = state or OrderState(external_id=order_external_id)
    return replace(state, refunds=_with_refunds(state.refunds, (refund,)))


@dataclass(frozen=True)
class OrderChange:
    """The effect of one delivery on the customer's counters."""

    delta: Contribution
    # Added to the counters *before* this change to get the values milestones are checked at.
    check: Contribution


def change_between(old: OrderState | None, new: OrderState) -> OrderChange:
    before = old.contribution() if old else Contribution()
    delta = new.contribution().minus(before)
    first_time_paid = not (old and old.has_snapshot and old.paid) and new.has_snapshot and new.paid
    check = new.peak() if first_time_paid else delta
    return OrderChange(delta=delta, check=check)
