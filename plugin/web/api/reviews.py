"""The review queue: high-value milestones whose rewards wait for an admin (RHF's manual review)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import select

from plugin.admin import reviews
from plugin.milestones.award import PENDING_REVIEW
from plugin.models import Customer, CustomerMetric, CustomerMilestone
from plugin.web.api import milestones as feed
from plugin.web.api.core import Resource, paginate, services, session, workspace_id
from plugin.web.api.customers import ContextSchema, metric_text
from plugin.web.api.schemas import MilestoneSchema, PageArgs, page_of

blp = Resource("reviews", __name__, description="Milestones waiting for review: approve or reject")


class ReviewCustomerSchema(Schema):
    id = fields.UUID()
    email = fields.String(allow_none=True)
    name = fields.String()
    metrics = fields.Dict(keys=fields.String(), values=fields.String())
    context = fields.Nested(ContextSchema)


class ReviewSchema(MilestoneSchema):
    customer = fields.Nested(ReviewCustomerSchema)


class ApproveSchema(Schema):
    notes = fields.String(validate=validate.Length(max=5000))


class RejectSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class DecisionSchema(Schema):
    milestone = fields.Nested(MilestoneSchema)
    released = fields.Integer(metadata={"description": "held effects released (approve) or cancelled (reject)"})


@blp.route("/reviews")
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(ReviewSchema))
def list_reviews(args: dict[str, Any]) -> Any:
    """Oldest first: the customer has waited longest."""
    query = (
        select(CustomerMilestone)
        .where(CustomerMilestone.workspace_id == workspace_id(), CustomerMilestone.status == PENDING_REVIEW)
        .order_by(CustomerMilestone.achieved_at, CustomerMilestone.id)
    )
    page = paginate(query, args)
    rows: list[CustomerMilestone] = page["items"]
    page["items"] = _with_customers(rows, feed.describe(session(), rows))
    return page


@blp.route("/reviews/<uuid:milestone_id>/approve", methods=["POST"])
@blp.arguments(ApproveSchema, required=False)
@blp.response(200, DecisionSchema)
def approve(body: dict[str, Any], milestone_id: uuid.UUID) -> Any:
    """Approve: the milestone becomes active, its held rewards run and its held tasks open."""
    db = session()
    decision = reviews.approve(db, workspace_id(), milestone_id, body.get("notes"))
    db.commit()
    if decision.runnable:
        from plugin.jobs.effects import run_effects

        services().queue.nudge(run_effects, "effects")
    db.refresh(decision.milestone)
    return {"milestone": feed.describe(db, [decision.milestone])[0], "released": decision.released}


@blp.route("/reviews/<uuid:milestone_id>/reject", methods=["POST"])
@blp.arguments(RejectSchema)
@blp.response(200, DecisionSchema)
def reject(body: dict[str, Any], milestone_id: uuid.UUID) -> Any:
    """Reject: the held rewards and tasks are cancelled; the reason goes into the notes."""
    db = session()
    decision = reviews.reject(db, workspace_id(), milestone_id, body["reason"])
    db.commit()
    return {"milestone": feed.describe(db, [decision.milestone])[0], "released": decision.released}


def _with_customers(rows: list[CustomerMilestone], described: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = {m.customer_id for m in rows}
    if not ids:
        return described
    db = session()
    customers = {c.id: c for c in db.execute(select(Customer).where(Customer.id.in_(ids))).scalars()}
    metrics: dict[uuid.UUID, dict[str, str]] = defaultdict(dict)
    for row in db.execute(select(CustomerMetric).where(CustomerMetric.customer_id.in_(ids))).scalars():
        metrics[row.customer_id][row.metric] = metric_text(row.value)
    for milestone, item in zip(rows, described, strict=True):
        c = customers[milestone.customer_id]
        item["customer"] = {
            "id": c.id,
            "email": c.email,
            "name": c.display_name,
            "metrics": metrics[c.id],
            "context": {"arr": c.arr, "health_score": c.health_score, "owner_email": c.owner_email,
                        "customer_since": c.customer_since, "company_name": c.company_name, "timezone": c.timezone},
        }
    return described
