"""The catalogue in a real browser: edit a milestone, read the what-if, confirm, see it saved."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from plugin.db import transaction, utcnow
from plugin.models import MilestoneDefinition
from tests.api.support import Rows
from tests.conftest import services_of
from tests.console.conftest import screenshot


def _customers(app: Flask, workspace_id: Any) -> None:
    """Five customers with orders: 3 already past 12 orders, one of them recorded for the 10th."""
    now = utcnow()
    with transaction(services_of(app).sessions) as session:
        rows = Rows(session, workspace_id)
        rows.customer("maya@example.com", {"order_count": "14"}, changed_at=now - timedelta(days=3), first_name="Maya")
        rows.customer("tom@example.com", {"order_count": "30"}, changed_at=now - timedelta(days=200), first_name="Tom")
        rows.customer("ines@example.com", {"order_count": "11"}, changed_at=now - timedelta(days=1), first_name="Ines")
        rows.customer("li@example.com", {"order_count": "2"}, changed_at=now, first_name="Li")
        done = rows.customer("sam@example.com", {"order_count": "40"}, changed_at=now, first_name="Sam")
        rows.milestone(done, "order-10")


def _stored(app: Flask, workspace_id: Any, key: str) -> MilestoneDefinition:
    with services_of(app).sessions() as session:
        return session.execute(select(MilestoneDefinition).where(
            MilestoneDefinition.workspace_id == workspace_id, MilestoneDefinition.key == key)).scalar_one()


def _scenario(tab: Any, scenario: str, figure: str) -> str:
    return str(tab.inner_text(f'#impact [data-scenario="{scenario}"][data-figure="{figure}"]')).strip()


def test_edit_the_10th_order_preview_its_impact_confirm_and_see_it_saved(
    page: Any, app: Flask, workspace: Any,
) -> None:
    _customers(app, workspace.id)
    order_10 = _stored(app, workspace.id, "order-10")
    page.goto("/admin/catalogue/")
    page.click("#d-order-10 a.definition-name")
    page.wait_for_url(f"**/admin/catalogue/{order_10.id}")
    assert page.input_value("#cond-value") == "10"

    page.fill("#cond-value", "12")  # the live check says what it means as you type
    page.wait_for_function("document.getElementById('condition-status').innerText.includes('≥ 12')")
    page.fill("#cond-value", "twelve")
    page.wait_for_function("document.getElementById('condition-status').innerText.includes('must be a number')")
    page.fill("#cond-value", "12")
    page.select_option("#add-kind", "store_credit")  # and a $5 credit for getting there
    page.click("button[data-add-action]")
    added = page.locator("[data-action-row]").last
    added.locator("input[name$='-amount']").fill("5")
    assert added.locator("input[name$='-currency']").is_visible()
    assert not added.locator("input[name$='-title']").is_visible()  # only the kind's own fields show

    page.click("#preview-impact")
    page.wait_for_selector("#impact [data-impact]")
    assert page.inner_text("#impact .impact-means") == "Means: order count ≥ 12"
    assert page.inner_text('#impact [data-figure="qualifying"]') == "3"
    assert page.inner_text('#impact [data-figure="already_recorded"]') == "1"
    assert _scenario(page, "none", "historical") == "2" and _scenario(page, "none", "celebrated") == "0"
    assert _scenario(page, "recent", "celebrated") == "1" and _scenario(page, "recent", "liability") == "$5"
    assert _scenario(page, "all", "celebrated") == "2" and _scenario(page, "all", "liability") == "$10"
    assert _scenario(page, "all", "slack") == "2" and _scenario(page, "all", "emails") == "2"
    assert "$5" in page.inner_text("#impact .impact-each")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "catalogue.png")
    assert _stored(app, workspace.id, "order-10").condition == {"metric": "order_count", "gte": 10}  # not yet

    page.click("#impact [data-confirm-save]")
    page.wait_for_url(re.compile(r".*/admin/catalogue/(#d-order-10)?$"))
    assert "10th Order is saved." in page.inner_text(".flashes")
    assert "order count ≥ 12" in page.inner_text("#d-order-10")
    assert "$5 store credit" in page.inner_text("#d-order-10")
    saved = _stored(app, workspace.id, "order-10")
    assert saved.condition == {"metric": "order_count", "gte": 12}
    assert saved.recognition[-1] == {"kind": "store_credit", "amount": "5.00", "currency": "USD"}


def test_a_change_after_the_preview_is_previewed_again_before_it_is_saved(
    page: Any, app: Flask, workspace: Any,
) -> None:
    _customers(app, workspace.id)
    order_25 = _stored(app, workspace.id, "order-25")
    page.goto(f"/admin/catalogue/{order_25.id}")
    page.fill("input[name='rec-2-amount']", "15")
    page.click("#preview-impact")
    page.wait_for_selector("#impact [data-impact]")
    assert _scenario(page, "all", "liability") == "$30"  # 30 and 40 orders
    page.fill("input[name='rec-2-amount']", "20")
    assert page.is_visible("#impact .stale-note")
    page.click("#impact [data-confirm-save]")
    page.wait_for_selector("#editor-problem")
    assert "after its preview" in page.inner_text("#editor-problem")
    assert _scenario(page, "all", "liability") == "$40"
    assert _stored(app, workspace.id, "order-25").recognition[-1]["amount"] == "10.00"
    page.click("#impact [data-confirm-save]")
    page.wait_for_selector(".flashes")
    assert _stored(app, workspace.id, "order-25").recognition[-1]["amount"] == "20.00"


def test_switching_between_the_form_and_json_keeps_the_condition(page: Any, app: Flask, workspace: Any) -> None:
    page.goto("/admin/catalogue/new")
    page.fill("#f-name", "Big spender")
    page.select_option("#f-type", "spend")
    page.fill("#cond-metric", "lifetime_spend")
    page.fill("#cond-value", "750")
    page.click("button[data-cond-action='mode:json']")
    page.wait_for_selector("#cond-json")
    assert '"gte": 750' in page.input_value("#cond-json")
    page.fill("#cond-json", '{"any": [{"metric": "lifetime_spend", "gte": 750}, {"metric": "order_count", "gt": 20}]}')
    page.wait_for_function("document.getElementById('condition-status').innerText.includes('any of')")
    page.click("button[data-cond-action='mode:any']")
    page.wait_for_selector("#cond-rows-1-metric")
    assert page.input_value("#cond-rows-1-metric") == "order_count"
    assert page.input_value("select[name='cond_rows-1-op']") == "gt"
    page.uncheck("input[name='enabled']")  # created disabled: saved without a what-if
    page.click("#save-definition")
    page.wait_for_selector(".flashes")
    assert "Big spender is saved (disabled)." in page.inner_text(".flashes")
    created = _stored(app, workspace.id, "big-spender")
    assert created.condition == {"any": [{"metric": "lifetime_spend", "gte": 750}, {"metric": "order_count", "gt": 20}]}
    assert not created.enabled
