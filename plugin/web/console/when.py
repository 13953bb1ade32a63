"""``moment(x)`` for the Connections and Operations templates: a <time> element that reads
"4 min ago" (or "in 10 min") with the workspace's local date and time on hover.

Built on :class:`plugin.web.console.formats.Formats`; it also takes the ISO strings that JSON
settings keep (webhook registration, reconciliation) and the naive datetimes SQLite returns.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import g
from markupsafe import Markup

from connectors.base import as_utc
from plugin.db import utcnow
from plugin.web.console.formats import Formats


def parse(value: datetime | str | None) -> datetime | None:
    """An aware UTC datetime from a datetime or an ISO string; None for nothing or nonsense."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    return as_utc(value)


def until(moment: datetime, now: datetime) -> str:
    """How far ahead ``moment`` is: "in a moment", "in 12 min", "in 3 h", "in 2 days"."""
    seconds = (moment - now).total_seconds()
    if seconds < 60:
        return "in a moment"
    if seconds < 3600:
        return f"in {int(seconds // 60)} min"
    if seconds < 48 * 3600:
        return f"in {int(seconds // 3600)} h"
    return f"in {int(seconds // 86400)} days"


def helpers(fmt: Formats) -> dict[str, Callable[..., Any]]:
    now = utcnow()

    def moment(value: datetime | str | None, empty: str = "never") -> Markup:
        at = parse(value)
        if at is None:
            return Markup('<span class="muted">{}</span>').format(empty)
        relative = until(at, now) if at > now else fmt.ago(at, now)
        return Markup('<time datetime="{}" title="{}">{}</time>').format(at.isoformat(), fmt.moment(at), relative)

    return {"moment": moment, "local_time": lambda value: fmt.moment(parse(value))}


def install(blueprint: Any) -> None:
    """Give the blueprint's templates ``moment`` and ``local_time`` for the signed-in workspace."""
    from plugin.web.console.core import workspace

    @blueprint.context_processor
    def _moments() -> dict[str, Any]:
        # An error page rendered before the guard signed anyone in has no workspace to speak for.
        return helpers(Formats(workspace())) if "admin" in g else {}
