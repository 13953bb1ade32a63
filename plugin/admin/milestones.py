"""The milestones feed, each milestone's celebration state, and what people record by hand.

*Mark celebrated* (a call made, a gift sent, a shout-out posted) is idempotent: a milestone
already celebrated stays as it was (first celebration wins, as with the Slack button), so a
double submit or a retry changes nothing. *Customer responded* records that the customer
answered (replied, thanked, posted): no connected email platform reports engagement back to
us, so RHF's response rate is counted from these marks.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_, select
from sqlalchemy.orm import Session

from plugin.admin.errors import Conflict, NotFound
from plugin.admin.search import customer_matches
from plugin.db import utcnow
from plugin.milestones import combined
from plugin.milestones.tenure import local_zone
from plugin.models import Customer, CustomerMilestone, Effect, MilestoneDefinition, Workspace
from plugin.models import effect as effect_status

NOT_CELEBRATED = frozenset({"rejected"})
NOT_RECOGNISED = frozenset({"historical", "rejected", "revoked"})

# Effects that reach the customer (a gift is a task done by a person) and effects for the team.
CUSTOMER_FACING = frozenset({"store_credit", "discount_code", "customer_tag", "email"})
FOR_THE_TEAM = frozenset({"slack_alert", "crm_note"})

# Celebration states, in the order they are decided: the first that applies is the state.
STATES: dict[str, str] = {
    "historical": "Reached before the definition existed or before installation: recorded, never rewarded",
    "rejected": "An admin decided against it in review",
    "revoked": "A refund or cancellation undid it, and its definition takes rewards back",
    "pending_review": "Its rewards wait for an admin to approve them",
    "failed": "A recognition failed for good (a dead effect): retry it from Operations",
    "celebrated": "Marked celebrated by a person (Slack's button or this page)",
    "held_out": "In the holdout group: recorded, not rewarded, to measure retention lift",
    "rewarded": "The customer received their recognition: credit, code, tag, email or gift",
    "alerted": "The team was told (Slack alert, CRM note); nothing has reached the customer yet",
    "in_progress": "Its recognition is queued, running, or waiting for a person",
    "recorded": "Recorded; its recognition had nothing to run",
}


def held_out() -> ColumnElement[bool]:
    """Whether a milestone is in the holdout (:mod:`plugin.milestones.policies` marks its context)."""
    return func.coalesce(CustomerMilestone.context["holdout"].as_boolean(), False)


def celebration_state() -> ColumnElement[str]:
    """The state of :data:`STATES` of each milestone, as a SQL expression: the feed filters and
    shows it, the dashboard counts it, all from this one place."""

    def has(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
        # Its own effects, and the combined message that covers it (one for several milestones).
        return combined.has_recognition(*conditions)

    succeeded = Effect.status == effect_status.SUCCEEDED
    return case(
        (CustomerMilestone.status == "historical", "historical"),
        (CustomerMilestone.status == "rejected", "rejected"),
        (CustomerMilestone.status == "revoked", "revoked"),
        (CustomerMilestone.status == "pending_review", "pending_review"),
        (has(Effect.status == effect_status.DEAD), "failed"),
        (CustomerMilestone.celebrated.is_(True), "celebrated"),
        (held_out(), "held_out"),
        (or_(has(succeeded, Effect.kind.in_(CUSTOMER_FACING)), has(Effect.status == effect_status.DONE_TASK)),
         "rewarded"),
        (has(succeeded, Effect.kind.in_(FOR_THE_TEAM)), "alerted"),
        (has(Effect.status.in_([effect_status.PENDING, effect_status.IN_FLIGHT, effect_status.OPEN_TASK,
                                effect_status.HELD])), "in_progress"),
        else_="recorded",
    )


def reached_customer(celebrated: bool, effects: Iterable[tuple[str, str]]) -> bool:
    """Whether the recognition reached the customer: celebrated by hand, a customer-facing
    effect that succeeded, or a gift (task) done. ``effects`` are (kind, status) pairs."""
    return celebrated or any(
        (kind in CUSTOMER_FACING and status == effect_status.SUCCEEDED) or status == effect_status.DONE_TASK
        for kind, status in effects
    )


@dataclass(frozen=True)
class FeedFilters:
    customer: str | None = None  # part of the customer's email or name
    customer_id: uuid.UUID | None = None
    milestone_type: str | None = None
    key: str | None = None  # the definition's key
    state: str | None = None  # one of STATES
    since: date | None = None  # achieved on or after, local date
    until: date | None = None  # achieved on or before, local date


@dataclass
class FeedRow:
    milestone: CustomerMilestone
    state: str
    key: str
    customer: Customer
    effects: list[Effect] = field(default_factory=list)

    @property
    def response(self) -> dict[str, Any] | None:
        return response_of(self.milestone)


def feed(
    session: Session, workspace: Workspace, filters: FeedFilters, *, page: int = 1, per_page: int = 25
) -> tuple[list[FeedRow], bool]:
    """One page of milestones, newest first, with their state, customer and effects, and
    whether an older page exists."""
    state = celebration_state().label("state")
    query = (
        select(CustomerMilestone, state, MilestoneDefinition.key, Customer)
        .join(Customer, Customer.id == CustomerMilestone.customer_id)
        .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
        .where(CustomerMilestone.workspace_id == workspace.id)
        .order_by(CustomerMilestone.achieved_at.desc(), CustomerMilestone.id)
    )
    if filters.customer:
        query = query.where(customer_matches(filters.customer))
    if filters.customer_id:
        query = query.where(CustomerMilestone.customer_id == filters.customer_id)
    if filters.milestone_type:
        query = query.where(CustomerMilestone.milestone_type == filters.milestone_type)
    if filters.key:
        query = query.where(MilestoneDefinition.key == filters.key)
    if filters.state:
        query = query.where(celebration_state() == filters.state)
    zone = local_zone(None, workspace.timezone)
    if filters.since:
        query = query.where(CustomerMilestone.achieved_at >= datetime.combine(filters.since, time(), zone))
    if filters.until:
        query = query.where(CustomerMilestone.achieved_at < datetime.combine(filters.until + timedelta(days=1), time(), zone))
    found = session.execute(query.limit(per_page + 1).offset((page - 1) * per_page)).all()
    effects = effects_of(session, [m.id for m, *_ in found[:per_page]])
    rows = [FeedRow(m, s, k, c, effects[m.id]) for m, s, k, c in found[:per_page]]
    return rows, len(found) > per_page


def states_of(session: Session, workspace_id: uuid.UUID, milestone_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The state of each of ``milestone_ids`` (of this workspace)."""
    if not milestone_ids:
        return {}
    return dict(
        session.execute(
            select(CustomerMilestone.id, celebration_state())
            .where(CustomerMilestone.workspace_id == workspace_id, CustomerMilestone.id.in_(milestone_ids))
        ).tuples().all()
    )


