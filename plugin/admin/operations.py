"""Putting work back in line: retry a dead effect, replay a delivery, close a task.

Each is a conditional UPDATE on the row's state, so two admins (or an admin and a worker) never
both win; zero rows updated tells "not found" from "not in that state".
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from plugin.admin.errors import Conflict, NotFound
from plugin.db import utcnow
from plugin.models import Effect, InboxDelivery
from plugin.models import delivery as inbox_status
from plugin.models import effect as effect_status


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
        .where(InboxDelivery.status.in_([inbox_status.FAILED, inbox_status.PROCESSED]))
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
