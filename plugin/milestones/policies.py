"""The money rules a finance team can live with, applied as each recognition is planned.

Settings live on the workspace (``Workspace.settings``), all optional:

* ``money_paused`` (bool): the kill switch — store credit and discount codes are held;
* ``monthly_credit_budget`` ("500.00"): store credit planned this calendar month (workspace
  time) beyond it goes to review instead of being paid;
* ``customer_credit_cap`` ("100.00"): the same, per customer over all time;
* ``holdout`` ({"order-25": 10}): that share (%) of a definition's qualifying customers is
  recorded but not rewarded — the control group that measures retention lift.

A customer's own opt-outs (``Customer.properties["opt_out"]``: "email", "credit", "public")
are honoured for every connector; "public" (no public celebration) keeps the customer out of
social shout-outs and case studies (see :func:`wants_public_celebration`). Rules only ever hold
or cancel; they never add.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import Customer, Effect, Workspace
from plugin.models import effect as status

MONEY_KINDS = frozenset({"store_credit", "discount_code"})
COMMITTED = (status.PENDING, status.IN_FLIGHT, status.SUCCEEDED, status.HELD)
KILL_SWITCH_REASON = "money effects are paused (kill switch)"


@dataclass(frozen=True)
class Verdict:
    status: str
    reason: str
    needs_review: bool = False
    hold: str | None = None  # the effect's hold_reason: released by plugin.milestones.holds, not by review


def money_paused(workspace: Workspace) -> bool:
    """The kill switch: every money effect (credit, codes, a clawback) waits while it is on."""
    return bool((workspace.settings or {}).get("money_paused"))


def in_holdout(settings: dict[str, Any], definition_key: str, customer_id: uuid.UUID) -> bool:
    """Deterministic per (customer, definition): the same customer is always in or out."""
    share = (settings.get("holdout") or {}).get(definition_key)
    if not share:
        return False
    digest = hashlib.sha256(f"{customer_id}:{definition_key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 10_000 < Decimal(str(share)) * 100


def _money(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


class CreditLedger:
    """Store credit already committed, loaded once per batch and kept current as it plans."""

    def __init__(self, session: Session, workspace_ids: set[uuid.UUID], customer_ids: set[uuid.UUID]) -> None:
        self.session = session
        self._month: dict[uuid.UUID, Decimal] = {}
        self._customer: dict[uuid.UUID, Decimal] = {}
        self._customer_ids = customer_ids
        self._loaded_customers = False

    def _amount(self, payload: dict[str, Any]) -> Decimal:
        amount = ((payload or {}).get("request") or {}).get("amount") or {}
        return _money(amount.get("amount")) or Decimal(0)

    def month_total(self, workspace: Workspace, now: datetime) -> Decimal:
        if workspace.id not in self._month:
            local = now.astimezone(ZoneInfo(workspace.timezone or "UTC"))
            start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            payloads = self.session.execute(
                select(Effect.payload).where(
                    Effect.workspace_id == workspace.id, Effect.kind == "store_credit",
                    Effect.status.in_(COMMITTED), Effect.created_at >= start,
                )
            ).scalars()
            self._month[workspace.id] = sum((self._amount(p) for p in payloads), Decimal(0))
        return self._month[workspace.id]

    def customer_total(self, customer_id: uuid.UUID) -> Decimal:
        if not self._loaded_customers:
            from plugin.models import CustomerMilestone

            rows = self.session.execute(
                select(CustomerMilestone.customer_id, Effect.payload)
                .join(CustomerMilestone, CustomerMilestone.id == Effect.milestone_id)
                .where(CustomerMilestone.customer_id.in_(self._customer_ids), Effect.kind == "store_credit",
                       Effect.status.in_(COMMITTED))
            ).all()
            for row in rows:
                self._customer[row.customer_id] = self._customer.get(row.customer_id, Decimal(0)) + self._amount(
                    row.payload
                )
            self._loaded_customers = True
        return self._customer.get(customer_id, Decimal(0))

    def add(self, workspace_id: uuid.UUID, customer_id: uuid.UUID, amount: Decimal) -> None:
        self._month[workspace_id] = self._month.get(workspace_id, Decimal(0)) + amount
        self._customer[customer_id] = self._customer.get(customer_id, Decimal(0)) + amount


def opt_outs(customer: Customer) -> set[str]:
    return set((customer.properties or {}).get("opt_out") or ())


def wants_public_celebration(customer: Customer) -> bool:
    """False when the customer opted out of being celebrated in public: no social shout-out is
    suggested or requested, and they are never offered as a case-study candidate."""
    return "public" not in opt_outs(customer)


def judge(
    ledger: CreditLedger,
    workspace: Workspace,
    customer: Customer,
    kind: str,
    is_reward: bool,
    milestone_context: dict[str, Any],
    request: dict[str, Any] | None,
    now: datetime,
) -> Verdict | None:
    """What the rules say about one planned effect; None when they have nothing to say."""
    settings = workspace.settings or {}
    opt_out = opt_outs(customer)
    if kind == "email" and "email" in opt_out:
        return Verdict(status.CANCELLED, "the customer opted out of celebration emails")
    if kind in MONEY_KINDS and "credit" in opt_out:
        return Verdict(status.CANCELLED, "the customer opted out of credit and discounts")
    if is_reward and milestone_context.get("holdout"):
        return Verdict(status.CANCELLED, "held out: recorded, not rewarded, to measure retention lift")
    if kind in MONEY_KINDS and money_paused(workspace):
        return Verdict(status.HELD, KILL_SWITCH_REASON, hold=status.KILL_SWITCH)
    if kind != "store_credit" or not request:
        return None
    amount = _money((request.get("amount") or {}).get("amount")) or Decimal(0)
    budget = _money(settings.get("monthly_credit_budget"))
    if budget is not None and ledger.month_total(workspace, now) + amount > budget:
        return Verdict(status.HELD, f"would exceed the monthly credit budget of {budget}", needs_review=True)
    cap = _money(settings.get("customer_credit_cap"))
    if cap is not None and ledger.customer_total(customer.id) + amount > cap:
        return Verdict(status.HELD, f"would exceed the per-customer credit cap of {cap}", needs_review=True)
    ledger.add(workspace.id, customer.id, amount)
    return None
