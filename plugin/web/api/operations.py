"""Operations: inbox deliveries (replay), effects (retry a dead one) and tasks for people (done)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import select

from plugin.admin import operations
from plugin.models import Effect
from plugin.models import effect as effect_status
from plugin.web.api.core import Resource, paginate, services, session, workspace_id
from plugin.web.api.schemas import EffectSchema, PageArgs, page_of, text, when

effects = Resource("effects", __name__, description="Effects (the outbox): status, errors, retry")
inbox = Resource("inbox", __name__, description="Inbox: every webhook delivery, replayable")
tasks = Resource("tasks", __name__, description="Tasks for people: gifts, calls, notes")

EFFECT_STATUSES = operations.EFFECT_STATUSES
INBOX_STATUSES = operations.INBOX_STATUSES
TASK_STATUSES = {"open": effect_status.OPEN_TASK, "done": effect_status.DONE_TASK, "held": effect_status.HELD}


class EffectArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(EFFECT_STATUSES))
    kind = fields.String(validate=validate.OneOf(operations.EFFECT_KINDS))
    milestone_id = fields.UUID()


class InboxArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(INBOX_STATUSES))
    platform = text(32)


class DeliverySchema(Schema):
    id = fields.Integer()
    platform = fields.String()
    topic = fields.String()
    delivery_key = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    error = fields.String(allow_none=True)
    received_at = when()


class ReplaySchema(Schema):
    id = fields.Integer()
    status = fields.String()


class TaskArgs(PageArgs):
    status = fields.String(load_default="open", validate=validate.OneOf(sorted(TASK_STATUSES)),
                           metadata={"description": "open (default), done, or held (waiting for review)"})


class TaskSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    status = fields.String()
    milestone_id = fields.UUID()
    milestone_name = fields.String()
    milestone_value = fields.String(allow_none=True)
    customer_id = fields.UUID()
    customer_email = fields.String(allow_none=True)
    customer_name = fields.String()
    created_at = when()
    completed_at = when(allow_none=True)
    notes = fields.String(allow_none=True)


class DoneSchema(Schema):
    notes = fields.String(validate=validate.Length(max=5000))


@effects.route("/effects")
@effects.arguments(EffectArgs, location="query")
@effects.response(200, page_of(EffectSchema))
def list_effects(args: dict[str, Any]) -> Any:
    query = operations.effects_query(
        workspace_id(), status=args.get("status"), kind=args.get("kind"), milestone_id=args.get("milestone_id")
    )
    return paginate(query, args)


@effects.route("/effects/<int:effect_id>/retry", methods=["POST"])
@effects.response(200, EffectSchema)
def retry_effect(effect_id: int) -> Any:
    """A dead effect goes back to pending with a fresh attempt budget (409 for any other status)."""
    db = session()
    effect = operations.retry_effect(db, workspace_id(), effect_id)
    db.commit()
    from plugin.jobs.effects import run_effects

    services().queue.nudge(run_effects, "effects")
    db.refresh(effect)
    return effect


@inbox.route("/inbox")
@inbox.arguments(InboxArgs, location="query")
@inbox.response(200, page_of(DeliverySchema))
def list_inbox(args: dict[str, Any]) -> Any:
    query = operations.deliveries_query(workspace_id(), status=args.get("status"), platform=args.get("platform"))
    return paginate(query, args)


@inbox.route("/inbox/<int:delivery_id>/replay", methods=["POST"])
@inbox.response(202, ReplaySchema)
def replay_delivery(delivery_id: int) -> Any:
    """Process a failed or processed delivery again (409 while it is pending)."""
    db = session()
    operations.replay_delivery(db, workspace_id(), delivery_id)
    db.commit()
    from plugin.jobs.drain import drain_inbox

    services().queue.nudge(drain_inbox, "inbox", job_suffix=f"replay-{delivery_id}")
    return {"status": "pending", "id": delivery_id}


@tasks.route("/tasks")
@tasks.arguments(TaskArgs, location="query")
@tasks.response(200, page_of(TaskSchema))
def list_tasks(args: dict[str, Any]) -> Any:
    query = (
        select(Effect)
        .where(Effect.workspace_id == workspace_id(), Effect.kind == "task",
               Effect.status == TASK_STATUSES[args["status"]])
        .order_by(Effect.created_at, Effect.id)
    )
    page = paginate(query, args)
    page["items"] = describe_tasks(page["items"])
    return page


@tasks.route("/tasks/<int:task_id>/done", methods=["POST"])
@tasks.arguments(DoneSchema, required=False)
@tasks.response(200, TaskSchema)
def complete_task(body: dict[str, Any], task_id: int) -> Any:
    """Done by hand (idempotent); a task still waiting for review cannot be done (409)."""
    db = session()
    task, _changed = operations.complete_task(db, workspace_id(), task_id, body.get("notes"))
    db.commit()
    return describe_tasks([task])[0]


def describe_tasks(rows: list[Effect]) -> list[dict[str, Any]]:
    return operations.describe_tasks(session(), rows)
