"""Milestone definitions as an admin edits them: validated, keyed, never silently destructive.

A condition is stored in the engine's canonical JSON (``threshold`` becomes ``gte``), so what is
shown back is what is evaluated. Admin-made definitions get a ``key`` from their name
("VIP Breakfast Club" → ``vip-breakfast-club``, then ``-2``…), stable once given. A definition
that already has milestones cannot be deleted (they would go with it, effects and all): it is
disabled instead.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from marshmallow import Schema, ValidationError, fields, validate, validates
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.admin.errors import Conflict, Invalid, NotFound
from plugin.admin.recognition import RecognitionSchema
from plugin.engine.conditions import (
    Condition,
    InvalidCondition,
    describe,
    metrics_of,
    parse_condition,
    to_json,
)
from plugin.milestones.reversals import MAX_HOLD_DAYS, REFUND_POLICIES
from plugin.milestones.wording import METRIC_WORDS
from plugin.models import Customer, CustomerMetric, CustomerMilestone, MilestoneDefinition

TYPES = ("order", "spend", "time", "usage", "adoption", "business", "custom")
KEY_PATTERN = r"^[a-z0-9][a-z0-9-]{0,99}\Z"
KEY_MAX = 100


def parse(value: Any) -> Condition:
    """The condition, or :class:`Invalid` with the engine's message and where it fails."""
    try:
        return parse_condition(value)
    except InvalidCondition as exc:
        raise Invalid(f"invalid condition: {exc}", {"condition": {"message": exc.message, "path": exc.path}}) from exc


