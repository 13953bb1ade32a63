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
from plugin.engine.conditions import Condition, InvalidCondition, describe, parse_condition, to_json
from plugin.models import CustomerMilestone, MilestoneDefinition

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
