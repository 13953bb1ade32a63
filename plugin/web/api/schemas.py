"""Schemas shared by several resources: paging, milestones, effects, money.

Response schemas dump plain Python values (UUIDs, datetimes, Decimals), so what the API sends
is exactly what the OpenAPI document describes.
"""

from __future__ import annotations

from datetime import UTC, date
from functools import cache
from typing import Any

from marshmallow import Schema, fields, validate

from plugin.models import CustomerMilestone, Effect
from plugin.web.api.core import MAX_PER_PAGE

EARLIEST, LATEST = date(1900, 1, 1), date(2999, 12, 31)


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PER_PAGE))


@cache
def page_of(item: type[Schema]) -> type[Schema]:
    name = item.__name__.removesuffix("Schema") + "PageSchema"
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item), required=True),
            "total": fields.Integer(required=True),
            "page": fields.Integer(required=True),
            "per_page": fields.Integer(required=True),
        },
        name=name,
    )


def text(max_length: int, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


def day(**kwargs: Any) -> fields.Date:
    return fields.Date(validate=validate.Range(min=EARLIEST, max=LATEST), **kwargs)


def when(**kwargs: Any) -> fields.AwareDateTime:
    return fields.AwareDateTime(default_timezone=UTC, **kwargs)


class MoneySchema(Schema):
    currency = fields.String(required=True)
    amount = fields.String(required=True, metadata={"description": "decimal, 2 places"})


class EffectBriefSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    status = fields.String()
    last_error = fields.String(allow_none=True)


class EffectSchema(EffectBriefSchema):
    milestone_id = fields.UUID()
    connection_id = fields.UUID(allow_none=True)
    attempts = fields.Integer()
    next_attempt_at = when()
    external_id = fields.String(allow_none=True)
    completed_at = when(allow_none=True)
    payload = fields.Dict()


class MilestoneSchema(Schema):
    id = fields.UUID(required=True)
    key = fields.String(required=True, metadata={"description": "the definition's key"})
    definition_id = fields.UUID()
    customer_id = fields.UUID()
    customer_email = fields.String(allow_none=True)
    milestone_type = fields.String()
    milestone_name = fields.String()
    milestone_value = fields.String(allow_none=True)
    occurrence = fields.Integer()
    achieved_at = when()
    time_to_milestone_days = fields.Integer(allow_none=True)
    status = fields.String(metadata={"description": "active, pending_review, historical or rejected"})
    celebrated = fields.Boolean()
    celebrated_at = when(allow_none=True)
    celebration_type = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)
    effects = fields.List(fields.Nested(EffectBriefSchema))


def milestone_data(m: CustomerMilestone, key: str, *, email: str | None = None, with_customer: bool = False,
                   effects: list[Effect] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": m.id,
        "key": key,
        "definition_id": m.definition_id,
        "milestone_type": m.milestone_type,
        "milestone_name": m.milestone_name,
        "milestone_value": m.milestone_value,
        "occurrence": m.occurrence,
        "achieved_at": m.achieved_at,
        "time_to_milestone_days": m.time_to_milestone.days if m.time_to_milestone is not None else None,
        "status": m.status,
        "celebrated": m.celebrated,
        "celebrated_at": m.celebrated_at,
        "celebration_type": m.celebration_type,
        "notes": m.notes,
    }
    if with_customer:
        data["customer_id"] = m.customer_id
        data["customer_email"] = email or ""
    if effects is not None:
        data["effects"] = effects
    return data
