"""The monthly dashboard (figures defined in :mod:`plugin.admin.dashboard`)."""

from __future__ import annotations

from datetime import date
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from plugin.admin.dashboard import dashboard
from plugin.admin.retention import DEFAULT_WINDOW_DAYS, MIN_GROUP
from plugin.db import utcnow
from plugin.milestones.tenure import local_zone
from plugin.web.api.core import Resource, session, workspace
from plugin.web.api.schemas import MoneySchema

blp = Resource("dashboard", __name__, description="Monthly figures: tracker, credits, PRD-114 and RHF targets")


class Month(fields.String):
    """``YYYY-MM``, loaded as the month's first day."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:  # type: ignore[override]
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            year, month = (int(part) for part in text.split("-"))
            if len(text) != 7 or not 1900 <= year <= 2999:
                raise ValueError
            return date(year, month, 1)
        except ValueError:
            raise ValidationError("must be a month as YYYY-MM, e.g. 2026-03") from None


class DashboardArgs(Schema):
    month = Month(metadata={"description": "YYYY-MM in the workspace's timezone; this month when left out",
                            "pattern": r"^\d{4}-\d{2}$"})
    lift_window_days = fields.Integer(
        load_default=DEFAULT_WINDOW_DAYS, validate=validate.Range(min=1, max=365),
        metadata={"description": "retention lift: a repeat purchase counts within this many days after the milestone"},
    )


class TrackerRowSchema(Schema):
    key = fields.String()
    name = fields.String()
    type = fields.String()
    count = fields.Integer()
    value = fields.List(fields.Nested(MoneySchema), metadata={"description": "store credit issued for them"})


class WeekSchema(Schema):
    week_of = fields.String(metadata={"description": "the Monday the week starts"})
    count = fields.Integer()


class RateSchema(Schema):
    count = fields.Integer()
    of = fields.Integer()
    rate = fields.String(allow_none=True, metadata={"description": "0..1, 4 places; null when there is none"})
    target = fields.String()
    met = fields.Boolean(allow_none=True)


class WaitSchema(Schema):
    celebrated = fields.Integer()
    median_seconds = fields.Integer(allow_none=True)
    median = fields.String(allow_none=True)
    target_seconds = fields.Integer(metadata={"description": "a day: RHF recognises milestones daily"})
    met = fields.Boolean(allow_none=True)


class ResponseRateSchema(RateSchema):
    source = fields.String(metadata={"description": "where responses come from: marked by hand on the settings page"})


class MonthSchema(Schema):
    month = fields.String(metadata={"description": "YYYY-MM"})
    milestones = fields.Integer()
    credits_issued = fields.List(fields.Nested(MoneySchema))


class GroupSchema(Schema):
    milestones = fields.Integer()
    repeat = fields.Integer(metadata={"description": "of them, whose customer ordered again within the window"})
    rate = fields.String(allow_none=True)


class LiftSchema(Schema):
    recognised = fields.Nested(GroupSchema)
    held_out = fields.Nested(GroupSchema)
    lift = fields.String(allow_none=True, metadata={"description": "recognised rate / held-out rate - 1"})
    difference = fields.String(allow_none=True, metadata={"description": "recognised rate - held-out rate"})
    conclusive = fields.Boolean(metadata={"description": f"both groups have at least {MIN_GROUP} milestones"})
    target = fields.String()
    met = fields.Boolean(allow_none=True)


class DefinitionLiftSchema(LiftSchema):
    key = fields.String()
    name = fields.String()
    holdout_percent = fields.String(allow_none=True)


class RetentionLiftSchema(Schema):
    window_days = fields.Integer()
    cohort_from = fields.String()
    cohort_until = fields.String()
    definitions = fields.List(fields.Nested(DefinitionLiftSchema))
    overall = fields.Nested(LiftSchema, allow_none=True)


class RetentionValueSchema(Schema):
    amounts = fields.List(fields.Nested(MoneySchema))
    customers = fields.Integer(metadata={"description": "customers recognised in the month"})
    monthly_spend = fields.String(metadata={"description": "their average monthly spend, together"})
    lift = fields.String()
    lift_source = fields.String(metadata={"description": "measured (against the holdout) or target (RHF's +15%)"})
    horizon_months = fields.Integer()
    assumption = fields.String()


class EffectHealthSchema(Schema):
    retrying = fields.Integer()
    dead = fields.Integer()
    no_connection = fields.Integer()


class DashboardSchema(Schema):
    month = fields.String()
    timezone = fields.String()
    from_ = fields.String(data_key="from")
    until = fields.String()
    milestones = fields.Integer()
    tracker = fields.List(fields.Nested(TrackerRowSchema))
    milestones_per_week = fields.List(fields.Nested(WeekSchema))
    credits_issued = fields.List(fields.Nested(MoneySchema))
    significant_celebrated = fields.Nested(RateSchema, metadata={"description": "PRD-114: target 80%"})
    recognition_rate = fields.Nested(RateSchema, metadata={"description": "RHF: target 100%"})
    time_to_celebration = fields.Nested(WaitSchema)
    response_rate = fields.Nested(ResponseRateSchema, metadata={"description": "RHF: more than 10%"})
    retention_lift = fields.Nested(RetentionLiftSchema, metadata={"description": "RHF: +15%"})
    retention_value = fields.Nested(RetentionValueSchema)
    weekly = fields.List(fields.Nested(WeekSchema), metadata={"description": "12 weeks up to this month's end"})
    monthly = fields.List(fields.Nested(MonthSchema), metadata={"description": "6 months up to this one"})
    effects = fields.Nested(EffectHealthSchema)
    pending_reviews = fields.Integer(metadata={"description": "milestones waiting for review now"})


@blp.route("/dashboard")
@blp.arguments(DashboardArgs, location="query")
@blp.response(200, DashboardSchema)
def get_dashboard(args: dict[str, Any]) -> Any:
    ws = workspace()
    month = args.get("month") or utcnow().astimezone(local_zone(None, ws.timezone)).date().replace(day=1)
    figures = dashboard(session(), ws, month, lift_window_days=args["lift_window_days"])
    figures["from_"] = figures.pop("from")
    return figures
