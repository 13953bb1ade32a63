"""The milestones feed: every customer's milestones, newest first, filterable; mark celebrated."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from typing import Any

from marshmallow import Schema, fields, validate, validates_schema
from marshmallow.exceptions import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.admin import milestones as service
from plugin.milestones import combined
from plugin.milestones.tenure import local_zone
from plugin.models import Customer, CustomerMilestone, MilestoneDefinition
from plugin.web.api.core import Resource, paginate, session, workspace, workspace_id
from plugin.web.api.schemas import MilestoneSchema, PageArgs, day, milestone_data, page_of, text

blp = Resource("milestones", __name__, description="Milestones reached by customers, and celebrating them")

STATUSES = ("active", "pending_review", "historical", "rejected")


class MilestoneArgs(PageArgs):
    customer_id = fields.UUID()
    email = fields.String(validate=validate.Length(max=320), metadata={"description": "the customer's email"})
    type = text(50, metadata={"description": "milestone_type: order, spend, time, usage…"})
    key = text(100, metadata={"description": "the definition's key, e.g. order-25"})
    status = fields.String(validate=validate.OneOf(STATUSES))
    celebrated = fields.Boolean()
    since = day(metadata={"description": "achieved on or after this local date"})
    until = day(metadata={"description": "achieved on or before this local date"})

    @validates_schema
    def _range(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise ValidationError("must not be before since", "until")


class CelebrateSchema(Schema):
    celebration_type = fields.String(
        load_default="manual",
        validate=validate.Regexp(r"^[a-z][a-z0-9_-]{0,49}\Z", error="a short word such as email, gift, call, social"),
        metadata={"description": "how it was celebrated: email, gift, call, social, …"},
    )
    notes = fields.String(validate=validate.Length(max=5000))


@blp.route("/milestones")
@blp.arguments(MilestoneArgs, location="query")
@blp.response(200, page_of(MilestoneSchema))
def list_milestones(args: dict[str, Any]) -> Any:
    ws = workspace()
    query = (
        select(CustomerMilestone)
        .where(CustomerMilestone.workspace_id == ws.id)
        .order_by(CustomerMilestone.achieved_at.desc(), CustomerMilestone.id)
    )
    if "customer_id" in args:
        query = query.where(CustomerMilestone.customer_id == args["customer_id"])
    if email := (args.get("email") or "").strip().lower():
        query = query.where(
            CustomerMilestone.customer_id.in_(select(Customer.id).where(Customer.workspace_id == ws.id,
                                                                        Customer.email == email))
        )
    if "type" in args:
        query = query.where(CustomerMilestone.milestone_type == args["type"])
    if "key" in args:
        query = query.where(CustomerMilestone.definition_id.in_(
            select(MilestoneDefinition.id).where(MilestoneDefinition.workspace_id == ws.id,
                                                 MilestoneDefinition.key == args["key"])))
    if "status" in args:
        query = query.where(CustomerMilestone.status == args["status"])
    if "celebrated" in args:
        query = query.where(CustomerMilestone.celebrated.is_(args["celebrated"]))
    zone = local_zone(None, ws.timezone)
    if "since" in args:
        query = query.where(CustomerMilestone.achieved_at >= datetime.combine(args["since"], time(), zone))
    if "until" in args:
        end = datetime.combine(args["until"] + timedelta(days=1), time(), zone)
        query = query.where(CustomerMilestone.achieved_at < end)
    page = paginate(query, args)
    page["items"] = describe(session(), page["items"])
    return page


@blp.route("/milestones/<uuid:milestone_id>")
@blp.response(200, MilestoneSchema)
def get_milestone(milestone_id: uuid.UUID) -> Any:
    return describe(session(), [service.get(session(), workspace_id(), milestone_id)])[0]


@blp.route("/milestones/<uuid:milestone_id>/celebrate", methods=["POST"])
@blp.arguments(CelebrateSchema, required=False)
@blp.response(200, MilestoneSchema)
def celebrate(body: dict[str, Any], milestone_id: uuid.UUID) -> Any:
    """Mark celebrated (idempotent: an already celebrated milestone is answered as it is)."""
    db = session()
    milestone, _changed = service.mark_celebrated(
        db, workspace_id(), milestone_id, body["celebration_type"], body.get("notes")
    )
    db.commit()
    return describe(db, [milestone])[0]


def describe(db: Session, milestones: list[CustomerMilestone]) -> list[dict[str, Any]]:
    """Milestones with their definition key, customer email and effects, in three queries."""
    if not milestones:
        return []
    keys = dict(db.execute(select(MilestoneDefinition.id, MilestoneDefinition.key).where(
        MilestoneDefinition.id.in_({m.definition_id for m in milestones}))).tuples().all())
    emails = dict(db.execute(select(Customer.id, Customer.email).where(
        Customer.id.in_({m.customer_id for m in milestones}))).tuples().all())
    effects = combined.effects_of(db, milestones)  # a combined message under every milestone it covers
    return [
        milestone_data(m, keys.get(m.definition_id, ""), email=emails.get(m.customer_id), with_customer=True,
                       effects=effects[m.id])
        for m in milestones
    ]
