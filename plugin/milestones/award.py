"""Recording crossings as milestones, exactly once, with their effects in the same transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.milestones.definitions import ActiveDefinition
from plugin.milestones.planning import plan_effects
from plugin.milestones.policies import in_holdout
from plugin.models import CustomerMilestone, Workspace
from plugin.upsert import upsert

ACTIVE = "active"
HISTORICAL = "historical"
PENDING_REVIEW = "pending_review"


@dataclass(frozen=True)
class Crossing:
    workspace_id: uuid.UUID
    customer_id: uuid.UUID
    definition: ActiveDefinition
    occurrence: int
    value: str
    achieved_at: datetime
    customer_since: datetime | None
    metrics: dict[str, str]
    source: str
    historical: bool = False
    order_id: int | None = None  # the ledger row of the order that qualified the customer
    # Crossings of one customer with the same occasion share one message (plugin.milestones.combined);
    # None: those crossed at the same moment (one order, one usage reading, one scan day).
    occasion: str | None = None


def award(session: Session, crossings: list[Crossing]) -> list[uuid.UUID]:
    """Insert one milestone per new crossing (the unique key drops repeats) and plan its effects.

    Returns the ids of the milestones that were new.
    """
    if not crossings:
        return []
    now = utcnow()
    settings = dict(
        session.execute(
            select(Workspace.id, Workspace.settings).where(Workspace.id.in_({c.workspace_id for c in crossings}))
        ).tuples().all()
    )
    rows: list[dict[str, Any]] = []
    for crossing in crossings:
        definition = crossing.definition
        status = HISTORICAL if crossing.historical else (PENDING_REVIEW if definition.requires_review else ACTIVE)
        rows.append(
            {
                "id": uuid.uuid4(),
                "workspace_id": crossing.workspace_id,
                "customer_id": crossing.customer_id,
                "definition_id": definition.id,
                "occurrence": crossing.occurrence,
                "milestone_type": definition.type,
                "milestone_name": definition.name,
                "milestone_value": crossing.value,
                "achieved_at": crossing.achieved_at,
                "time_to_milestone": (
                    max(crossing.achieved_at - crossing.customer_since, timedelta(0))
                    if crossing.customer_since
                    else None
                ),
                "status": status,
                "celebrated": False,
                "order_id": crossing.order_id,
                "context": {
                    "metrics": crossing.metrics,
                    "source": crossing.source,
                    **(
                        {"holdout": True}
                        if in_holdout(settings.get(crossing.workspace_id) or {}, definition.key, crossing.customer_id)
                        else {}
                    ),
                },
                "created_at": now,
            }
        )
    statement = upsert(
        session, CustomerMilestone.__table__, conflict=["customer_id", "definition_id", "occurrence"], returning=["id"]
    )
    new_ids = set(session.execute(statement, rows).scalars().all())
    # In crossing order: a customer's combined message leads with the milestone crossed first.
    fresh = [(row, crossing) for row, crossing in zip(rows, crossings, strict=True) if row["id"] in new_ids]
    plan_effects(session, [(row, crossing) for row, crossing in fresh if row["status"] != HISTORICAL])
    return sorted(new_ids, key=str)
