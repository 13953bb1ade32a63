"""The monthly figures: RHF's tracker and PRD-114's success metrics, for one workspace and month.

The month is the workspace's local calendar month. Figures, and what each counts:

* ``tracker`` — per definition, milestones achieved in the month (historical ones, recorded
  without rewards, are left out) and their ``value``: the store credit actually issued for them
  (succeeded store_credit effects), per currency.
* ``credits_issued`` — every store credit that succeeded in the month, per currency.
* ``significant_celebrated`` — PRD-114's "celebrate 80% of significant milestones": of the
  month's milestones of definitions marked significant (not historical, not rejected, not held
  out), the share marked celebrated.
* ``recognition_rate`` — RHF's 100% target: of the month's milestones to be recognised (not
  historical; a rejected one was decided against and a held-out one is deliberately not
  rewarded, so both are left out too), the share whose every effect succeeded or, for a task,
  was done.
* ``time_to_celebration`` — median from achieved to celebrated, over those celebrated; the
  target is a day, RHF's daily recognition routine.
* ``response_rate`` — RHF's "customer response > 10%": of the month's milestones whose
  recognition reached the customer (:func:`plugin.admin.milestones.reached_customer`), the
  share an admin marked *customer responded*. No connected platform reports email engagement
  back, so hand marks are the source (``source: "marked by hand"``).
* ``retention_lift`` and ``retention_value`` — see :mod:`plugin.admin.retention`: the cohort is
  the :data:`plugin.admin.trends.MONTHS` months up to this one.
* ``weekly`` (12 weeks up to the month's last day, or today) and ``monthly`` (6 months up to this
  one) — the charts, see :mod:`plugin.admin.trends`.
* ``effects`` — right now, not per month: retrying (failed, due again), dead, and with no
  connection able to run them.
"""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.admin import credits, retention, trends
from plugin.admin.milestones import reached_customer, response_of
from plugin.admin.reviews import REJECTED
from plugin.db import utcnow
from plugin.milestones import combined
from plugin.milestones.award import HISTORICAL, PENDING_REVIEW
from plugin.milestones.tenure import local_zone
from plugin.models import Customer, CustomerMilestone, Effect, MilestoneDefinition, Workspace
from plugin.models import effect as effect_status

SIGNIFICANT_TARGET = Decimal("0.80")
RECOGNITION_TARGET = Decimal("1.00")
RESPONSE_TARGET = Decimal("0.10")  # RHF: more than 10%
CELEBRATION_TARGET_SECONDS = 24 * 3600
RECOGNISED = frozenset({effect_status.SUCCEEDED, effect_status.DONE_TASK})
FAILURES_SHOWN = 5


