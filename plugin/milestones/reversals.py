"""Refunds and cancellations after a milestone: what they do to it, once, in any arrival order.

The ledger already makes a cancelled or fully refunded order stop counting and a refund reduce
spend (:mod:`plugin.ledger.orders`), and milestones are awarded at an order's *peak*. When the
counters then fall back below a milestone the customer was awarded — the 10th order cancelled
(9 orders left), $1,000 spent refunded down to $900 — the milestone is *reversed*, and its
definition's ``refund_policy`` says what that means:

* ``keep`` (the default): its rewards stand; its history says what happened;
* ``claw_back``: rewards not given yet are cancelled, and every store credit already applied is
  taken back — one ``store_credit_debit`` effect per credit (Shopify ``storeCreditAccountDebit``,
  WooCommerce: the coupon voided if unused); the CSM is told about any that cannot be;
* ``revoke``: the milestone becomes ``revoked``, rewards not given yet are cancelled (those
  given stay), and the CSM gets a Slack message saying what happened and why.

Whatever the policy, money waiting out a credit hold (:mod:`plugin.milestones.holds`) is
cancelled: the hold exists so that an order that does not stay is not rewarded.

Detection compares state, not events. After each batch, the customers whose orders it undid
(cancelled, refunded) have their standing milestones on order metrics checked against their
counters *now*, in the batch's transaction (their rows are locked). So a duplicate refund finds
the milestone already reversed (``reversed_at``) and changes nothing, and a refund delivered
before its order's payment reverses the milestone that payment awards just as one delivered
after it does. Effect keys are derived from the credit they undo, so nothing is debited twice.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.engine.conditions import (
    Condition,
    Facts,
    InvalidCondition,
    MetricCondition,
    TenureCondition,
    crossed,
    holds,
    metrics_of,
    parse_condition,
)
from plugin.ledger.orders import OrderState
from plugin.milestones import clawback
from plugin.milestones.tenure import local_zone
from plugin.milestones.wording import format_money, format_number
from plugin.models import Customer, CustomerMetric, CustomerMilestone, MilestoneDefinition, Workspace

KEEP, CLAW_BACK, REVOKE = "keep", "claw_back", "revoke"
REFUND_POLICIES = (KEEP, CLAW_BACK, REVOKE)
MAX_HOLD_DAYS = 365
REVOKED = "revoked"
STANDING = ("active", "pending_review")  # historical and rejected milestones rewarded nothing
ORDER_METRICS = frozenset({"order_count", "lifetime_spend"})


@dataclass(frozen=True)
class Undoing:
    """An order of a batch that no longer counts in full: cancelled, or (partly) refunded."""

    customer_id: uuid.UUID
    order_id: int
    external_id: str
    cancelled: bool
    refunded: Decimal
    total: Decimal
    currency: str

    @classmethod
    def of(cls, customer_id: uuid.UUID, order_id: int, state: OrderState) -> Undoing:
        return cls(customer_id, order_id, state.external_id, state.cancelled, state.refunded, state.total,
                   state.currency)

    def describe(self) -> str:
        """"order 1010 was cancelled", "… was refunded in full", "… was refunded $100 of $1,000"."""
        in_full = self.refunded >= self.total
        if self.cancelled:
            return f"order {self.external_id} was cancelled" + (" and refunded in full" if in_full else "")
        if in_full:
            return f"order {self.external_id} was refunded in full"
        return f"order {self.external_id} was refunded {self._money(self.refunded)} of {self._money(self.total)}"

    def _money(self, amount: Decimal) -> str:
        return format_money(amount, self.currency) if self.currency else f"{amount:,.2f}"


@dataclass(frozen=True)
class Reversal:
    """One milestone undone: why (the orders), where the counters stand, and the policy applied."""

    milestone: CustomerMilestone
    customer: Customer
    currency: str
    policy: str
    why: str
    standing: str
    at: datetime


def reverse(session: Session, undone: list[Undoing]) -> list[uuid.UUID]:
    """Reverse the milestones these undone orders took customers back below; returns their ids."""
    if not undone:
        return []
    by_customer: dict[uuid.UUID, list[Undoing]] = defaultdict(list)
    for undoing in undone:
        if undoing not in by_customer[undoing.customer_id]:
            by_customer[undoing.customer_id].append(undoing)
    rows = session.execute(
        select(CustomerMilestone, MilestoneDefinition, Customer, Workspace)
        .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
        .join(Customer, Customer.id == CustomerMilestone.customer_id)
        .join(Workspace, Workspace.id == CustomerMilestone.workspace_id)
        .where(
            CustomerMilestone.customer_id.in_(sorted(by_customer)),
            CustomerMilestone.reversed_at.is_(None),
            CustomerMilestone.status.in_(STANDING),
        )
        .order_by(CustomerMilestone.id)
        .with_for_update(of=CustomerMilestone)  # an admin approving it at this moment waits for us
    ).tuples().all()
    conditions = {d.id: c for _, d, _, _ in rows if (c := _order_condition(d)) is not None}
    if not conditions:
        return []
    metrics = _metrics(session, {m.customer_id for m, d, _, _ in rows if d.id in conditions})
    now = utcnow()
    reversed_ids = []
    for milestone, definition, customer, workspace in rows:
        condition = conditions.get(definition.id)
        if condition is None:
            continue
        facts = _facts(customer, workspace, metrics[customer.id], now)
        if _reached(condition, facts) >= milestone.occurrence:
            continue
        orders = sorted(by_customer[customer.id], key=lambda u: u.order_id != milestone.order_id)
        reversal = Reversal(
            milestone=milestone, customer=customer, currency=workspace.currency,
            policy=definition.refund_policy if definition.refund_policy in REFUND_POLICIES else KEEP,
            why="; ".join(u.describe() for u in orders),
            standing=_standing(condition, milestone, metrics[customer.id], workspace.currency),
            at=now,
        )
        _apply(session, reversal, workspace)
        reversed_ids.append(milestone.id)
    session.flush()
    return reversed_ids


def _apply(session: Session, reversal: Reversal, workspace: Workspace) -> None:
    milestone = reversal.milestone
    milestone.reversed_at = reversal.at
    milestone.context = {
        **(milestone.context or {}),
        "reversal": {"at": reversal.at.isoformat(), "policy": reversal.policy, "why": reversal.why,
                     "standing": reversal.standing},
    }
    outcome = [clawback.cancel_credit_hold(session, milestone.id, reversal.why)]
    if reversal.policy == CLAW_BACK:
        outcome.append(clawback.cancel_unpaid(session, milestone.id, f"clawed back: {reversal.why}"))
        outcome.append(clawback.plan_debits(session, reversal, workspace))
    elif reversal.policy == REVOKE:
        milestone.status, milestone.revoked_at = REVOKED, reversal.at
        outcome.append(clawback.cancel_unpaid(session, milestone.id, f"milestone revoked: {reversal.why}"))
        outcome.append(clawback.notify_revoked(session, reversal))
    else:
        outcome.append("rewards kept (refund policy: keep)")
    said = "; ".join(o for o in outcome if o)
    _note(milestone, f"Reversed on {reversal.at.date().isoformat()}: {reversal.why} — {reversal.standing}. {said}.")


def _order_condition(definition: MilestoneDefinition) -> Condition | None:
    """The definition's condition when an order can undo it (it reads order_count or spend)."""
    try:
        condition = parse_condition(definition.condition)
    except InvalidCondition:
        return None
    return condition if metrics_of(condition) & ORDER_METRICS else None


