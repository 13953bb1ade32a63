"""The admin API under ``/api/``: bearer token scoped to one workspace.

This module holds what the pipeline needs to be operable — customers, milestones, the inbox
and effects with replay/retry. Every list is paginated and says ``total``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.models import (
    Customer,
    CustomerMetric,
    CustomerMilestone,
    Effect,
    InboxDelivery,
    MilestoneDefinition,
    Workspace,
)
from plugin.models import delivery as inbox_status
from plugin.models import effect as effect_status
from plugin.services import Services
from plugin.workspaces import token_hash

api = Blueprint("api", __name__, url_prefix="/api")

MAX_PER_PAGE = 200


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@api.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Any:
    return jsonify(error=exc.message), exc.status


def _services() -> Services:
    return current_app.extensions["milestones"]


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            return jsonify(error="missing bearer token"), 401
        with _services().sessions() as session:
            workspace = session.execute(
                select(Workspace).where(Workspace.admin_token_hash == token_hash(header[7:].strip()))
            ).scalar_one_or_none()
            if workspace is None:
                return jsonify(error="invalid token"), 401
            g.workspace_id = workspace.id
            g.session = session
            return view(*args, **kwargs)

    return wrapper


def _page() -> tuple[int, int]:
    try:
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("per_page", 50))
    except ValueError:
        raise ApiError(400, "page and per_page must be whole numbers") from None
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise ApiError(400, f"page must be >= 1 and per_page between 1 and {MAX_PER_PAGE}")
    return page, per_page


def _paginated(session: Session, query: Any, serialize: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    page, per_page = _page()
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.execute(query.limit(per_page).offset((page - 1) * per_page)).scalars().all()
    return {"items": [serialize(r) for r in rows], "total": total, "page": page, "per_page": per_page}


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(404, f"no {what} {value!r}") from None


def milestone_json(m: CustomerMilestone, key: str, email: str | None = None) -> dict[str, Any]:
    data = {
        "id": str(m.id),
        "key": key,
        "milestone_type": m.milestone_type,
        "milestone_name": m.milestone_name,
        "milestone_value": m.milestone_value,
        "occurrence": m.occurrence,
        "achieved_at": m.achieved_at.isoformat(),
        "time_to_milestone_days": m.time_to_milestone.days if m.time_to_milestone is not None else None,
        "status": m.status,
        "celebrated": m.celebrated,
        "celebrated_at": m.celebrated_at.isoformat() if m.celebrated_at else None,
        "celebration_type": m.celebration_type,
        "notes": m.notes,
    }
    if email is not None:
        data["customer_email"] = email
    return data


def _definition_keys(session: Session, workspace_id: uuid.UUID) -> dict[uuid.UUID, str]:
    rows = session.execute(
        select(MilestoneDefinition.id, MilestoneDefinition.key).where(MilestoneDefinition.workspace_id == workspace_id)
    )
    return {row.id: row.key for row in rows}


@api.get("/customers")
@admin_required
def customers() -> Any:
    session: Session = g.session
    query = select(Customer).where(Customer.workspace_id == g.workspace_id).order_by(Customer.created_at, Customer.id)
    if email := request.args.get("email"):
        query = query.where(Customer.email == email.strip().lower())
    keys = _definition_keys(session, g.workspace_id)

    def serialize(c: Customer) -> dict[str, Any]:
        metrics = {
            m.metric: str(m.value.normalize()) if m.value == m.value.to_integral_value() else str(m.value)
            for m in session.execute(select(CustomerMetric).where(CustomerMetric.customer_id == c.id)).scalars()
        }
        for name in ("order_count", "lifetime_spend"):
            metrics.setdefault(name, "0")
        milestones = session.execute(
            select(CustomerMilestone).where(CustomerMilestone.customer_id == c.id).order_by(CustomerMilestone.achieved_at)
        ).scalars()
        return {
            "id": str(c.id),
            "email": c.email,
            "first_name": c.first_name,
            "last_name": c.last_name,
            "customer_since": c.customer_since.isoformat() if c.customer_since else None,
            "metrics": {k: _plain_number(v) for k, v in metrics.items()},
            "milestones": [milestone_json(m, keys.get(m.definition_id, "")) for m in milestones],
        }

    return jsonify(_paginated(session, query, serialize))


def _plain_number(text: str) -> str:
    return format(Decimal(text), "f")


@api.get("/milestones")
@admin_required
def milestones() -> Any:
    session: Session = g.session
    query = (
        select(CustomerMilestone)
        .where(CustomerMilestone.workspace_id == g.workspace_id)
        .order_by(CustomerMilestone.achieved_at.desc(), CustomerMilestone.id)
    )
    if status := request.args.get("status"):
        query = query.where(CustomerMilestone.status == status)
    keys = _definition_keys(session, g.workspace_id)
    emails: dict[uuid.UUID, str | None] = {
        row.id: row.email
        for row in session.execute(select(Customer.id, Customer.email).where(Customer.workspace_id == g.workspace_id))
    }
    return jsonify(_paginated(session, query, lambda m: milestone_json(m, keys.get(m.definition_id, ""), emails.get(m.customer_id) or "")))


def effect_json(e: Effect) -> dict[str, Any]:
    return {
        "id": e.id,
        "milestone_id": str(e.milestone_id),
        "kind": e.kind,
        "connection_id": str(e.connection_id) if e.connection_id else None,
        "status": e.status,
        "attempts": e.attempts,
        "next_attempt_at": e.next_attempt_at.isoformat(),
        "last_error": e.last_error,
        "external_id": e.external_id,
        "payload": e.payload,
    }


@api.get("/effects")
@admin_required
def effects() -> Any:
    query = select(Effect).where(Effect.workspace_id == g.workspace_id).order_by(Effect.id.desc())
    if status := request.args.get("status"):
        query = query.where(Effect.status == status)
    return jsonify(_paginated(g.session, query, effect_json))


@api.post("/effects/<int:effect_id>/retry")
@admin_required
def retry_effect(effect_id: int) -> Any:
    """A dead effect goes back to pending with a fresh attempt budget."""
    session: Session = g.session
    effect = session.execute(
        select(Effect).where(Effect.id == effect_id, Effect.workspace_id == g.workspace_id)
    ).scalar_one_or_none()
    if effect is None:
        raise ApiError(404, f"no effect {effect_id}")
    if effect.status != effect_status.DEAD:
        raise ApiError(409, f"only dead effects can be retried; this one is {effect.status}")
    effect.status = effect_status.PENDING
    effect.attempts = 0
    effect.next_attempt_at = utcnow()
    session.commit()
    from plugin.jobs.effects import run_effects

    _services().queue.nudge(run_effects, "effects")
    return jsonify(effect_json(effect))


@api.get("/inbox")
@admin_required
def inbox() -> Any:
    query = select(InboxDelivery).where(InboxDelivery.workspace_id == g.workspace_id).order_by(InboxDelivery.id.desc())
    if status := request.args.get("status"):
        query = query.where(InboxDelivery.status == status)
    return jsonify(
        _paginated(
            g.session,
            query,
            lambda d: {
                "id": d.id,
                "platform": d.platform,
                "topic": d.topic,
                "delivery_key": d.delivery_key,
                "status": d.status,
                "attempts": d.attempts,
                "error": d.error,
                "received_at": d.received_at.isoformat(),
            },
        )
    )


@api.post("/inbox/<int:delivery_id>/replay")
@admin_required
def replay_delivery(delivery_id: int) -> Any:
    """Process a stored delivery again; the ledger's merge rules make this safe."""
    session: Session = g.session
    result = session.execute(
        update(InboxDelivery)
        .where(InboxDelivery.id == delivery_id, InboxDelivery.workspace_id == g.workspace_id)
        .where(InboxDelivery.status.in_([inbox_status.FAILED, inbox_status.PROCESSED]))
        .values(status=inbox_status.PENDING, error=None)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        exists = session.scalar(
            select(func.count()).select_from(InboxDelivery).where(
                InboxDelivery.id == delivery_id, InboxDelivery.workspace_id == g.workspace_id
            )
        )
        raise ApiError(409 if exists else 404, "delivery is already pending" if exists else f"no delivery {delivery_id}")
    session.commit()
    from plugin.jobs.drain import drain_inbox

    _services().queue.nudge(drain_inbox, "inbox", job_suffix=f"replay-{delivery_id}")
    return jsonify(status="pending", id=delivery_id), 202
