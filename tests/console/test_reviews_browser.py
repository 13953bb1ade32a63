"""Approving one review and rejecting another in a real browser.

Approving releases the held rewards: the store credit goes to pending and the effect runner
(inline in tests) sends it to Shopify — faked with ``responses`` in the shape of
https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/storeCreditAccountCredit — and the
held gift task opens for a person.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import responses
from flask import Flask
from sqlalchemy import select

from plugin.db import utcnow
from plugin.models import CustomerMilestone, Effect
from tests.api.support import build
from tests.conftest import services_of
from tests.console.milestone_data import SHOPIFY_GRAPHQL, credited, waiting_review


def _effects(app: Flask, milestone_id: Any) -> dict[str, str]:
    with services_of(app).sessions() as session:
        return dict(session.execute(
            select(Effect.kind, Effect.status).where(Effect.milestone_id == milestone_id)).tuples().all())


def _milestone(app: Flask, milestone_id: Any) -> tuple[str, str | None]:
    with services_of(app).sessions() as session:
        row = session.execute(select(CustomerMilestone).where(CustomerMilestone.id == milestone_id)).scalar_one()
        return row.status, row.notes


def test_approve_one_review_and_reject_another(app: Flask, workspace: Any, shop: Any, page: Any) -> None:
    now = utcnow()
    linh, tom = build(app, workspace.id, lambda rows: (
        waiting_review(rows, shop.id, "linh@example.com", "Linh", achieved_at=now - timedelta(days=2)),
        waiting_review(rows, shop.id, "tom@example.com", "Tom", amount="40.00", key="spend-5000",
                       achieved_at=now - timedelta(days=1), external_id="7002"),
    ))
    page.goto("/admin/reviews/")
    assert "2 milestones wait for you" in page.inner_text("header.page-header")
    first = page.locator(f"#review-{linh}")
    assert "$25.00 store credit" in first.inner_text() and "Task: Send a VIP hamper" in first.inner_text()
    assert "$65,000.00" in first.inner_text()  # the account's ARR, for context

    with responses.RequestsMock() as shopify:
        shopify.post(SHOPIFY_GRAPHQL, json=credited("25.00"))
        first.locator("textarea[name=notes]").fill("Loyal since day one")
        first.locator("button", has_text="Approve and recognise").click()
        page.wait_for_selector(".flash-success")
        sent = [json.loads(call.request.body)["variables"]["creditInput"]["creditAmount"] for call in shopify.calls]
    assert "Approved 100th Order: 2 held recognitions released." in page.inner_text(".flashes")
    assert page.locator(f"#review-{linh}").count() == 0
    assert sent == [{"amount": "25.00", "currencyCode": "USD"}]
    assert _milestone(app, linh) == ("active", "Approved: Loyal since day one")
    assert _effects(app, linh) == {"store_credit": "succeeded", "task": "open_task", "crm_note": "succeeded"}

    second = page.locator(f"#review-{tom}")
    with responses.RequestsMock():  # a rejection sends nothing anywhere
        second.locator("button", has_text="Reject").click()  # no reason: the browser asks for one first
        assert second.locator("input[name=reason]").evaluate("field => field.validity.valueMissing")
        assert _milestone(app, tom)[0] == "pending_review"
        second.locator("input[name=reason]").fill("Staff account")
        second.locator("button", has_text="Reject").click()
        page.wait_for_selector(".flash-success")
    assert "Rejected $5,000 Spent: 2 held recognitions cancelled. Reason recorded." in page.inner_text(".flashes")
    assert "Nothing waits for review." in page.inner_text("main")
    assert _milestone(app, tom) == ("rejected", "Rejected: Staff account")
    assert _effects(app, tom) == {"store_credit": "cancelled", "task": "cancelled", "crm_note": "succeeded"}

    page.goto("/admin/milestones/?customer=linh%40example.com")
    assert page.locator(f'tr[data-milestone="{linh}"] .state').inner_text() == "rewarded"
