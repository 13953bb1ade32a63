"""Marking a milestone celebrated from the feed in a real browser, and filtering the feed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from plugin.db import utcnow
from plugin.models import CustomerMilestone
from tests.api.support import build
from tests.conftest import services_of
from tests.console.conftest import screenshot
from tests.console.milestone_data import half_year


def test_mark_a_milestone_celebrated_from_the_feed(app: Flask, workspace: Any, shop: Any, page: Any) -> None:
    now = utcnow()

    def rows_for(rows: Any) -> Any:
        half_year(rows, shop.id, now)
        grace = rows.customer("grace.harper@example.com", first_name="Grace", last_name="Harper",
                              customer_since=now - timedelta(days=400))
        milestone = rows.milestone(grace, "order-50", achieved_at=now - timedelta(minutes=40),
                                   time_to_milestone=timedelta(days=400))
        rows.effect(milestone, "slack_alert", "succeeded")
        rows.effect(milestone, "store_credit", "pending")
        return milestone.id

    milestone_id = build(app, workspace.id, rows_for)
    page.goto("/admin/milestones/")
    row = page.locator(f'tr[data-milestone="{milestone_id}"]')
    assert page.locator("tr[data-milestone]").first.get_attribute("data-milestone") == str(milestone_id)  # newest
    assert row.locator(".state").inner_text() == "alerted"
    assert "Grace Harper" in row.inner_text() and "50 orders" in row.inner_text() and "1 year 1 month" in row.inner_text()

    row.locator("summary", has_text="Mark celebrated").click()
    row.locator("select[name=celebration_type]").select_option("gift")
    row.locator("textarea[name=notes]").fill("Sent a jar of Peninsula honey")
    row.locator("input[name=responded]").check()
    row.locator("button", has_text="Save as celebrated").click()
    page.wait_for_selector(".flash-success")
    assert "50th Order marked celebrated." in page.inner_text(".flashes")
    row = page.locator(f'tr[data-milestone="{milestone_id}"]')
    assert row.locator(".state").inner_text() == "celebrated"
    assert "gift" in row.inner_text() and "customer responded" in row.inner_text()
    with services_of(app).sessions() as session:
        saved = session.execute(select(CustomerMilestone).where(CustomerMilestone.id == milestone_id)).scalar_one()
        assert (saved.celebrated, saved.celebration_type, saved.notes) == (True, "gift", "Sent a jar of Peninsula honey")
        assert saved.context["response"]["by"] == "ops@redhillfresh.example"
    page.set_viewport_size({"width": 1360, "height": page.evaluate("document.body.scrollHeight")})
    screenshot(page, "milestones.png")

    page.select_option("#f-state", "celebrated")
    page.fill("#f-customer", "harper@")
    page.click("button:has-text('Filter')")
    page.wait_for_url("**state=celebrated**")
    shown = page.locator("tr[data-milestone]")
    states = {shown.nth(i).locator(".state").inner_text() for i in range(shown.count())}
    assert str(milestone_id) in [shown.nth(i).get_attribute("data-milestone") for i in range(shown.count())]
    assert states == {"celebrated"}
