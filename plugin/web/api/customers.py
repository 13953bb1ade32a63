"""Customers with their counters, milestones and account context; case-study candidates (US-3)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

from flask import Response
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select

from plugin.admin import candidates
from plugin.admin.search import customer_matches
from plugin.models import Customer, CustomerMetric, CustomerMilestone, MilestoneDefinition
from plugin.web.api.core import Resource, not_found, paginate, session, workspace_id
from plugin.web.api.schemas import MilestoneSchema, PageArgs, milestone_data, page_of, text, when

MAX_ARR = Decimal(10**15)
MAX_ARR_DOC = 10**15  # an int in the document: apispec writes a Decimal bound as a string


def _arr_range(value: Decimal) -> None:
    """validate.Range would put the bounds in the OpenAPI document as strings."""
    if not 0 <= value <= MAX_ARR:
        raise ValidationError(f"must be between 0 and {MAX_ARR_DOC}")


blp = Resource("customers", __name__, description="Customers: metrics, milestones and context")


class CustomerArgs(PageArgs):
    email = fields.String(validate=validate.Length(max=320), metadata={"description": "exact, case-insensitive"})
    q = text(100, metadata={"description": "part of the email, name or company"})


class ContextSchema(Schema):
    arr = fields.Decimal(as_string=True, allow_none=True, metadata={"description": "annual recurring revenue"})
    health_score = fields.Integer(allow_none=True)
    owner_email = fields.String(allow_none=True, metadata={"description": "the account's CSM"})
    customer_since = when(allow_none=True)
    company_name = fields.String(allow_none=True)
    timezone = fields.String(allow_none=True)


class CustomerSchema(Schema):
    id = fields.UUID(required=True)
    email = fields.String(allow_none=True)
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    name = fields.String()
    customer_since = when(allow_none=True)
    metrics = fields.Dict(keys=fields.String(), values=fields.String(),
                          metadata={"description": "order_count, lifetime_spend, … as decimal strings"})
    milestones = fields.List(fields.Nested(MilestoneSchema))
    context = fields.Nested(ContextSchema)


class CandidateArgs(PageArgs):
    min_arr = fields.Decimal(validate=_arr_range, metadata={"minimum": 0, "maximum": MAX_ARR_DOC})
    min_health = fields.Integer(validate=validate.Range(min=0, max=1000))
    milestone_type = text(50)
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))


class CandidateMilestoneSchema(Schema):
    id = fields.String()
    key = fields.String()
    milestone_type = fields.String()
    milestone_name = fields.String()
    milestone_value = fields.String(allow_none=True)
    achieved_at = fields.String()
    celebrated = fields.Boolean()


class CandidateSchema(Schema):
    id = fields.String(required=True)
    email = fields.String(allow_none=True)
    name = fields.String()
    company_name = fields.String(allow_none=True)
    arr = fields.String(allow_none=True)
    health_score = fields.Integer(allow_none=True)
    owner_email = fields.String(allow_none=True)
    customer_since = fields.String(allow_none=True)
    milestones = fields.List(fields.Nested(CandidateMilestoneSchema))


@blp.route("/customers")
@blp.arguments(CustomerArgs, location="query")
@blp.response(200, page_of(CustomerSchema))
def list_customers(args: dict[str, Any]) -> Any:
    query = select(Customer).where(Customer.workspace_id == workspace_id()).order_by(Customer.created_at, Customer.id)
    if email := (args.get("email") or "").strip().lower():
        query = query.where(Customer.email == email)
    if q := args.get("q"):
        query = query.where(customer_matches(q))
    page = paginate(query, args)
    page["items"] = describe(page["items"])
    return page


@blp.route("/customers/<uuid:customer_id>")
@blp.response(200, CustomerSchema)
def get_customer(customer_id: uuid.UUID) -> Any:
    customer = session().execute(
        select(Customer).where(Customer.id == customer_id, Customer.workspace_id == workspace_id())
    ).scalar_one_or_none()
    if customer is None:
        not_found("customer", customer_id)
    return describe([customer])[0]


def describe(customers: list[Customer]) -> list[dict[str, Any]]:
    """Customers with their metrics and milestones, in two queries for the whole page."""
    ids = [c.id for c in customers]
    metrics: dict[uuid.UUID, dict[str, str]] = defaultdict(dict)
    milestones: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    if ids:
        db = session()
        for row in db.execute(select(CustomerMetric).where(CustomerMetric.customer_id.in_(ids))).scalars():
            metrics[row.customer_id][row.metric] = metric_text(row.value)
        for m, key in db.execute(
            select(CustomerMilestone, MilestoneDefinition.key)
            .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
            .where(CustomerMilestone.customer_id.in_(ids))
            .order_by(CustomerMilestone.achieved_at, CustomerMilestone.id)
        ):
            milestones[m.customer_id].append(milestone_data(m, key))
    return [
        {
            "id": c.id,
            "email": c.email,
            "first_name": c.first_name,
            "last_name": c.last_name,
            "name": c.display_name,
            "customer_since": c.customer_since,
            "metrics": {"order_count": "0", "lifetime_spend": "0", **metrics[c.id]},
            "milestones": milestones[c.id],
            "context": {
                "arr": c.arr,
                "health_score": c.health_score,
                "owner_email": c.owner_email,
                "customer_since": c.customer_since,
                "company_name": c.company_name,
                "timezone": c.timezone,
            },
        }
        for c in customers
    ]


def metric_text(value: Decimal) -> str:
    """``3`` for a count, ``80.500000`` as stored otherwise (the form this API always answered)."""
    text = str(value.normalize()) if value == value.to_integral_value() else str(value)
    return format(Decimal(text), "f")


@blp.route("/case-study-candidates")
@blp.arguments(CandidateArgs, location="query")
@blp.response(200, page_of(CandidateSchema))
@blp.alt_response(200, schema={"type": "string"}, content_type="text/csv", success=True,
                  description="format=csv: every candidate, one row each")
def case_study_candidates(args: dict[str, Any]) -> Any:
    """Customers with significant milestones, biggest accounts first (PRD-114 US-3)."""
    filters = candidates.Filters(args.get("min_arr"), args.get("min_health"), args.get("milestone_type"))
    query = candidates.query(workspace_id(), filters)
    if args["format"] == "csv":
        everyone = list(session().execute(query).scalars())
        body = candidates.to_csv(candidates.describe(session(), workspace_id(), everyone, filters))
        return Response(body, mimetype="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="case-study-candidates.csv"'})
    page = paginate(query, args)
    page["items"] = candidates.describe(session(), workspace_id(), page["items"], filters)
    return page
