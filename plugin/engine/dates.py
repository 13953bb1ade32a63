"""Calendar arithmetic for tenure: whole years, months and days as a person counts them.

Anniversaries are anchored to the start date, never chained: Jan 31 + 1 month is Feb 28 (29 in
a leap year) and + 2 months is Mar 31. A customer who started on Feb 29 is celebrated on Feb 28
in non-leap years and on Feb 29 in leap years.
"""

from __future__ import annotations

import calendar
from datetime import date
from typing import Literal

Unit = Literal["years", "months", "days"]
UNITS: tuple[Unit, ...] = ("years", "months", "days")


def add_months(start: date, months: int) -> date:
    """``start`` plus whole calendar months, the day clamped to the end of the target month."""
    year, month_index = divmod(start.year * 12 + start.month - 1 + months, 12)
    last_day = calendar.monthrange(year, month_index + 1)[1]
    return date(year, month_index + 1, min(start.day, last_day))


def anniversary_date(customer_since: date, years: int) -> date:
    """The day of the ``years``-th anniversary (Feb 29 → Feb 28 in non-leap years)."""
    return add_months(customer_since, 12 * years)


def elapsed(unit: Unit, start: date, end: date) -> int:
    """Whole ``unit``s from ``start`` to ``end`` (negative when ``end`` is earlier)."""
    if unit == "days":
        return (end - start).days
    per_unit = 12 if unit == "years" else 1
    months = (end.year - start.year) * 12 + end.month - start.month
    whole = months // per_unit
    # The anniversary in end's month may still be ahead (end.day < start.day): one fewer.
    return whole - 1 if add_months(start, whole * per_unit) > end else whole
