"""The dashboard: the landing page a customer-success lead reads every morning.

RHF's monthly tracker and PRD-114's success metrics for a chosen month (figures from
:mod:`plugin.admin.dashboard`, the same as ``GET /api/dashboard``), each KPI against its
target, two charts drawn as inline SVG, and what needs attention now.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from flask import Blueprint, current_app, request, url_for
from flask.typing import ResponseReturnValue

from plugin.admin.dashboard import dashboard, recent_failures
from plugin.admin.retention import DEFAULT_WINDOW_DAYS
from plugin.admin.trends import MONTHS, WEEKS, add_months
from plugin.db import utcnow
from plugin.web.console import charts, formats
from plugin.web.console.core import db, page, workspace
from plugin.web.console.formats import Formats

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
formats.install(bp)

WINDOWS = (14, 30, 60, 90)


@bp.get("/")
def index() -> ResponseReturnValue:
    ws = workspace()
    fmt = Formats(ws)
    this_month = utcnow().astimezone(fmt.zone).date().replace(day=1)
    errors: dict[str, str] = {}
    month = _month(request.args.get("month"), this_month, errors)
    window = _window(request.args.get("window"), errors)
    if errors:
        return page("console/dashboard.html", 400, title="Dashboard", errors=errors, figures=None,
                    month=this_month, this_month=this_month, window=DEFAULT_WINDOW_DAYS, windows=WINDOWS)
    figures = dashboard(db(), ws, month, lift_window_days=window)
    return page(
        "console/dashboard.html",
        title="Dashboard",
        errors={},
        figures=figures,
        month=month,
        this_month=this_month,
        previous_month=add_months(month, -1),
        next_month=add_months(month, 1) if month < this_month else None,
        window=window,
        windows=WINDOWS,
        feed_since=month.isoformat(),
        feed_until=(add_months(month, 1) - timedelta(days=1)).isoformat(),
        weekly_chart=weekly_chart(figures, fmt),
        credits_chart=credits_chart(figures, fmt),
        failures=recent_failures(db(), ws.id),
        operations_url=_operations_url(),
    )


def weekly_chart(figures: dict[str, Any], fmt: Formats) -> Any:
    weeks = figures["weekly"]
    days = [date.fromisoformat(w["week_of"]) for w in weeks]

    def said(value: Decimal) -> str:
        return f"{value:.0f} milestone{'s' if value != 1 else ''}"

    return charts.render(charts.BarChart(
        chart_id="chart-weekly",
        title=f"Milestones per week, last {WEEKS} weeks",
        labels=[f"{d:%b} {d.day}" for d in days],
        long_labels=[f"Week of {d:%b} {d.day}, {d.year}" for d in days],
        series=[charts.Series("Milestones", [w["count"] for w in weeks], text=said)],
        y_label="milestones",
    ))


def credits_chart(figures: dict[str, Any], fmt: Formats) -> Any:
    months = figures["monthly"]
    currencies = sorted({m["currency"] for month in months for m in month["credits_issued"]}) or [fmt.currency]
    firsts = [date.fromisoformat(m["month"] + "-01") for m in months]
    series = []
    for index, code in enumerate(currencies):
        amounts = [
            sum((Decimal(m["amount"]) for m in month["credits_issued"] if m["currency"] == code), Decimal(0))
            for month in months
        ]
        series.append(charts.Series(code, amounts, text=_money_in(fmt, code),
                                    css_class="bar alt" if index % 2 else "bar"))
    single = currencies[0] if len(currencies) == 1 else None
    return charts.render(charts.BarChart(
        chart_id="chart-credits",
        title=f"Store credit issued per month, last {MONTHS} months",
        labels=[f"{d:%b}" for d in firsts],
        long_labels=[f"{d:%B %Y}" for d in firsts],
        series=series,
        tick_text=(lambda v: fmt.money(v, single).removesuffix(".00")) if single else charts.plain,
        y_label=f"credit issued ({', '.join(currencies)})",
        integer=False,
    ))


def _money_in(fmt: Formats, currency: str) -> Callable[[Decimal], str]:
    return lambda value: fmt.money(value, currency)


def _month(raw: str | None, this_month: date, errors: dict[str, str]) -> date:
    if not raw:
        return this_month
    try:
        year, month = (int(part) for part in raw.split("-"))
        if len(raw) != 7 or not 1900 <= year <= 2999:
            raise ValueError
        chosen = date(year, month, 1)
    except ValueError:
        errors["month"] = "Choose a month as YYYY-MM, e.g. 2026-03."
        return this_month
    if chosen > this_month:
        errors["month"] = "That month has not started yet."
    return chosen


def _window(raw: str | None, errors: dict[str, str]) -> int:
    if not raw:
        return DEFAULT_WINDOW_DAYS
    if not raw.isdigit() or int(raw) not in WINDOWS:
        errors["window"] = f"The repeat-purchase window is one of {', '.join(map(str, WINDOWS))} days."
        return DEFAULT_WINDOW_DAYS
    return int(raw)


def _operations_url() -> str | None:
    """Operations' list of dead effects (retry them there), when that page is installed."""
    if "console.operations.effects" in current_app.view_functions:
        return url_for("console.operations.effects", status="dead")
    if "console.operations.index" in current_app.view_functions:
        return url_for("console.operations.index")
    return None
