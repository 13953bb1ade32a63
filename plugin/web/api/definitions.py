"""Milestone definitions: the catalogue, its conditions and recognitions, and the what-if preview."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from plugin.admin import definitions as service
from plugin.admin.preview import Draft, preview
from plugin.admin.recognition import RecognitionSchema
from plugin.engine.conditions import describe, to_json
from plugin.models import CustomerMilestone, MilestoneDefinition
from plugin.web.api.core import Resource, paginate, session, workspace, workspace_id
from plugin.web.api.schemas import MoneySchema, PageArgs, page_of, when

blp = Resource("definitions", __name__, description="Milestone definitions: conditions, recognition, what-if")


class DefinitionArgs(PageArgs):
    type = fields.String(validate=validate.OneOf(service.TYPES))
    enabled = fields.Boolean()


class DefinitionSchema(Schema):
    id = fields.UUID()
    key = fields.String()
    name = fields.String()
    type = fields.String()
    condition = fields.Dict()
    condition_description = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    celebration_template = fields.String(allow_none=True)
    enabled = fields.Boolean()
    recognition = fields.List(fields.Dict(), metadata={"description": "recognition actions (see RecognitionSchema)"})
    requires_review = fields.Boolean()
    escalate = fields.Boolean()
    significant = fields.Boolean()
    sort_order = fields.Integer()
    refund_policy = fields.String(metadata={"description": "keep | claw_back | revoke"})
    credit_hold_days = fields.Integer(allow_none=True)
    milestones = fields.Integer(metadata={"description": "milestones recorded under it"})
    created_at = when()
    updated_at = when()


class ConditionSchema(Schema):
    condition = fields.Raw(required=True, metadata={"description": "a condition in the engine's grammar"})


class ValidationSchema(Schema):
    valid = fields.Boolean()
    description = fields.String()
    condition = fields.Dict(metadata={"description": "the canonical form that would be stored"})


class PreviewArgs(Schema):
    celebrate = fields.String(
        load_default="none",
        validate=validate.OneOf(["none", "recent", "all"]),
        metadata={"description": "none: qualifying customers are recorded as historical (the default); "
                                 "recent: those who got there in the last `days` are celebrated; all: everyone is"},
    )
    days = fields.Integer(load_default=30, validate=validate.Range(min=1, max=3650))


class DraftSchema(PreviewArgs):
    condition = fields.Raw(required=True)
    recognition = fields.List(fields.Nested(RecognitionSchema), load_default=list, validate=validate.Length(max=20))
    requires_review = fields.Boolean(load_default=False)
    definition_id = fields.UUID(metadata={"description": "the definition being edited, if any"})


class VolumeSchema(Schema):
    customers = fields.Integer()
    credit_liability = fields.List(fields.Nested(MoneySchema))
    slack_alerts = fields.Integer()
    emails = fields.Integer()
    tasks = fields.Integer()
    held_for_review = fields.Integer()


class PreviewExampleSchema(Schema):
    id = fields.String()
    email = fields.String(allow_none=True)
    reached_at = fields.String(allow_none=True)
    celebrated = fields.Boolean()


class PreviewSchema(Schema):
    description = fields.String()
    mode = fields.String()
    days = fields.Integer()
    recent_since = fields.String(allow_none=True)
    customers = fields.Integer(metadata={"description": "customers evaluated"})
    qualifying = fields.Integer(metadata={"description": "customers who meet the condition today"})
    already_recorded = fields.Integer()
    celebrated = fields.Integer()
    historical = fields.Integer()
    celebration = fields.Nested(VolumeSchema)
    upcoming = fields.Nested(VolumeSchema, allow_none=True,
                             metadata={"description": "tenure conditions: who reaches it within `days`"})
    examples = fields.List(fields.Nested(PreviewExampleSchema))


@blp.route("/definitions")
@blp.arguments(DefinitionArgs, location="query")
@blp.response(200, page_of(DefinitionSchema))
def list_definitions(args: dict[str, Any]) -> Any:
    query = (
        select(MilestoneDefinition)
        .where(MilestoneDefinition.workspace_id == workspace_id())
        .order_by(MilestoneDefinition.sort_order, MilestoneDefinition.key)
    )
    for name in ("type", "enabled"):
        if name in args:
            query = query.where(getattr(MilestoneDefinition, name) == args[name])
    page = paginate(query, args)
    page["items"] = _describe(page["items"])
    return page


@blp.route("/definitions", methods=["POST"])
@blp.arguments(service.NewDefinition)
@blp.response(201, DefinitionSchema)
def create_definition(body: dict[str, Any]) -> Any:
    db = session()
    row = service.create(db, workspace_id(), body)
    db.commit()
    return _describe([row])[0]


@blp.route("/definitions/<uuid:definition_id>")
@blp.response(200, DefinitionSchema)
def get_definition(definition_id: uuid.UUID) -> Any:
    return _describe([service.get(session(), workspace_id(), definition_id)])[0]


@blp.route("/definitions/<uuid:definition_id>", methods=["PATCH"])
@blp.arguments(service.DefinitionChanges)
@blp.response(200, DefinitionSchema)
def update_definition(body: dict[str, Any], definition_id: uuid.UUID) -> Any:
    """Change any of the fields; the key stays."""
    db = session()
    row = service.get(db, workspace_id(), definition_id)
    service.update(row, body)
    db.commit()
    return _describe([row])[0]


@blp.route("/definitions/<uuid:definition_id>", methods=["DELETE"])
@blp.response(204)
def delete_definition(definition_id: uuid.UUID) -> Any:
    """Only a definition nothing was recorded under (409 otherwise: disable it instead)."""
    db = session()
    service.delete(db, service.get(db, workspace_id(), definition_id))
    db.commit()
    return Response(status=204)


@blp.route("/definitions/<uuid:definition_id>/enable", methods=["POST"])
@blp.response(200, DefinitionSchema)
def enable_definition(definition_id: uuid.UUID) -> Any:
    return _switch(definition_id, True)


@blp.route("/definitions/<uuid:definition_id>/disable", methods=["POST"])
@blp.response(200, DefinitionSchema)
def disable_definition(definition_id: uuid.UUID) -> Any:
    return _switch(definition_id, False)


@blp.route("/definitions/validate", methods=["POST"])
@blp.arguments(ConditionSchema)
@blp.response(200, ValidationSchema)
def validate_condition(body: dict[str, Any]) -> Any:
    """Whether a condition parses, and what it means in plain English (400 says where it fails)."""
    parsed = service.parse(body["condition"])
    return {"valid": True, "description": describe(parsed), "condition": to_json(parsed)}


@blp.route("/definitions/<uuid:definition_id>/preview")
@blp.arguments(PreviewArgs, location="query")
@blp.response(200, PreviewSchema)
def preview_definition(args: dict[str, Any], definition_id: uuid.UUID) -> Any:
    """What-if for a stored definition: who qualifies now, celebrated vs historical, what it costs."""
    row = service.get(session(), workspace_id(), definition_id)
    draft = Draft(service.parse(row.condition), list(row.recognition or []), row.requires_review, row.id)
    return preview(session(), workspace(), draft, mode=args["celebrate"], days=args["days"])


@blp.route("/definitions/preview", methods=["POST"])
@blp.arguments(DraftSchema)
@blp.response(200, PreviewSchema)
def preview_draft(body: dict[str, Any]) -> Any:
    """What-if for an edited definition before it is saved."""
    definition_id = body.get("definition_id")
    if definition_id is not None:
        service.get(session(), workspace_id(), definition_id)  # 404 for another workspace's
    draft = Draft(service.parse(body["condition"]), body["recognition"], body["requires_review"], definition_id)
    return preview(session(), workspace(), draft, mode=body["celebrate"], days=body["days"])


def _switch(definition_id: uuid.UUID, enabled: bool) -> Any:
    db = session()
    row = service.get(db, workspace_id(), definition_id)
    row.enabled = enabled
    db.commit()
    return _describe([row])[0]


def _describe(rows: list[MilestoneDefinition]) -> list[dict[str, Any]]:
    counts: dict[uuid.UUID, int] = {}
    if rows:
        counts = dict(session().execute(
            select(CustomerMilestone.definition_id, func.count())
            .where(CustomerMilestone.definition_id.in_([r.id for r in rows]))
            .group_by(CustomerMilestone.definition_id)
        ).tuples().all())
    return [
        {
            "id": r.id, "key": r.key, "name": r.name, "type": r.type, "condition": r.condition,
            "condition_description": service.summary(r), "description": r.description,
            "celebration_template": r.celebration_template, "enabled": r.enabled, "recognition": r.recognition or [],
            "requires_review": r.requires_review, "escalate": r.escalate, "significant": r.significant,
            "sort_order": r.sort_order, "refund_policy": r.refund_policy, "credit_hold_days": r.credit_hold_days,
            "milestones": counts.get(r.id, 0), "created_at": r.created_at,
            "updated_at": r.updated_at,
        }
        for r in rows
    ]
