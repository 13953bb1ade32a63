"""PRD-114 US-3: customers whose milestones make them case-study candidates, for marketing.

A candidate has at least one milestone of a definition marked ``significant`` (not rejected),
optionally of one milestone type, with at least the ARR and health score asked for. Biggest
accounts first. The CSV is for a spreadsheet: a cell that starts like a formula is quoted with
a leading apostrophe so the spreadsheet shows it instead of running it.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.orm import Session

from plugin.admin.reviews import REJECTED
from plugin.models import Customer, CustomerMilestone, MilestoneDefinition

CSV_COLUMNS = (
    "email", "name", "company", "arr", "health_score", "owner_email", "customer_since",
    "significant_milestones", "latest_milestone_at", "celebrated",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Filters:
    min_arr: Decimal | None = None
    min_health: int | None = None
    milestone_type: str | None = None


def _significant(workspace_id: uuid.UUID, milestone_type: str | None) -> Any:
    clauses = [
        CustomerMilestone.workspace_id == workspace_id,
        CustomerMilestone.status != REJECTED,
        MilestoneDefinition.significant.is_(True),
    ]
    if milestone_type:
        clauses.append(CustomerMilestone.milestone_type == milestone_type)
    return and_(*clauses)


def query(workspace_id: uuid.UUID, filters: Filters) -> Select[tuple[Customer]]:
    has_one = exists(
        select(CustomerMilestone.id)
        .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
        .where(CustomerMilestone.customer_id == Customer.id, _significant(workspace_id, filters.milestone_type))
    )
    # A customer who opted out of public celebration is never a case-study candidate; the opt-outs
    # are a JSON list, read as its text on both PostgreSQL and SQLite (plugin.milestones.policies).
    public_ok = func.coalesce(Customer.properties["opt_out"].as_string(), "").not_like('%"public"%')
    statement = select(Customer).where(Customer.workspace_id == workspace_id, has_one, public_ok)
    if filters.min_arr is not None:
        statement = statement.where(Customer.arr >= filters.min_arr)
    if filters.min_health is not None:
        statement = statement.where(Customer.health_score >= filters.min_health)
    return statement.order_by(
        Customer.arr.desc().nulls_last(), Customer.health_score.desc().nulls_last(), Customer.email, Customer.id
    )


def describe(session: Session, workspace_id: uuid.UUID, customers: list[Customer], filters: Filters) -> list[dict[str, Any]]:
    """Each candidate with their significant milestones, newest first."""
    found: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    if customers:
        rows = session.execute(
            select(CustomerMilestone, MilestoneDefinition.key)
            .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
            .where(
                CustomerMilestone.customer_id.in_([c.id for c in customers]),
                _significant(workspace_id, filters.milestone_type),
            )
            .order_by(CustomerMilestone.achieved_at.desc())
        )
        for milestone, key in rows:
            found[milestone.customer_id].append(
                {
                    "id": str(milestone.id),
                    "key": key,
                    "milestone_type": milestone.milestone_type,
                    "milestone_name": milestone.milestone_name,
                    "milestone_value": milestone.milestone_value,
                    "achieved_at": milestone.achieved_at.isoformat(),
                    "celebrated": milestone.celebrated,
                }
            )
    return [
        {
            "id": str(c.id),
            "email": c.email,
            "name": c.display_name,
            "company_name": c.company_name,
            "arr": f"{c.arr:.2f}" if c.arr is not None else None,
            "health_score": c.health_score,
            "owner_email": c.owner_email,
            "customer_since": c.customer_since.isoformat() if c.customer_since else None,
            "milestones": found[c.id],
        }
        for c in customers
    ]


def to_csv(candidates: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for c in candidates:
        milestones = c["milestones"]
        writer.writerow(
            _cell(value)
            for value in (
                c["email"], c["name"], c["company_name"], c["arr"], c["health_score"], c["owner_email"],
                c["customer_since"], "; ".join(m["milestone_name"] for m in milestones),
                milestones[0]["achieved_at"] if milestones else None,
                "yes" if any(m["celebrated"] for m in milestones) else "no",
            )
        )
    return out.getvalue()


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def significant_types(session: Session, workspace_id: uuid.UUID) -> list[str]:
    """The milestone types that have a significant definition: what the type filter offers."""
    return list(session.execute(
        select(MilestoneDefinition.type)
        .where(MilestoneDefinition.workspace_id == workspace_id, MilestoneDefinition.significant.is_(True))
        .distinct().order_by(MilestoneDefinition.type)
    ).scalars())
