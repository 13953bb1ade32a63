"""Marking a milestone celebrated by hand: a call made, a gift sent, a shout-out posted.

Idempotent: a milestone already celebrated stays as it was (first celebration wins, as with the
Slack button), so a double submit or a retry changes nothing.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.admin.errors import Conflict, NotFound
from plugin.db import utcnow
from plugin.models import CustomerMilestone

NOT_CELEBRATED = frozenset({"rejected"})


def get(session: Session, workspace_id: uuid.UUID, milestone_id: uuid.UUID, *, lock: bool = False) -> CustomerMilestone:
    query = select(CustomerMilestone).where(
        CustomerMilestone.id == milestone_id, CustomerMilestone.workspace_id == workspace_id
    )
    milestone = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if milestone is None:
        raise NotFound(f"no milestone {milestone_id}")
    return milestone


def mark_celebrated(
    session: Session, workspace_id: uuid.UUID, milestone_id: uuid.UUID, celebration_type: str, notes: str | None
) -> tuple[CustomerMilestone, bool]:
    """Returns the milestone and whether this call changed it."""
    milestone = get(session, workspace_id, milestone_id, lock=True)
    if milestone.status in NOT_CELEBRATED:
        raise Conflict(f"milestone is {milestone.status}: nothing to celebrate", {"status": milestone.status})
    if milestone.celebrated:
        return milestone, False
    milestone.celebrated = True
    milestone.celebrated_at = utcnow()
    milestone.celebration_type = celebration_type
    if notes:
        milestone.notes = f"{milestone.notes}\n{notes}" if milestone.notes else notes
    session.flush()
    return milestone, True