def _metrics(session: Session, customer_ids: set[uuid.UUID]) -> dict[uuid.UUID, dict[str, Decimal]]:
    found: dict[uuid.UUID, dict[str, Decimal]] = defaultdict(dict)
    for row in session.execute(
        select(CustomerMetric.customer_id, CustomerMetric.metric, CustomerMetric.value)
        .where(CustomerMetric.customer_id.in_(sorted(customer_ids)))
    ):
        found[row.customer_id][row.metric] = row.value
    return found


def _facts(customer: Customer, workspace: Workspace, metrics: dict[str, Decimal], now: datetime) -> Facts:
    zone = local_zone(customer.timezone, workspace.timezone or "UTC")
    since = customer.customer_since.astimezone(zone) if customer.customer_since else None
    return Facts(metrics=metrics, customer_since=since, as_of=now.astimezone(zone).date())


def _reached(condition: Condition, facts: Facts) -> int:
    """How many occurrences of ``condition`` ``facts`` stand at (a milestone stands while its
    occurrence number is at most this)."""
    met = holds(condition, facts)
    if isinstance(condition, MetricCondition | TenureCondition) and not (
        isinstance(condition, MetricCondition) and condition.op == "eq"
    ):
        nothing = Facts(metrics={}, customer_since=None, as_of=facts.as_of)
        return max((o.number for o in crossed(condition, nothing, facts)), default=1 if met else 0)
    return 1 if met else 0


def _standing(condition: Condition, milestone: CustomerMilestone, metrics: dict[str, Decimal], currency: str) -> str:
    """Where the counters are now, in words: "order count is now 9, below 10"."""
    if isinstance(condition, MetricCondition) and not isinstance(condition.value, bool):
        label = condition.metric.replace("_", " ").replace(".", " ")
        now, threshold = str(metrics.get(condition.metric, Decimal(0))), milestone.milestone_value or "0"
        if condition.metric == "lifetime_spend":
            return f"{label} is now {format_money(now, currency)}, below {format_money(threshold, currency)}"
        return f"{label} is now {format_number(now)}, below {format_number(threshold)}"
    read = ", ".join(f"{m.replace('_', ' ')} {format_number(str(metrics.get(m, 0)))}" for m in sorted(metrics_of(condition)))
    return f"the condition no longer holds ({read})"


def _note(milestone: CustomerMilestone, line: str) -> None:
    milestone.notes = f"{milestone.notes}\n{line}" if milestone.notes else line

