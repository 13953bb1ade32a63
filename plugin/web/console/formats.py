"""How the console's pages write numbers, money, dates and durations, in the workspace's terms.

Pages get a :class:`Formats` bound to the signed-in workspace as ``fmt`` (each page blueprint
adds it with :func:`install`), so a template says ``fmt.day(m.achieved_at)`` and the date is
the workspace's local one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, g

from plugin.admin.effect_words import money_text
from plugin.db import utcnow
from plugin.milestones import wording
from plugin.milestones.tenure import local_zone
from plugin.models import Workspace

MINUS = "\u2212"


class Formats:
    def __init__(self, workspace: Workspace) -> None:
        self.currency = workspace.currency
        self.zone: ZoneInfo = local_zone(None, workspace.timezone)

    # --- numbers and money -----------------------------------------------------------------

    def number(self, value: Any) -> str:
        number = _decimal(value)
        if number is None:
            return "—"
        return f"{number:,.0f}" if number == number.to_integral_value() else f"{number:,.2f}"

    def money(self, amount: Any, currency: str | None = None) -> str:
        number = _decimal(amount)
        return "—" if number is None else money_text(number, currency or self.currency)

    def money_list(self, amounts: Iterable[Mapping[str, str]], empty: str | None = None) -> str:
        """``[{"currency": "USD", "amount": "40.00"}]`` as "$40.00"; several joined with " + "."""
        parts = [self.money(a["amount"], a["currency"]) for a in amounts]
        return " + ".join(parts) if parts else (empty if empty is not None else self.money(0))

    def percent(self, rate: Any) -> str:
        number = _decimal(rate)
        return "—" if number is None else f"{number * 100:.0f}%"

    def signed_percent(self, rate: Any) -> str:
        number = _decimal(rate)
        if number is None:
            return "—"
        text = f"{abs(number) * 100:.0f}%"
        return text if text == "0%" else ("+" if number > 0 else MINUS) + text

    def points(self, difference: Any) -> str:
        number = _decimal(difference)
        if number is None:
            return "—"
        text = f"{abs(number) * 100:.1f}"
        return ("+" if number >= 0 else MINUS) + text + " pts"

    def milestone_value(self, milestone_type: str, value: str | None) -> str:
        """What was reached, as the milestone's kind reads: "$2,500", "25 orders", "2 years"."""
        if not value:
            return "—"
        number = _decimal(value)
        if number is None:
            return value
        if milestone_type == "spend":
            return wording.format_money(number, self.currency)
        if milestone_type == "order":
            return f"{self.number(number)} order{'s' if number != 1 else ''}"
        return self.number(number)

    # --- time ------------------------------------------------------------------------------

    def local(self, when: datetime) -> datetime:
        return when.astimezone(self.zone)

    def day(self, when: datetime | None) -> str:
        return "—" if when is None else wording.long_date(self.local(when))

    def moment(self, when: datetime | None) -> str:
        if when is None:
            return "—"
        local = self.local(when)
        return f"{wording.long_date(local)}, {local:%H:%M}"

    def day_of(self, iso: str) -> str:
        """An ISO timestamp from the figures (``2026-06-01T00:00:00+10:00``) as its local day."""
        return self.day(datetime.fromisoformat(iso))

    def month(self, value: str | date) -> str:
        """``2026-10`` (or a date) as "October 2026"."""
        first = value if isinstance(value, date) else date.fromisoformat(f"{value}-01")
        return f"{first:%B %Y}"

    def duration(self, delta: timedelta | None) -> str:
        return wording.human_duration(delta) or "—"

    def ago(self, when: datetime | None, now: datetime | None = None) -> str:
        if when is None:
            return "—"
        seconds = ((now or utcnow()) - when).total_seconds()
        if seconds < 0:
            return "just now"
        if seconds < 3600:
            minutes = int(seconds // 60)
            return "just now" if minutes < 1 else f"{minutes} min ago"
        if seconds < 48 * 3600:
            return f"{int(seconds // 3600)} h ago"
        days = int(seconds // 86400)
        if days < 60:
            return f"{days} days ago"
        return f"{days // 30} months ago" if days < 730 else f"{days // 365} years ago"


def install(blueprint: Blueprint) -> None:
    """Give the blueprint's templates ``fmt`` for the signed-in workspace."""
    from plugin.web.console.core import workspace

    @blueprint.context_processor
    def _formats() -> dict[str, Any]:
        # An error page rendered before the guard signed anyone in has no workspace to speak for.
        return {"fmt": Formats(workspace())} if "admin" in g else {}


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None
