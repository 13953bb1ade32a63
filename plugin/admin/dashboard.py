"""The monthly figures: RHF's tracker and PRD-114's success metrics, for one workspace and month.

The month is the workspace's local calendar month. Figures, and what each counts:

* ``tracker`` — per definition, milestones achieved in the month (historical ones, recorded
  without rewards, are left out) and their ``value``: the store credit actually issued for them
  (succeeded store_credit effects), per currency.
* ``credits_issued`` — every store credit that succeeded in the month, per currency.
* ``significant_celebrated`` — PRD-114's "celebrate 80% of significant milestones": of the
  month's milestones of definitions marked significant (not historical, not rejected), the
  share marked celebrated.
* ``recognition_rate`` — RHF's 100% target: of the month's milestones to be recognised (not
  historical; a rejected one was decided against, so it is left out too), the share whose every
  effect succeeded or, for a task, was done.
* ``time_to_celebration`` — median from achieved to celebrated, over those celebrated.
* ``effects`` — right now, not per month: retrying (failed, due again), dead, and with no
  connection able to run them.
"""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.admin.reviews import REJECTED
from plugin.milestones.award import HISTORICAL
from plugin.milestones.tenure import local_zone
from plugin.models import CustomerMilestone, Effect, MilestoneDefinition, Workspace
from plugin.models import effect as effect_status

SIGNIFICANT_TARGET = Decimal("0.80")
RECOGNITION_TARGET = Decimal("1.00")
RECOGNISED = frozenset({effect_status.SUCCEEDED, effect_status.DONE_TASK})
Money = dict[str, Decimal]


def month_bounds(month: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return datetime.combine(first, time(), zone), datetime.combine(following, time(), zone)


def dashboard(session: Session, workspace: Workspace, month: date) -> dict[str, Any]:
    zone = local_zone(None, workspace.timezone)
    start, end = month_bounds(month, zone)
    definitions = session.execute(
        select(MilestoneDefinition)
        .where(MilestoneDefinition.workspace_id == workspace.id)
        .order_by(MilestoneDefinition.sort_order, MilestoneDefinition.key)
    ).scalars().all()
    significant = {d.id for d in definitions if d.significant}
    in_month = (
        CustomerMilestone.workspace_id == workspace.id,
        CustomerMilestone.achieved_at >= start,
        CustomerMilestone.achieved_at < end,
        CustomerMilestone.status != HISTORICAL,
    )
    milestones = session.execute(
        select(CustomerMilestone.id, CustomerMilestone.definition_id, CustomerMilestone.status,
               CustomerMilestone.celebrated, CustomerMilestone.achieved_at, CustomerMilestone.celebrated_at)
        .where(*in_month)
    ).all()
    effects: dict[uuid.UUID, list[tuple[str, str, dict[str, Any]]]] = defaultdict(list)
    for milestone_id, kind, status, payload in session.execute(
        select(Effect.milestone_id, Effect.kind, Effect.status, Effect.payload)
        .join(CustomerMilestone, CustomerMilestone.id == Effect.milestone_id)
        .where(*in_month)
    ):
        effects[milestone_id].append((kind, status, payload or {}))

    counts: dict[uuid.UUID, int] = defaultdict(int)
    values: dict[uuid.UUID, Money] = defaultdict(dict)
    weeks: dict[date, int] = defaultdict(int)
    decided = [m for m in milestones if m.status != REJECTED]
    for m in milestones:
        counts[m.definition_id] += 1
        local_day = m.achieved_at.astimezone(zone).date()
        weeks[local_day - timedelta(days=local_day.weekday())] += 1
        for kind, status, payload in effects[m.id]:
            if kind == "store_credit" and status == effect_status.SUCCEEDED:
                _add(values[m.definition_id], payload, workspace.currency)
    significant_ones = [m for m in decided if m.definition_id in significant]
    recognised = [m for m in decided if all(status in RECOGNISED for _, status, _ in effects[m.id])]
    waits = [m.celebrated_at - m.achieved_at for m in milestones if m.celebrated_at is not None]
    return {
        "month": f"{month:%Y-%m}",
        "timezone": str(zone),
        "from": start.isoformat(),
        "until": end.isoformat(),
        "milestones": len(milestones),
        "tracker": [
            {"key": d.key, "name": d.name, "type": d.type, "count": counts[d.id], "value": _money(values[d.id])}
            for d in definitions
            if d.enabled or counts[d.id]
        ],
        "milestones_per_week": [{"week_of": week.isoformat(), "count": n} for week, n in sorted(weeks.items())],
        "credits_issued": _money(_credits_issued(session, workspace, start, end)),
        "significant_celebrated": _rate(sum(1 for m in significant_ones if m.celebrated), len(significant_ones),
                                        SIGNIFICANT_TARGET),
        "recognition_rate": _rate(len(recognised), len(decided), RECOGNITION_TARGET),
        "time_to_celebration": _median(waits),
        "effects": _effect_health(session, workspace.id),
    }


def _credits_issued(session: Session, workspace: Workspace, start: datetime, end: datetime) -> Money:
    issued_at = func.coalesce(Effect.completed_at, Effect.updated_at)
    totals: Money = {}
    for (payload,) in session.execute(
        select(Effect.payload).where(
            Effect.workspace_id == workspace.id,
            Effect.kind == "store_credit",
            Effect.status == effect_status.SUCCEEDED,
            issued_at >= start,
            issued_at < end,
        )
    ):
        _add(totals, payload or {}, workspace.currency)
    return totals


def _add(totals: Money, payload: dict[str, Any], currency: str) -> None:
    """The amount the effect asked the platform for (``request.amount``), never the wish."""
    money = (payload.get("request") or {}).get("amount") or {}
    try:
        amount = Decimal(str(money.get("amount")))
    except InvalidOperation:
        return
    if amount.is_finite():
        code = str(money.get("currency") or currency)
        totals[code] = totals.get(code, Decimal(0)) + amount


def _money(totals: Money) -> list[dict[str, str]]:
    return [{"currency": code, "amount": f"{amount:.2f}"} for code, amount in sorted(totals.items())]


def _rate(part: int, whole: int, target: Decimal) -> dict[str, Any]:
    rate = (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001")) if whole else None
    return {
        "count": part,
        "of": whole,
        "rate": str(rate) if rate is not None else None,
        "target": str(target),
        "met": rate >= target if rate is not None else None,
    }


def _median(waits: list[timedelta]) -> dict[str, Any]:
    if not waits:
        return {"celebrated": 0, "median_seconds": None, "median": None}
    seconds = statistics.median(max(w.total_seconds(), 0.0) for w in waits)
    return {"celebrated": len(waits), "median_seconds": int(seconds), "median": _duration(seconds)}


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    days = hours // 24
    return f"{days} days"


def _effect_health(session: Session, workspace_id: uuid.UUID) -> dict[str, int]:
    by_status: dict[str, int] = dict(
        session.execute(
            select(Effect.status, func.count())
            .where(Effect.workspace_id == workspace_id,
                   Effect.status.in_([effect_status.DEAD, effect_status.NO_CONNECTION]))
            .group_by(Effect.status)
        ).tuples().all()
    )
    retrying = session.scalar(
        select(func.count()).select_from(Effect).where(
            Effect.workspace_id == workspace_id,
            Effect.status == effect_status.PENDING,
            Effect.attempts > 0,
            Effect.last_error.is_not(None),
        )
    )
    return {
        "retrying": int(retrying or 0),
        "dead": int(by_status.get(effect_status.DEAD, 0)),
        "no_connection": int(by_status.get(effect_status.NO_CONNECTION, 0)),
    }
