"""The templates page in a real browser: the email preview follows the typing and the customer picked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask

from plugin.db import transaction, utcnow
from plugin.models import Workspace
from tests.api.support import Rows, credit
from tests.conftest import services_of
from tests.console.conftest import screenshot


def _customers(app: Flask, workspace_id: Any) -> None:
    now = utcnow()
    with transaction(services_of(app).sessions) as session:
        rows = Rows(session, workspace_id)
        rows.customer("zed@example.com", {"order_count": "3", "lifetime_spend": "75"}, first_name="Zed")
        maya = rows.customer("maya@example.com", {"order_count": "10", "lifetime_spend": "412.50"},
                             first_name="Maya", last_name="Lin", customer_since=now - timedelta(days=400))
        milestone = rows.milestone(maya, "order-10", achieved_at=now - timedelta(days=1))
        rows.effect(milestone, "store_credit", "succeeded", credit("5.00"))


def test_typing_in_the_email_editor_updates_the_live_preview(page: Any, app: Flask, workspace: Any) -> None:
    _customers(app, workspace.id)
    page.goto("/admin/templates/")
    page.click("#t-order-10-thank-you a")
    page.wait_for_selector("#preview-subject")
    assert page.inner_text("#preview-subject") == "Maya, this is your 10th order!"
    assert "- $5 credit added to account" in page.text_content("#preview-text")

    page.fill("#f-subject", "{{ first_name }}, order number {{ order_count }} is here")
    page.wait_for_function(
        "document.getElementById('preview-subject')?.innerText === 'Maya, order number 10 is here'")
    frame = page.frame_locator("iframe.email-frame")
    assert "Thank you for making us part of your weekly routine" in frame.locator("body").inner_text()
    screenshot(page, "templates.png")

    page.fill("#f-text", "Hi {{ first_name }}, {{ lifetime_value }} so far. {{ milestone.nmae }}")
    page.wait_for_selector(".preview-problem")
    assert "unknown variable 'milestone.nmae' (line 1)" in page.inner_text(".preview-problem")
    page.fill("#f-text", "Hi {{ first_name }}, {{ lifetime_value }} so far.")
    page.wait_for_function("document.getElementById('preview-text')?.textContent.includes('Hi Maya, $412.50 so far.')")
    assert "Hi Maya, $412.50 so far." not in frame.locator("body").inner_text()  # the HTML part is its own
    page.fill("#f-html", "")  # without one, the HTML is the text in the standard layout
    page.wait_for_function("document.querySelector('iframe.email-frame')?.srcdoc.includes('Hi Maya, $412.50 so far.')")
    assert frame.locator("body").inner_text().strip() == "Hi Maya, $412.50 so far."

    page.fill("#customer-search", "zed")  # another customer: the preview follows
    page.wait_for_function("document.getElementById('preview-text')?.textContent.includes('Hi Zed, $75 so far.')")
    assert "as if they reached" in page.inner_text("[data-preview-meta]")

    page.click("#save-template")
    page.wait_for_selector(".flashes")
    assert "Template order-10-thank-you is saved" in page.inner_text(".flashes")
    with services_of(app).sessions() as session:
        saved = session.get(Workspace, workspace.id)
        assert saved is not None
        assert saved.settings["templates"]["order-10-thank-you"] == {
            "subject": "{{ first_name }}, order number {{ order_count }} is here",
            "text": "Hi {{ first_name }}, {{ lifetime_value }} so far."}


def test_the_slack_alert_preview_follows_the_milestone_picked(page: Any, app: Flask, workspace: Any) -> None:
    _customers(app, workspace.id)
    page.goto("/admin/templates/slack")
    assert "Customer Milestone: Maya Lin" in page.inner_text(".slack-header")
    page.select_option("#slack-definition", label="1 Year Anniversary")
    page.wait_for_url("**/admin/templates/slack?*")
    assert "1 Year Anniversary!" in page.inner_text("#slack-preview")
    assert "1 year as a customer" in page.inner_text("#slack-preview")
    assert page.inner_text(".slack-button.slack-primary") == "Mark Celebrated"
