"""RHF's manual review: a high-value milestone's rewards wait (``held``) until an admin decides.

Approving makes the milestone active and releases its held effects — rewards to ``pending``
for the effect runner, tasks for a person to ``open_task``. Rejecting cancels them and records
why. The milestone row is locked for the decision, so two admins clicking at once decide once:
the second finds it no longer pending review (409).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin.admin.errors import Conflict, NotFound
from plugin.db import utcnow
from plugin.milestones.award import ACTIVE, PENDING_REVIEW
from plugin.models import CustomerMilestone, Effect
from plugin.models import effect as effect_status

REJECTED = "rejected"


@dataclass(frozen=True)
class Decision:
    milestone: CustomerMilestone
    released: int  # effects now pending or open tasks (approve) / cancelled (reject)
    runnable: bool  # whether the effect runner has new work (nudge it after commit)


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
    held = Effect.milestone_id == milestone.id, Effect.status == effect_status.HELD
    tasks = session.execute(
        update(Effect).where(*held, Effect.kind == "task").values(status=effect_status.OPEN_TASK, updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    rewards = session.execute(
        update(Effect)
        .where(*held)
        .values(status=effect_status.PENDING, next_attempt_at=now, attempts=0, updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
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