def month_bounds(month: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return datetime.combine(first, time(), zone), datetime.combine(following, time(), zone)


def dashboard(
    session: Session, workspace: Workspace, month: date, *, now: datetime | None = None,
    lift_window_days: int = retention.DEFAULT_WINDOW_DAYS,
) -> dict[str, Any]:
    now = now or utcnow()
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
               CustomerMilestone.celebrated, CustomerMilestone.achieved_at, CustomerMilestone.celebrated_at,
               CustomerMilestone.context)
        .where(*in_month)
    ).all()
    # Each milestone's recognitions: its own, and the combined message that covers it.
    effects = combined.recognitions(session, *in_month)

    counts: dict[uuid.UUID, int] = defaultdict(int)
    values: dict[uuid.UUID, credits.Money] = defaultdict(dict)
    weeks: dict[date, int] = defaultdict(int)
    decided = [m for m in milestones if m.status != REJECTED and not (m.context or {}).get("holdout")]
    for m in milestones:
        counts[m.definition_id] += 1
        local_day = m.achieved_at.astimezone(zone).date()
        weeks[local_day - timedelta(days=local_day.weekday())] += 1
        for kind, status, payload in effects[m.id]:
            if kind == "store_credit" and status == effect_status.SUCCEEDED:
                credits.add(values[m.definition_id], payload, workspace.currency)
    significant_ones = [m for m in decided if m.definition_id in significant]
    recognised = [m for m in decided if all(status in RECOGNISED for _, status, _ in effects[m.id])]
    waits = [m.celebrated_at - m.achieved_at for m in milestones if m.celebrated_at is not None]
    responded = [m for m in decided if _responded(m)]
    reached = [m for m in decided if _responded(m) or (
        m.status != PENDING_REVIEW and reached_customer(m.celebrated, ((k, s) for k, s, _ in effects[m.id])))]
    last_day = min(end - timedelta(microseconds=1), now.astimezone(zone)).date()
    monthly = trends.monthly(session, workspace, month)
    cohort_from = month_bounds(date.fromisoformat(monthly[0]["month"] + "-01"), zone)[0]
    lift = retention.lift(session, workspace, cohort_from, end, now=now, window_days=lift_window_days)
    return {
        "month": f"{month:%Y-%m}",
        "timezone": str(zone),
        "from": start.isoformat(),
        "until": end.isoformat(),
        "milestones": len(milestones),
        "tracker": [
            {"key": d.key, "name": d.name, "type": d.type, "count": counts[d.id],
             "value": credits.money_list(values[d.id])}
            for d in definitions
            if d.enabled or counts[d.id]
        ],
        "milestones_per_week": [{"week_of": week.isoformat(), "count": n} for week, n in sorted(weeks.items())],
        "credits_issued": credits.money_list(credits.total(session, workspace, start, end)),
        "significant_celebrated": rate(sum(1 for m in significant_ones if m.celebrated), len(significant_ones),
                                       SIGNIFICANT_TARGET),
        "recognition_rate": rate(len(recognised), len(decided), RECOGNITION_TARGET),
        "time_to_celebration": _median(waits),
        "response_rate": {**rate(len(responded), len(reached), RESPONSE_TARGET, above=True),
                          "source": "marked by hand"},
        "retention_lift": lift,
        "retention_value": retention.estimated_value(session, workspace, start, end, lift["overall"], now=now,
                                                     month_name=f"{month:%B %Y}"),
        "weekly": trends.weekly_milestones(session, workspace, last_day),
        "monthly": monthly,
        "effects": _effect_health(session, workspace.id),
        "pending_reviews": int(session.scalar(
            select(func.count()).select_from(CustomerMilestone).where(
                CustomerMilestone.workspace_id == workspace.id, CustomerMilestone.status == PENDING_REVIEW)
        ) or 0),
    }


def rate(part: int, whole: int, target: Decimal, *, above: bool = False) -> dict[str, Any]:
    """``part`` of ``whole`` against ``target`` (reached at it, or strictly ``above`` it)."""
    share = (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001")) if whole else None
    met = None if share is None else (share > target if above else share >= target)
    return {"count": part, "of": whole, "rate": str(share) if share is not None else None, "target": str(target),
            "met": met}


def _responded(milestone: Any) -> bool:
    return response_of(milestone) is not None


def _median(waits: list[timedelta]) -> dict[str, Any]:
    if not waits:
        return {"celebrated": 0, "median_seconds": None, "median": None,
                "target_seconds": CELEBRATION_TARGET_SECONDS, "met": None}
    seconds = statistics.median(max(w.total_seconds(), 0.0) for w in waits)
    return {"celebrated": len(waits), "median_seconds": int(seconds), "median": duration(seconds),
            "target_seconds": CELEBRATION_TARGET_SECONDS, "met": seconds <= CELEBRATION_TARGET_SECONDS}


def duration(seconds: float) -> str:
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


def recent_failures(session: Session, workspace_id: uuid.UUID, limit: int = FAILURES_SHOWN) -> list[dict[str, Any]]:
    """The latest dead effects, with their milestone and customer, for the "needs attention" panel."""
    return [
        {"id": effect.id, "kind": effect.kind, "error": effect.last_error, "at": effect.updated_at,
         "milestone_id": milestone_id, "milestone_name": name, "customer_id": customer_id, "customer_email": email}
        for effect, milestone_id, name, customer_id, email in session.execute(
            select(Effect, CustomerMilestone.id, CustomerMilestone.milestone_name, Customer.id, Customer.email)
            .join(CustomerMilestone, CustomerMilestone.id == Effect.milestone_id)
            .join(Customer, Customer.id == CustomerMilestone.customer_id)
            .where(Effect.workspace_id == workspace_id, Effect.status == effect_status.DEAD)
            .order_by(Effect.updated_at.desc(), Effect.id.desc())
            .limit(limit)
        ).tuples()
    ]
