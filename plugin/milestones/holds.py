"""Releasing effects held for something other than the review queue (``Effect.hold_reason``).

* ``credit_hold`` (:mod:`plugin.milestones.credit_hold`): due at ``next_attempt_at``; paid only if
  the milestone still stands and its qualifying order still counts, else cancelled saying why. A
  milestone still waiting for review keeps the reward for the reviewer (approving releases it);
  approving never releases a credit hold before its date.
* ``kill_switch``: the workspace paused money effects; released once it no longer is.
* ``settling`` (:mod:`plugin.milestones.clawback`): a debit waiting for the credit it takes back,
  or the claw-back notice waiting for its debits.

:func:`release` runs from the sweeper (``milestones scheduler``, every few seconds) and when an
admin approves a milestone. Rows are locked ``FOR UPDATE SKIP LOCKED``: two schedulers never
release the same row, and a row being decided elsewhere is simply looked at next time.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.milestones import clawback
from plugin.milestones.planning import KINDS
from plugin.milestones.policies import KILL_SWITCH_REASON, money_paused
from plugin.models import CustomerMilestone, Effect, Order, Workspace
from plugin.models import effect as status

BATCH = 500
STANDING = ("active", "pending_review")
PENDING_REVIEW = "pending_review"
UNSETTLED = (status.PENDING, status.IN_FLIGHT, status.HELD)


def release(session: Session, now: datetime, *, milestone_id: uuid.UUID | None = None) -> int:
    """Release what is due at ``now`` (of one milestone, or all), in the caller's transaction.
    Returns how many effects became pending."""
    return (
        _credit_holds(session, now, milestone_id)
        + _kill_switch(session, milestone_id)
        + _settling(session, milestone_id)
    )


def _held(reason: str, milestone_id: uuid.UUID | None, *where: Any) -> Any:
    query = (
        select(Effect, CustomerMilestone, Workspace)
        .join(CustomerMilestone, CustomerMilestone.id == Effect.milestone_id)
        .join(Workspace, Workspace.id == Effect.workspace_id)
        .where(Effect.status == status.HELD, Effect.hold_reason == reason, *where)
    )
    if milestone_id is not None:
        query = query.where(Effect.milestone_id == milestone_id)
    return query.order_by(Effect.next_attempt_at, Effect.id).limit(BATCH)


def _credit_holds(session: Session, now: datetime, milestone_id: uuid.UUID | None) -> int:
    rows = session.execute(
        _held(status.CREDIT_HOLD, milestone_id, Effect.next_attempt_at <= now)
        .add_columns(Order)
        .outerjoin(Order, Order.id == CustomerMilestone.order_id)
        .with_for_update(of=Effect, skip_locked=True)
    ).tuples().all()
    released = 0
    for effect, milestone, workspace, order in rows:
        days = ((effect.payload or {}).get("hold") or {}).get("days")
        hold = f"the {days}-day credit hold" if days else "the credit hold"
        if milestone.reversed_at is not None or milestone.status not in STANDING:
            _cancel(effect, f"not paid: the milestone was {'reversed' if milestone.reversed_at else milestone.status} "
                            f"during {hold}")
        elif order is not None and not order.counted:
            undone = "cancelled" if order.cancelled else "refunded"
            _cancel(effect, f"not paid: the qualifying order {order.external_id} was {undone} within {hold}")
        elif money_paused(workspace):
            effect.hold_reason, effect.last_error = status.KILL_SWITCH, KILL_SWITCH_REASON
        elif milestone.status == PENDING_REVIEW:
            effect.hold_reason, effect.last_error = None, f"{hold} is over; waits for the review"
        else:
            released += _pending(effect)
    return released


def _kill_switch(session: Session, milestone_id: uuid.UUID | None) -> int:
    """Held by the kill switch in workspaces that turned it off since."""
    workspaces = session.execute(
        select(Workspace).where(Workspace.id.in_(
            select(Effect.workspace_id).where(Effect.status == status.HELD, Effect.hold_reason == status.KILL_SWITCH)
        ))
    ).scalars().all()
    resumed = [w.id for w in workspaces if not money_paused(w)]
    if not resumed:
        return 0
    rows = session.execute(
        _held(status.KILL_SWITCH, milestone_id, Effect.workspace_id.in_(resumed))
        .with_for_update(of=Effect, skip_locked=True)
    ).tuples().all()
    released = 0
    for effect, milestone, _ in rows:
        is_reward = effect.kind in KINDS and KINDS[effect.kind].is_reward
        if is_reward and milestone.status not in STANDING:
            _cancel(effect, f"not paid: the milestone is {milestone.status}")
        elif is_reward and milestone.status == PENDING_REVIEW:
            effect.hold_reason, effect.last_error = None, "money effects resumed; waits for the review"
        else:
            released += _pending(effect)
    return released


def _settling(session: Session, milestone_id: uuid.UUID | None) -> int:
    rows = session.execute(
        _held(status.SETTLING, milestone_id).with_for_update(of=Effect, skip_locked=True)
    ).tuples().all()
    if not rows:
        return 0
    ids = {i for effect, _, _ in rows for i in (effect.payload or {}).get("waits_for") or ()}
    awaited = {e.id: e for e in session.execute(select(Effect).where(Effect.id.in_(ids))).scalars()} if ids else {}
    released = 0
    for effect, _, workspace in rows:
        waits = [awaited[i] for i in (effect.payload or {}).get("waits_for") or () if i in awaited]
        if any(w.status in UNSETTLED for w in waits):
            continue
        if effect.kind == clawback.DEBIT:
            clawback.settle_debit(effect, waits[0] if waits else None, money_paused(workspace))
        else:
            clawback.settle_notice(effect, waits)
        released += effect.status == status.PENDING
    return released


def _cancel(effect: Effect, reason: str) -> None:
    effect.status, effect.hold_reason, effect.last_error = status.CANCELLED, None, reason[:2000]


def _pending(effect: Effect) -> int:
    """Due for the effect runner right away (the wall clock's now, whatever ``now`` was judged at)."""
    effect.status, effect.hold_reason, effect.last_error = status.PENDING, None, None
    effect.next_attempt_at, effect.attempts = utcnow(), 0
    return 1
