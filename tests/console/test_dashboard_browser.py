"""Reading the dashboard in a real browser (Debian's Chromium driven by Playwright) over half a
year of a grocer's milestones, checking what the page shows against what was written."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

from flask import Flask

from plugin.admin.effect_words import money_text
from plugin.db import utcnow
from tests.api.support import build
from tests.console.conftest import screenshot
from tests.console.milestone_data import Tally, half_year


def _text(tab: Any, selector: str) -> str:
    return " ".join(tab.inner_text(selector).split())


def _signed(rate: Decimal) -> str:
    text = f"{abs(rate) * 100:.0f}%"
    return text if text == "0%" else ("+" if rate > 0 else "\u2212") + text


def test_the_dashboard_shows_the_half_year_as_written(app: Flask, workspace: Any, shop: Any, page: Any) -> None:
    now = utcnow()
    tally: Tally = build(app, workspace.id, lambda rows: half_year(rows, shop.id, now))
    this_month = tally.month(now)
    page.goto("/admin/dashboard/")
    assert page.inner_text("h1") == "Dashboard"

    assert _text(page, '[data-kpi="milestones"] .value') == f"{tally.milestones_per_month[this_month]:,}"
    assert _text(page, '[data-kpi="credits"] .value') == money_text(tally.credits_per_month[this_month], "USD")
    attention = _text(page, ".attention")
    waiting = len(tally.pending_reviews)
    assert f"{waiting} milestone{'s' if waiting != 1 else ''} wait" in attention
    assert f"{tally.dead} recognition" in attention

    recognised, held_out = tally.lift_groups[False], tally.lift_groups[True]
    lift = (Decimal(recognised[1]) / recognised[0]) / (Decimal(held_out[1]) / held_out[0]) - 1
    lift_card = _text(page, '[data-kpi="lift"]')
    assert _text(page, '[data-kpi="lift"] .value') == _signed(lift.quantize(Decimal("0.0001")))
    assert f"{recognised[0]} recognised vs {held_out[0]} held out · 30-day repeat purchase" in lift_card

    week_of = now.astimezone(tally.zone).date() - timedelta(days=now.astimezone(tally.zone).weekday())
    this_week = tally.milestones_per_week[week_of]
    bar = page.locator("#chart-weekly rect.bar").last.locator("title").text_content()
    assert bar == f"Week of {week_of:%b} {week_of.day}, {week_of.year}: {this_week} milestone{'s' if this_week != 1 else ''}"
    assert page.locator("#chart-credits rect.bar").count() == 6
    assert "Assumes recognition keeps the" in _text(page, ".assumption")
    page.set_viewport_size({"width": 1360, "height": page.evaluate("document.body.scrollHeight")})  # sidebar too
    screenshot(page, "dashboard.png")

    page.click('a[aria-label="Previous month"]')
    page.wait_for_url(re.compile(r".*month=\d{4}-\d{2}.*"))
    previous = re.search(r"month=(\d{4}-\d{2})", page.url)
    assert previous and previous.group(1) != this_month
    assert _text(page, '[data-kpi="milestones"] .value') == f"{tally.milestones_per_month[previous.group(1)]:,}"
    assert _text(page, '[data-kpi="credits"] .value') == money_text(tally.credits_per_month[previous.group(1)], "USD")
