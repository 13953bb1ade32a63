"""RHF's manual review: a high-value milestone's rewards wait (``held``) until an admin decides.

Approving makes the milestone active and releases its held effects — rewards to ``pending``
for the effect runner, tasks for a person to ``open_task``. Rejecting cancels them and records
why. The milestone row is locked for the decision, so two admins clicking at once decide once:
the second finds it no longer pending review (409).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from plugin.admin.customers import favourites_of, metrics_of
from plugin.admin.effect_words import EffectLine, describe
from plugin.admin.errors import Conflict, NotFound
from plugin.db import utcnow
from plugin.milestones import holds
from plugin.milestones.award import ACTIVE, PENDING_REVIEW
from plugin.models import Customer, CustomerMilestone, Effect, MilestoneDefinition, Workspace
from plugin.models import effect as effect_status

REJECTED = "rejected"


@dataclass(frozen=True)
class Decision:
    milestone: CustomerMilestone
    released: int  # effects now pending or open tasks (approve) / cancelled (reject)
    runnable: bool  # whether the effect runner has new work (nudge it after commit)


@dataclass
class Review:
    """A milestone waiting for review with what an admin decides by: the customer, the held
    rewards (with their amounts) and why it waits."""

    milestone: CustomerMilestone
    definition: MilestoneDefinition
    customer: Customer
    held: list[EffectLine] = field(default_factory=list)
    others: list[EffectLine] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, Decimal] = field(default_factory=dict)
    favourites: list[str] = field(default_factory=list)

    @property
    def held_money(self) -> list[tuple[str, Decimal]]:
        """The held credit and fixed-amount codes, per currency."""
        totals: dict[str, Decimal] = {}
        for line in self.held:
            if line.amount is not None and line.currency and line.kind in ("store_credit", "discount_code"):
                totals[line.currency] = totals.get(line.currency, Decimal(0)) + line.amount
        return sorted(totals.items())


def waiting(session: Session, workspace: Workspace, *, page: int = 1, per_page: int = 20) -> tuple[list[Review], int]:
    """One page of the queue, oldest first (that customer has waited longest), and its total."""
    where = (CustomerMilestone.workspace_id == workspace.id, CustomerMilestone.status == PENDING_REVIEW)
    total = int(session.scalar(select(func.count()).select_from(CustomerMilestone).where(*where)) or 0)
    found = session.execute(
        select(CustomerMilestone, MilestoneDefinition, Customer)
        .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
        .join(Customer, Customer.id == CustomerMilestone.customer_id)
        .where(*where)
        .order_by(CustomerMilestone.achieved_at, CustomerMilestone.id)
        .limit(per_page).offset((page - 1) * per_page)
    ).tuples().all()
    reviews = {m.id: Review(m, d, c) for m, d, c in found}
    if not reviews:
        return [], total
    customer_ids = [c.id for _, _, c in found]
    metrics, favourites = metrics_of(session, customer_ids), favourites_of(session, customer_ids)
    for effect in session.execute(
        select(Effect).where(Effect.milestone_id.in_(list(reviews))).order_by(Effect.id)
    ).scalars():
        review = reviews[effect.milestone_id]
        line = describe(effect, workspace.currency)
        (review.held if effect.status == effect_status.HELD else review.others).append(line)
        if effect.status == effect_status.HELD and effect.last_error and effect.last_error not in review.reasons:
            review.reasons.append(effect.last_error)  # a money rule held it (budget, cap, kill switch)
    for review in reviews.values():
        if review.definition.requires_review:
            review.reasons.insert(0, f"“{review.definition.name}” is reviewed personally")
        if review.definition.escalate:
            review.reasons.append("Exceptional milestone: tell the team lead")
        review.metrics = metrics[review.customer.id]
        review.favourites = favourites[review.customer.id]
    return list(reviews.values()), total


def pending(session: Session, workspace_id: uuid.UUID, milestone_id: uuid.UUID) -> CustomerMilestone:
    """The milestone, locked, if it is this workspace's and still waits for review."""
    milestone = session.execute(
        select(CustomerMilestone)
        .where(CustomerMilestone.id == milestone_id, CustomerMilestone.workspace_id == workspace_id)
        .with_for_update()
    ).scalar_one_or_none()
    if milestone is None:
        raise NotFound(f"no milestone {milestone_id}")
    if milestone.status != PENDING_REVIEW:
        raise Conflict(f"milestone is {milestone.status}, not pending review", {"status": milestone.status})
    return milestone


def approve(session: Session, workspace_id: uuid.UUID, milestone_id: uuid.UUID, notes: str | None = None) -> Decision:
    milestone = pending(session, workspace_id, milestone_id)
    milestone.status = ACTIVE
    _note(milestone, f"Approved{': ' + notes if notes else ''}")
    now = utcnow()
    # Only what waits for the review: a credit hold (or the kill switch) keeps its own date.
    held = Effect.milestone_id == milestone.id, Effect.status == effect_status.HELD, Effect.hold_reason.is_(None)
    tasks = session.execute(
        update(Effect).where(*held, Effect.kind == "task").values(status=effect_status.OPEN_TASK, updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    rewards = session.execute(
        update(Effect)
        .where(*held)
        .values(status=effect_status.PENDING, next_attempt_at=now, attempts=0, updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    session.flush()
    rewards += holds.release(session, now, milestone_id=milestone.id)  # a credit hold already over
    session.flush()
    return Decision(milestone, tasks + rewards, runnable=rewards > 0)


def reject(session: Session, workspace_id: uuid.UUID, milestone_id: uuid.UUID, reason: str) -> Decision:
    milestone = pending(session, workspace_id, milestone_id)
    milestone.status = REJECTED
    _note(milestone, f"Rejected: {reason}")
    cancelled = session.execute(
        update(Effect)
        .where(Effect.milestone_id == milestone.id, Effect.status == effect_status.HELD)
        .values(status=effect_status.CANCELLED, last_error=f"review rejected: {reason}"[:2000], updated_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    session.flush()
    return Decision(milestone, cancelled, runnable=False)


def _note(milestone: CustomerMilestone, line: str) -> None:
    milestone.notes = f"{milestone.notes}\n{line}" if milestone.notes else line
