"""Putting work back in line: retry a dead effect, replay a delivery, close a task; and the
lists an admin picks them from.

Each change is a conditional UPDATE on the row's state, so two admins (or an admin and a worker)
never both win; zero rows updated tells "not found" from "not in that state".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from plugin.admin.errors import Conflict, Invalid, NotFound
from plugin.db import utcnow
from plugin.jobs.effects import DISPATCH
from plugin.milestones.planning import KINDS
from plugin.models import Customer, CustomerMilestone, Effect, InboxDelivery
from plugin.models import delivery as inbox_status
from plugin.models import effect as effect_status

# Every kind an effect row can have: the recognitions' kinds (a task has no runner) and the
# ones the runner table knows (clawbacks, CSM notices, escalations added by the planner itself).
EFFECT_KINDS: tuple[str, ...] = tuple(sorted(set(KINDS) | set(DISPATCH)))
INBOX_STATUSES = (inbox_status.PENDING, inbox_status.PROCESSING, inbox_status.PROCESSED, inbox_status.FAILED)
EFFECT_STATUSES = (
    effect_status.PENDING, effect_status.HELD, effect_status.IN_FLIGHT, effect_status.SUCCEEDED, effect_status.DEAD,
    effect_status.NO_CONNECTION, effect_status.OPEN_TASK, effect_status.DONE_TASK, effect_status.CANCELLED,
)
REPLAYABLE = (inbox_status.FAILED, inbox_status.PROCESSED)
MAX_PAGE = 10_000  # deeper than anyone pages by hand; keeps OFFSET far from overflowing

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, newest first, and whether an older page follows."""

    items: list[T]
    number: int
    per_page: int
    more: bool


def deliveries_query(
    workspace_id: uuid.UUID,
    *,
    status: str | None = None,
    connection_id: uuid.UUID | None = None,
    platform: str | None = None,
) -> Select[tuple[InboxDelivery]]:
    """The inbox, newest first, optionally of one status, connection and platform (the API and
    the settings page both list it through this)."""
    _one_of("status", "delivery status", status, INBOX_STATUSES)
    query = _where_given(
        select(InboxDelivery).where(InboxDelivery.workspace_id == workspace_id),
        (InboxDelivery.status, status), (InboxDelivery.connection_id, connection_id), (InboxDelivery.platform, platform),
    )
    return query.order_by(InboxDelivery.id.desc())


def list_deliveries(
    session: Session,
    workspace_id: uuid.UUID,
    *,
    status: str | None = None,
    connection_id: uuid.UUID | None = None,
    page: int = 1,
    per_page: int = 25,
) -> Page[InboxDelivery]:
    query = deliveries_query(workspace_id, status=status, connection_id=connection_id)
    return _page(session, query, page, per_page)


def effects_query(
    workspace_id: uuid.UUID,
    *,
    status: str | None = None,
    kind: str | None = None,
    milestone_id: uuid.UUID | None = None,
) -> Select[tuple[Effect]]:
    """The outbox, newest first, optionally of one status, kind and milestone."""
    _one_of("status", "effect status", status, EFFECT_STATUSES)
    _one_of("kind", "effect kind", kind, EFFECT_KINDS)
    query = _where_given(
        select(Effect).where(Effect.workspace_id == workspace_id),
        (Effect.status, status), (Effect.kind, kind), (Effect.milestone_id, milestone_id),
    )
    return query.order_by(Effect.id.desc())


def list_effects(
    session: Session,
    workspace_id: uuid.UUID,
    *,
    status: str | None = None,
    kind: str | None = None,
    page: int = 1,
    per_page: int = 25,
) -> Page[Effect]:
    return _page(session, effects_query(workspace_id, status=status, kind=kind), page, per_page)


def open_tasks(session: Session, workspace_id: uuid.UUID, *, page: int = 1, per_page: int = 25) -> Page[Effect]:
    """Tasks for a person (a gift to send, a call to make) still to do, oldest first."""
    query = (
        select(Effect)
        .where(Effect.workspace_id == workspace_id, Effect.kind == "task", Effect.status == effect_status.OPEN_TASK)
        .order_by(Effect.created_at, Effect.id)
    )
    return _page(session, query, page, per_page)


def milestones_of(session: Session, rows: list[Effect]) -> dict[uuid.UUID, tuple[CustomerMilestone, Customer]]:
    """The milestone and customer each effect celebrates, in one query."""
    wanted = {e.milestone_id for e in rows}
    if not wanted:
        return {}
    return {
        milestone.id: (milestone, customer)
        for milestone, customer in session.execute(
            select(CustomerMilestone, Customer)
            .join(Customer, Customer.id == CustomerMilestone.customer_id)
            .where(CustomerMilestone.id.in_(wanted))
        ).tuples()
    }


