"""The review queue: each waiting milestone with the customer's context and the held rewards;
approve runs the recognition, reject needs a reason and records it.

Shopify's store credit is faked with ``responses`` in the shape of
https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/storeCreditAccountCredit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from plugin.models import CustomerMilestone, Effect
from tests.api.support import build
from tests.conftest import services_of
from tests.console.conftest import OTHER_ADMIN_EMAIL, add_admin, post_form, sign_in
from tests.console.milestone_data import SHOPIFY_GRAPHQL, credited, waiting_review


def _waiting(app: Flask, workspace: Any, shop: Any, email: str = "vip@example.com", **kwargs: Any) -> Any:
    return build(app, workspace.id, lambda rows: waiting_review(rows, shop.id, email, "Linh", **kwargs))


def _state(app: Flask, milestone_id: Any) -> tuple[str, str | None, dict[str, str]]:
    with services_of(app).sessions() as session:
        milestone = session.get(CustomerMilestone, milestone_id)
        assert milestone is not None
        effects = dict(session.execute(
            select(Effect.kind, Effect.status).where(Effect.milestone_id == milestone_id)).tuples().all())
        return milestone.status, milestone.notes, effects


def post(client: FlaskClient, path: str, data: dict[str, Any] | None = None) -> Any:
    return post_form(client, path, data, from_page="/admin/reviews/")


def test_the_queue_shows_the_customer_and_what_is_held(app: Flask, workspace: Any, shop: Any, console: FlaskClient) -> None:
    first = _waiting(app, workspace, shop, achieved_at=datetime(2026, 3, 1, tzinfo=UTC))
    second = _waiting(app, workspace, shop, "big@example.com", amount="120.50", key="spend-5000", external_id="7002",
                      achieved_at=datetime(2026, 3, 2, tzinfo=UTC))
    page = console.get("/admin/reviews/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "2 milestones wait for you, oldest first." in html
    assert html.index(f'id="review-{first}"') < html.index(f'id="review-{second}"')
    assert "$25.00 store credit" in html and "$120.50 store credit" in html
    assert "Money held: <strong>$25.00 USD</strong>" in html
    assert "Task: Send a VIP hamper" in html
    assert "“100th Order” is reviewed personally" in html and "Exceptional milestone: tell the team lead" in html
    assert "$65,000.00" in html and "maya@redhillfresh.example" in html and "$5,240.00" in html  # ARR, CSM, spend
    assert "CRM note" in html  # what already ran


def test_an_empty_queue_says_nothing_waits(app: Flask, workspace: Any, console: FlaskClient) -> None:
    html = console.get("/admin/reviews/").get_data(as_text=True)
    assert "Nothing waits for review." in html


def test_approving_releases_the_held_rewards_and_runs_the_credit(
    app: Flask, workspace: Any, shop: Any, console: FlaskClient
) -> None:
    milestone = _waiting(app, workspace, shop)
    with responses.RequestsMock() as shopify:
        shopify.post(SHOPIFY_GRAPHQL, json=credited("25.00"))
        answer = post(console, f"/admin/reviews/{milestone}/approve", {"notes": "Loyal since day one"})
        sent = [json.loads(call.request.body) for call in shopify.calls]
    assert answer.status_code == 302
    assert [s["variables"]["creditInput"]["creditAmount"] for s in sent] == [{"amount": "25.00", "currencyCode": "USD"}]
    assert _state(app, milestone) == ("active", "Approved: Loyal since day one",
                                      {"store_credit": "succeeded", "task": "open_task", "crm_note": "succeeded"})
    html = console.get("/admin/reviews/").get_data(as_text=True)
    assert "Approved 100th Order: 2 held recognitions released." in html and "Nothing waits for review." in html
    again = post(console, f"/admin/reviews/{milestone}/approve")
    assert again.status_code == 302
    assert "milestone is active, not pending review" in console.get("/admin/reviews/").get_data(as_text=True)


def test_rejecting_needs_a_reason_and_records_it(app: Flask, workspace: Any, shop: Any, console: FlaskClient) -> None:
    milestone = _waiting(app, workspace, shop)
    with responses.RequestsMock():  # nothing may reach Shopify
        post(console, f"/admin/reviews/{milestone}/reject", {"reason": "   "})
        assert "Say why you reject it" in console.get("/admin/reviews/").get_data(as_text=True)
        assert _state(app, milestone)[0] == "pending_review"
        post(console, f"/admin/reviews/{milestone}/reject", {"reason": "x" * 2001})
        assert _state(app, milestone)[0] == "pending_review"
        assert post(console, f"/admin/reviews/{milestone}/reject", {"reason": "Staff account"}).status_code == 302
    assert _state(app, milestone) == ("rejected", "Rejected: Staff account",
                                      {"store_credit": "cancelled", "task": "cancelled", "crm_note": "succeeded"})
    assert "Rejected 100th Order: 2 held recognitions cancelled." in console.get("/admin/reviews/").get_data(as_text=True)


def test_another_workspace_cannot_see_or_decide_a_review(
    app: Flask, workspace: Any, other_workspace: Any, shop: Any, console: FlaskClient
) -> None:
    milestone = _waiting(app, workspace, shop)
    add_admin(app, other_workspace.id, OTHER_ADMIN_EMAIL)
    stranger = app.test_client()
    assert sign_in(stranger, OTHER_ADMIN_EMAIL).status_code == 302
    assert "Nothing waits for review." in stranger.get("/admin/reviews/").get_data(as_text=True)
    with responses.RequestsMock():
        for action, data in (("approve", {}), ("reject", {"reason": "not mine"}), ("reject", {})):
            assert post(stranger, f"/admin/reviews/{milestone}/{action}", data).status_code == 404
    assert _state(app, milestone) == ("pending_review", None,
                                      {"store_credit": "held", "task": "held", "crm_note": "succeeded"})


def test_decisions_without_the_csrf_token_are_refused(app: Flask, workspace: Any, shop: Any, console: FlaskClient) -> None:
    milestone = _waiting(app, workspace, shop)
    with responses.RequestsMock():
        assert console.post(f"/admin/reviews/{milestone}/approve", data={}).status_code == 403
        assert console.post(f"/admin/reviews/{milestone}/reject", data={"reason": "x"}).status_code == 403
    assert _state(app, milestone)[0] == "pending_review"
