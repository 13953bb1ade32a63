"""Where a customer's anniversaries fall, in the columns the daily scan searches by.

``customer_since`` is stored in UTC; anniversaries are local dates (the customer's timezone when
the platform gives one, else the workspace's). Each customer row carries that local date and
its month-day and day-of-month, indexed per workspace, so one day's scan is one indexed query.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def local_zone(customer_timezone: str | None, workspace_timezone: str) -> ZoneInfo:
    for name in (customer_timezone, workspace_timezone):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def tenure_columns(since: datetime | None, zone: ZoneInfo) -> dict[str, Any]:
    if since is None:
        return {"since_local": None, "since_mmdd": None, "since_dom": None}
    local = since.astimezone(zone).date()
    return {"since_local": local, "since_mmdd": local.month * 100 + local.day, "since_dom": local.day}


def month_days_for(day: date) -> list[int]:
    """Start month-days whose yearly anniversary is ``day`` (Feb 29 starts → Feb 28 in non-leap years)."""
    keys = [day.month * 100 + day.day]
    if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
        keys.append(229)
    return keys


def days_of_month_for(day: date) -> list[int]:
    """Start days-of-month whose monthly anniversary is ``day`` (clamped at the month's end)."""
    last = calendar.monthrange(day.year, day.month)[1]
    return list(range(day.day, 32)) if day.day == last else [day.day]
