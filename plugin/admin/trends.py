"""What the dashboard charts: milestones per week and milestones and credits per month.

Weeks start on Monday and months are calendar months, both in the workspace's timezone.
Historical milestones (recorded without rewards) are left out, as in the monthly tracker.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.admin import credits
from plugin.milestones.award import HISTORICAL
from plugin.milestones.tenure import local_zone
from plugin.models import CustomerMilestone, Workspace

WEEKS = 12
MONTHS = 6


def weekly_milestones(session: Session, workspace: Workspace, last_day: date, weeks: int = WEEKS) -> list[dict[str, Any]]:
    """Milestones per week for the ``weeks`` weeks up to the one holding ``last_day``, oldest first."""
    zone = local_zone(None, workspace.timezone)
    last_monday = last_day - timedelta(days=last_day.weekday())
    mondays = [last_monday - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    per_day = _per_local_day(session, workspace, datetime.combine(mondays[0], time(), zone),
                             datetime.combine(last_monday + timedelta(days=7), time(), zone))
    counts: dict[date, int] = defaultdict(int)
    for day, count in per_day.items():
        counts[day - timedelta(days=day.weekday())] += count
    return [{"week_of": monday.isoformat(), "count": counts[monday]} for monday in mondays]


def monthly(session: Session, workspace: Workspace, month: date, months: int = MONTHS) -> list[dict[str, Any]]:
    """Milestones achieved and credit issued per month for the ``months`` months up to ``month``."""
    zone = local_zone(None, workspace.timezone)
    firsts = [add_months(month.replace(day=1), -n) for n in range(months - 1, -1, -1)]
    start = datetime.combine(firsts[0], time(), zone)
    end = datetime.combine(add_months(firsts[-1], 1), time(), zone)
    achieved: dict[date, int] = defaultdict(int)
    for day, count in _per_local_day(session, workspace, start, end).items():
        achieved[day.replace(day=1)] += count
    issued: dict[date, credits.Money] = defaultdict(dict)
    for at, payload in credits.issued(session, workspace, start, end):
        credits.add(issued[at.astimezone(zone).date().replace(day=1)], payload, workspace.currency)
    return [
        {"month": f"{first:%Y-%m}", "milestones": achieved[first], "credits_issued": credits.money_list(issued[first])}
        for first in firsts
    ]


def _per_local_day(session: Session, workspace: Workspace, start: datetime, end: datetime) -> dict[date, int]:
    zone = local_zone(None, workspace.timezone)
    local_day = func.date(func.timezone(zone.key, CustomerMilestone.achieved_at))
    return {
        day: int(count)
        for day, count in session.execute(
            select(local_day, func.count())
            .where(
                CustomerMilestone.workspace_id == workspace.id,
                CustomerMilestone.status != HISTORICAL,
                CustomerMilestone.achieved_at >= start,
                CustomerMilestone.achieved_at < end,
            )
            .group_by(local_day)
        ).tuples()
    }


def add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
