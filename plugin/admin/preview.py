"""What-if for a definition before it is enabled or changed: who qualifies, and what it would cost.

Customers already past a new condition never *cross* it (the engine celebrates crossings), so
enabling a definition celebrates nobody at once: the ones who qualify are recorded as historical
when the history is backfilled — unless the admin asks for a retroactive celebration of all of
them, or of those who got there in the last ``days``. The preview answers for the mode asked.

It evaluates every customer of the workspace with the engine, from ``customer_metrics`` (only the
metrics the condition reads): one query, then Python — fine for tens of thousands of customers;
a workspace with millions would want the condition compiled to SQL, as the backfill does.

When a customer got there is estimated: a tenure condition exactly (its anniversary), a metric
by when the counter last changed (an upper bound: the crossing was then or earlier), all/any by
the latest / earliest of their parts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.admin.recognition import count_kind, credit_amounts
from plugin.db import utcnow
from plugin.engine.conditions import (
    AllOf,
    AnyOf,
    Condition,
    Facts,
    MetricCondition,
    TenureCondition,
    crossed,
    describe,
    holds,
    metrics_of,
    uses_tenure,
)
from plugin.engine.dates import add_months
from plugin.milestones.tenure import local_zone
from plugin.models import Customer, CustomerMetric, CustomerMilestone, Workspace

Mode = Literal["none", "recent", "all"]
EXAMPLES = 5


@dataclass(frozen=True)
class Draft:
    """What is previewed: a stored definition or an edited one not saved yet."""

    condition: Condition
    recognition: list[dict[str, Any]]
    requires_review: bool = False
    definition_id: uuid.UUID | None = None


@dataclass
class _Tally:
    customers: int = 0
    qualifying: int = 0
    already_recorded: int = 0
    celebrated: int = 0
    historical: int = 0
    upcoming: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


def preview(session: Session, workspace: Workspace, draft: Draft, *, mode: Mode = "none", days: int = 30,
            now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    since_cutoff = now - timedelta(days=days)
    metric_names = sorted(metrics_of(draft.condition))
    readings = _readings(session, workspace.id, metric_names)
    recorded = _recorded(session, draft.definition_id)
    tally = _Tally()
    tenure = uses_tenure(draft.condition)
    for customer_id, email, since, tz_name in session.execute(
        select(Customer.id, Customer.email, Customer.customer_since, Customer.timezone)
        .where(Customer.workspace_id == workspace.id)
        .order_by(Customer.created_at, Customer.id)
    ):
        tally.customers += 1
        zone = local_zone(tz_name, workspace.timezone)
        values, changed = readings.get(customer_id, ({}, {}))
        local_since = since.astimezone(zone) if since else None
        today = now.astimezone(zone).date()
        facts = Facts(values, local_since, today)
        if not holds(draft.condition, facts):
            if tenure and holds(draft.condition, Facts(values, local_since, today + timedelta(days=days))):
                tally.upcoming += 1
            continue
        tally.qualifying += 1
        if customer_id in recorded:
            tally.already_recorded += 1
            continue
        reached = _reached_at(draft.condition, facts, changed, zone)
        celebrate = mode == "all" or (mode == "recent" and reached is not None and reached >= since_cutoff)
        if celebrate:
            tally.celebrated += 1
        else:
            tally.historical += 1
        if len(tally.examples) < EXAMPLES:
            tally.examples.append({"id": str(customer_id), "email": email, "reached_at": _iso(reached),
                                   "celebrated": celebrate})
    return _answer(workspace, draft, tally, mode, days, since_cutoff, tenure)


def _answer(workspace: Workspace, draft: Draft, tally: _Tally, mode: Mode, days: int, cutoff: datetime,
            tenure: bool) -> dict[str, Any]:
    per_milestone = credit_amounts(draft.recognition, workspace.currency)

    def volume(count: int) -> dict[str, Any]:
        return {
            "customers": count,
            "credit_liability": [
                {"currency": code, "amount": f"{amount * count:.2f}"} for code, amount in sorted(per_milestone.items())
            ],
            "slack_alerts": count * count_kind(draft.recognition, "slack_alert"),
            "emails": count * count_kind(draft.recognition, "email"),
            "tasks": count * count_kind(draft.recognition, "task"),
            "held_for_review": count if draft.requires_review else 0,
        }

    return {
        "description": describe(draft.condition),
        "mode": mode,
        "days": days,
        "recent_since": cutoff.isoformat() if mode == "recent" else None,
        "customers": tally.customers,
        "qualifying": tally.qualifying,
        "already_recorded": tally.already_recorded,
        "celebrated": tally.celebrated,
        "historical": tally.historical,
        "celebration": volume(tally.celebrated),
        # Tenure is the one thing we can project: who reaches it within ``days`` from today.
        "upcoming": volume(tally.upcoming) if tenure else None,
        "examples": tally.examples,
    }


def _readings(
    session: Session, workspace_id: uuid.UUID, names: list[str]
) -> dict[uuid.UUID, tuple[dict[str, Decimal], dict[str, datetime]]]:
    found: dict[uuid.UUID, tuple[dict[str, Decimal], dict[str, datetime]]] = {}
    if not names:
        return found
    rows = session.execute(
        select(CustomerMetric.customer_id, CustomerMetric.metric, CustomerMetric.value, CustomerMetric.updated_at)
        .join(Customer, Customer.id == CustomerMetric.customer_id)
        .where(Customer.workspace_id == workspace_id, CustomerMetric.metric.in_(names))
    )
    for customer_id, metric, value, updated_at in rows:
        values, changed = found.setdefault(customer_id, ({}, {}))
        values[metric] = Decimal(value)
        changed[metric] = updated_at
    return found


def _recorded(session: Session, definition_id: uuid.UUID | None) -> set[uuid.UUID]:
    if definition_id is None:
        return set()
    return set(
        session.execute(
            select(CustomerMilestone.customer_id).where(CustomerMilestone.definition_id == definition_id).distinct()
        ).scalars()
    )


def _reached_at(condition: Condition, facts: Facts, changed: dict[str, datetime], zone: ZoneInfo) -> datetime | None:
    """When ``facts`` came to meet ``condition`` (estimated; see the module docstring)."""
    if isinstance(condition, AllOf):
        parts = [_reached_at(c, facts, changed, zone) for c in condition.children]
        return None if any(p is None for p in parts) else max(p for p in parts if p is not None)
    if isinstance(condition, AnyOf):
        times = [_reached_at(c, facts, changed, zone) for c in condition.children if holds(c, facts)]
        known = [t for t in times if t is not None]
        return min(known) if known else None
    if isinstance(condition, MetricCondition):
        return changed.get(condition.metric)
    return _anniversary(condition, facts, zone)


def _anniversary(condition: TenureCondition, facts: Facts, zone: ZoneInfo) -> datetime | None:
    if facts.customer_since is None:
        return None
    reached = crossed(condition, Facts({}, None, facts.as_of), facts)
    if not reached:
        return None
    units = condition.amount + (reached[-1].number - 1) * (condition.every or 0)
    start: date = facts.customer_since.date()
    day = (
        start + timedelta(days=units)
        if condition.unit == "days"
        else add_months(start, units * (12 if condition.unit == "years" else 1))
    )
    return datetime.combine(day, time(), zone)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


MODES: tuple[Mode, ...] = ("none", "recent", "all")


def compare(session: Session, workspace: Workspace, draft: Draft, *, days: int = 30,
            now: datetime | None = None) -> dict[str, Any]:
    """The preview under each way of treating the customers who already qualify, side by side,
    for the settings page: ``{"none": …, "recent": …, "all": …}`` (each as :func:`preview`
    answers), evaluated at the same instant. Three passes over the customers: a page asks
    for it once per click, and the one-pass form would duplicate :func:`preview`."""
    now = now or utcnow()
    return {mode: preview(session, workspace, draft, mode=mode, days=days, now=now) for mode in MODES}