def milestone_types(session: Session, workspace_id: uuid.UUID) -> list[tuple[str, str, str]]:
    """(key, name, type) of every definition, in catalogue order, for the feed's filters."""
    return [
        (key, name, kind)
        for key, name, kind in session.execute(
            select(MilestoneDefinition.key, MilestoneDefinition.name, MilestoneDefinition.type)
            .where(MilestoneDefinition.workspace_id == workspace_id)
            .order_by(MilestoneDefinition.sort_order, MilestoneDefinition.key)
        ).tuples()
    ]


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


def record_response(
    session: Session, workspace_id: uuid.UUID, milestone_id: uuid.UUID, *, by: str, note: str | None = None
) -> tuple[CustomerMilestone, bool]:
    """The customer responded to their recognition. Idempotent: the first mark stays.
    Returns the milestone and whether this call changed it."""
    milestone = get(session, workspace_id, milestone_id, lock=True)
    if milestone.status in NOT_RECOGNISED:
        raise Conflict(f"milestone is {milestone.status}: the customer was not recognised",
                       {"status": milestone.status})
    if response_of(milestone) is not None:
        return milestone, False
    response: dict[str, Any] = {"at": utcnow().isoformat(), "by": by}
    if note:
        response["note"] = note
    milestone.context = {**(milestone.context or {}), "response": response}
    session.flush()
    return milestone, True


def response_of(milestone: CustomerMilestone) -> dict[str, Any] | None:
    found = (milestone.context or {}).get("response")
    return found if isinstance(found, dict) else None


def effects_of(session: Session, milestone_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Effect]]:
    """Each milestone's effects, a combined message under every milestone it covers."""
    if not milestone_ids:
        return defaultdict(list)
    milestones = session.scalars(select(CustomerMilestone).where(CustomerMilestone.id.in_(milestone_ids))).all()
    return combined.effects_of(session, milestones)
