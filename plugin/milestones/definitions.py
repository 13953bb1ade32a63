"""Enabled definitions of a workspace, parsed once per batch."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.engine.conditions import Condition, metrics_of, parse_condition, uses_tenure
from plugin.models import MilestoneDefinition


@dataclass(frozen=True)
class ActiveDefinition:
    id: uuid.UUID
    key: str
    type: str
    name: str
    condition: Condition
    metrics: frozenset[str]
    uses_tenure: bool
    recognition: tuple[dict[str, Any], ...]
    requires_review: bool
    escalate: bool
    celebration_template: str | None
    created_at: datetime
    refund_policy: str = "keep"
    credit_hold_days: int | None = None

    @classmethod
    def of(cls, row: MilestoneDefinition) -> ActiveDefinition:
        condition = parse_condition(row.condition)
        return cls(
            id=row.id,
            key=row.key,
            type=row.type,
            name=row.name,
            condition=condition,
            metrics=metrics_of(condition),
            uses_tenure=uses_tenure(condition),
            recognition=tuple(row.recognition or ()),
            requires_review=row.requires_review,
            escalate=row.escalate,
            celebration_template=row.celebration_template,
            created_at=row.created_at,
            refund_policy=row.refund_policy,
            credit_hold_days=row.credit_hold_days,
        )


_parsed: dict[tuple[uuid.UUID, datetime], ActiveDefinition] = {}


def _active(row: MilestoneDefinition) -> ActiveDefinition:
    """Parsing a condition costs far more than reading it; every batch reads, few rows change."""
    key = (row.id, row.updated_at)
    found = _parsed.get(key)
    if found is None:
        if len(_parsed) > 10_000:
            _parsed.clear()
        found = _parsed[key] = ActiveDefinition.of(row)
    return found


def enabled_definitions(session: Session, workspace_ids: set[uuid.UUID]) -> dict[uuid.UUID, list[ActiveDefinition]]:
    rows = session.execute(
        select(MilestoneDefinition)
        .where(MilestoneDefinition.workspace_id.in_(workspace_ids), MilestoneDefinition.enabled.is_(True))
        .order_by(MilestoneDefinition.sort_order, MilestoneDefinition.key)
    ).scalars()
    found: dict[uuid.UUID, list[ActiveDefinition]] = {ws: [] for ws in workspace_ids}
    for row in rows:
        found[row.workspace_id].append(_active(row))
    return found