def describe_tasks(session: Session, rows: list[Effect]) -> list[dict[str, Any]]:
    """Each task with what a person needs to do it: its title, the milestone and the customer."""
    found = milestones_of(session, rows)
    items = []
    for effect in rows:
        milestone, customer = found[effect.milestone_id]
        payload = effect.payload or {}
        items.append({
            "id": effect.id,
            "title": payload.get("title") or (payload.get("action") or {}).get("title") or milestone.milestone_name,
            "status": effect.status,
            "milestone_id": milestone.id,
            "milestone_name": milestone.milestone_name,
            "milestone_value": milestone.milestone_value,
            "customer_id": customer.id,
            "customer_email": customer.email,
            "customer_name": customer.display_name,
            "created_at": effect.created_at,
            "completed_at": effect.completed_at,
            "notes": payload.get("done_notes"),
        })
    return items


def _one_of(field: str, what: str, value: str | None, allowed: tuple[str, ...]) -> None:
    """Refuse a filter value that is not one of ``allowed`` (``None``: no filter, always fine)."""
    if value is not None and value not in allowed:
        raise Invalid(f"unknown {what} {value!r}", {field: [f"one of {', '.join(allowed)}"]})


def _where_given(query: Select[tuple[T]], *filters: tuple[Any, Any]) -> Select[tuple[T]]:
    """``query`` narrowed to ``column == value`` for each (column, value) whose value is given."""
    for column, value in filters:
        if value is not None:
            query = query.where(column == value)
    return query


def _page(session: Session, query: Select[tuple[T]], number: int, per_page: int) -> Page[T]:
    number = min(max(number, 1), MAX_PAGE)
    rows = list(session.execute(query.limit(per_page + 1).offset((number - 1) * per_page)).scalars())
    return Page(items=rows[:per_page], number=number, per_page=per_page, more=len(rows) > per_page)


def retry_effect(session: Session, workspace_id: uuid.UUID, effect_id: int) -> Effect:
    """A dead effect goes back to pending with a fresh attempt budget."""
    effect = _effect(session, workspace_id, effect_id)
    if effect.status != effect_status.DEAD:
        raise Conflict(f"only dead effects can be retried; this one is {effect.status}", {"status": effect.status})
    effect.status = effect_status.PENDING
    effect.attempts = 0
    effect.next_attempt_at = utcnow()
    session.flush()
    return effect


def replay_delivery(session: Session, workspace_id: uuid.UUID, delivery_id: int) -> None:
    """Process a stored delivery again; the ledger's merge rules make this safe."""
    result = session.execute(
        update(InboxDelivery)
        .where(InboxDelivery.id == delivery_id, InboxDelivery.workspace_id == workspace_id)
        .where(InboxDelivery.status.in_(REPLAYABLE))
        .values(status=inbox_status.PENDING, error=None)
    )
    if result.rowcount:  # type: ignore[attr-defined]
        return
    exists = session.scalar(
        select(func.count()).select_from(InboxDelivery).where(
            InboxDelivery.id == delivery_id, InboxDelivery.workspace_id == workspace_id
        )
    )
    if exists:
        raise Conflict("delivery is already pending")
    raise NotFound(f"no delivery {delivery_id}")


def complete_task(session: Session, workspace_id: uuid.UUID, task_id: int, notes: str | None = None) -> tuple[Effect, bool]:
    """An open task (a gift sent, a call made) is done. Returns the task and whether this changed it."""
    task = _effect(session, workspace_id, task_id, kind="task")
    if task.status == effect_status.DONE_TASK:
        return task, False
    if task.status != effect_status.OPEN_TASK:
        why = "it waits for review" if task.status == effect_status.HELD else f"it is {task.status}"
        raise Conflict(f"task cannot be done: {why}", {"status": task.status})
    now = utcnow()
    task.status = effect_status.DONE_TASK
    task.completed_at = now
    if notes:
        payload: dict[str, Any] = dict(task.payload or {})
        payload["done_notes"] = notes
        task.payload = payload
    session.flush()
    return task, True


def _effect(session: Session, workspace_id: uuid.UUID, effect_id: int, kind: str | None = None) -> Effect:
    query = select(Effect).where(Effect.id == effect_id, Effect.workspace_id == workspace_id).with_for_update()
    if kind is not None:
        query = query.where(Effect.kind == kind)
    effect = session.execute(query).scalar_one_or_none()
    if effect is None:
        raise NotFound(f"no {'task' if kind == 'task' else 'effect'} {effect_id}")
    return effect