class ConditionField(fields.Dict):
    """A milestone condition (the engine's grammar), loaded as its canonical JSON."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return to_json(parse_condition(value))
        except InvalidCondition as exc:
            raise ValidationError(str(exc)) from exc


def _name(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=255), **kwargs)


def _type(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.OneOf(TYPES), **kwargs)


def _condition(**kwargs: Any) -> ConditionField:
    return ConditionField(
        metadata={"description": 'e.g. {"metric": "order_count", "gte": 25}, {"tenure": {"years": 1}}, {"all": [...]}'},
        **kwargs,
    )


class DefinitionChanges(Schema):
    """Everything an admin may change on a definition (the key stays)."""

    name = _name()
    type = _type()
    condition = _condition()
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    celebration_template = fields.String(allow_none=True, validate=validate.Length(max=20000))
    enabled = fields.Boolean()
    recognition = fields.List(fields.Nested(RecognitionSchema), validate=validate.Length(max=20))
    requires_review = fields.Boolean(metadata={"description": "rewards wait in the review queue"})
    escalate = fields.Boolean()
    significant = fields.Boolean(metadata={"description": "counts for PRD-114's 80% celebrated target"})
    sort_order = fields.Integer(strict=True, validate=validate.Range(min=0, max=100_000))
    refund_policy = fields.String(
        validate=validate.OneOf(REFUND_POLICIES, error="unknown refund policy {input!r}: use one of {choices}"),
        metadata={"description": "when a refund or cancellation takes the customer back below the milestone: "
                                 "keep (the default) keeps its rewards, claw_back takes paid store credit back, "
                                 "revoke marks it revoked and tells the CSM"},
    )
    credit_hold_days = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_HOLD_DAYS, error="a credit hold is 0 to {max} days"),
        metadata={"description": "store credit and discount codes are paid this many days after the qualifying "
                                 "order, if it was not refunded or cancelled meanwhile (empty or 0: at once)"},
    )

    @validates("celebration_template")
    def _template_parses(self, value: str | None, **kwargs: Any) -> None:
        if value:
            try:
                SandboxedEnvironment().parse(value)
            except TemplateSyntaxError as exc:
                raise ValidationError(f"line {exc.lineno}: {exc.message}") from exc


class NewDefinition(DefinitionChanges):
    name = _name(required=True)
    type = _type(required=True)
    condition = _condition(required=True)
    key = fields.String(
        validate=validate.Regexp(KEY_PATTERN, error="must be lowercase letters, digits and -, at most 100"),
        metadata={"description": "generated from the name when left out"},
    )


def get(session: Session, workspace_id: uuid.UUID, definition_id: uuid.UUID) -> MilestoneDefinition:
    row = session.execute(
        select(MilestoneDefinition).where(
            MilestoneDefinition.id == definition_id, MilestoneDefinition.workspace_id == workspace_id
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no milestone definition {definition_id}")
    return row


def create(session: Session, workspace_id: uuid.UUID, values: dict[str, Any]) -> MilestoneDefinition:
    values = dict(values)
    key = values.pop("key", None)
    taken = set(
        session.execute(select(MilestoneDefinition.key).where(MilestoneDefinition.workspace_id == workspace_id)).scalars()
    )
    if key is None:
        key = unique_key(values["name"], taken)
    elif key in taken:
        raise Conflict(f"a definition with key {key!r} exists", {"key": ["already used in this workspace"]})
    highest = session.scalar(
        select(func.max(MilestoneDefinition.sort_order)).where(MilestoneDefinition.workspace_id == workspace_id)
    )
    row = MilestoneDefinition(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        key=key,
        enabled=values.pop("enabled", True),
        recognition=values.pop("recognition", []),
        requires_review=values.pop("requires_review", False),
        escalate=values.pop("escalate", False),
        significant=values.pop("significant", False),
        sort_order=values.pop("sort_order", (highest or 0) + 1),
        **values,
    )
    session.add(row)
    session.flush()
    return row


def update(row: MilestoneDefinition, values: dict[str, Any]) -> None:
    for name, value in values.items():
        setattr(row, name, value)


def delete(session: Session, row: MilestoneDefinition) -> None:
    awarded = session.scalar(
        select(func.count()).select_from(CustomerMilestone).where(CustomerMilestone.definition_id == row.id)
    )
    if awarded:
        raise Conflict(
            f"{awarded} milestone(s) were recorded under this definition; disable it instead",
            {"milestones": awarded},
        )
    session.delete(row)


def unique_key(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[: KEY_MAX - 6].strip("-") or "milestone"
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}-{n}"
    return key


def summary(row: MilestoneDefinition) -> str | None:
    """The condition in plain English, or None for a stored condition that no longer parses."""
    try:
        return describe(parse_condition(row.condition))
    except InvalidCondition:
        return None


def canonical(condition: Any) -> dict[str, Any] | None:
    """A stored condition in canonical JSON (``threshold`` → ``gte``), or None if it no longer parses."""
    try:
        return to_json(parse_condition(condition))
    except InvalidCondition:
        return None


def known_metrics(session: Session, workspace_id: uuid.UUID) -> list[str]:
    """The metrics a condition can usefully read in this workspace, for the editor to offer: the
    pipeline's own counters, those the workspace's definitions read, and every metric its
    customers have a value for (CRM properties, usage, feature flags)."""
    names = set(METRIC_WORDS)
    for (condition,) in session.execute(
        select(MilestoneDefinition.condition).where(MilestoneDefinition.workspace_id == workspace_id)
    ):
        try:
            names |= metrics_of(parse_condition(condition))
        except InvalidCondition:
            continue
    names |= set(
        session.execute(
            select(CustomerMetric.metric).distinct()
            .join(Customer, Customer.id == CustomerMetric.customer_id)
            .where(Customer.workspace_id == workspace_id)
        ).scalars()
    )
    return sorted(names, key=lambda n: (n not in METRIC_WORDS, n))


def customers_reached(session: Session, definition_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many customers reached each definition (historical ones included, repeats once)."""
    if not definition_ids:
        return {}
    rows = session.execute(
        select(CustomerMilestone.definition_id, func.count(func.distinct(CustomerMilestone.customer_id)))
        .where(CustomerMilestone.definition_id.in_(definition_ids))
        .group_by(CustomerMilestone.definition_id)
    ).tuples()
    return dict(rows.all())
