"""The review queue: a high-value milestone's rewards wait until an admin approves or rejects.

Shopify's store credit is faked with ``responses`` in the shape of
https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/storeCreditAccountCredit.
"""

from __future__ import annotations

import json

import responses
from sqlalchemy import select

from plugin.db import utcnow
from plugin.models import CustomerMilestone, Effect
from tests.api.support import AUTH, OTHER_AUTH
from tests.conftest import services_of
from tests.support import order, post_order

GRAPHQL = "https://shop.test/admin/api/2025-07/graphql.json"
CREDITED = {
    "data": {
        "storeCreditAccountCredit": {
            "storeCreditAccountTransaction": {
                "id": "gid://shopify/StoreCreditAccountCreditTransaction/91",
                "amount": {"amount": "10.00", "currencyCode": "USD"},
                "createdAt": "2026-03-15T12:00:00Z",
                "account": {"id": "gid://shopify/StoreCreditAccount/5",
                            "balance": {"amount": "10.00", "currencyCode": "USD"}},
            },
            "userErrors": [],
        }
    }
}


def _effects(app, milestone_id):
    with services_of(app).sessions() as session:
        return dict(session.execute(select(Effect.kind, Effect.status).where(Effect.milestone_id == milestone_id)).tuples().all())


def _pending_review(build, *kinds):
    def rows_for(rows):
        customer = rows.customer("vip@example.com", {"order_count": "100", "lifetime_spend": "5200"},
                                 arr="65000.00", health_score=85, owner_email="csm@example.com")
        milestone = rows.milestone(customer, "order-100", status="pending_review")
        for kind in kinds:
            rows.effect(milestone, kind, "held")
        rows.effect(milestone, "crm_note", "succeeded")
        return milestone

    return build(rows_for)


def test_approving_runs_the_held_store_credit(app, client, shop):
    listed = client.get("/api/definitions?type=order", headers=AUTH).get_json()["items"]
    order_25 = next(d for d in listed if d["key"] == "order-25")
    assert client.patch(f"/api/definitions/{order_25['id']}", json={"requires_review": True},
                        headers=AUTH).status_code == 200
    with responses.RequestsMock():  # nothing may reach Shopify while the reward is held
        for number in range(1, 26):
            assert post_order(client, order(number)).status_code == 200

    queue = client.get("/api/reviews", headers=AUTH).get_json()
    assert queue["total"] == 1
    review = queue["items"][0]
    assert (review["key"], review["status"], review["customer_email"]) == ("order-25", "pending_review",
                                                                            "alice@example.com")
    assert review["customer"]["metrics"]["order_count"] == "25"
    assert {e["kind"]: e["status"] for e in review["effects"]}["store_credit"] == "held"

    with responses.RequestsMock() as mock:
        mock.post(GRAPHQL, json=CREDITED)
        approved = client.post(f"/api/reviews/{review['id']}/approve", json={"notes": "Loyal since day one"},
                               headers=AUTH)
        credits = [json.loads(c.request.body) for c in mock.calls]
    assert approved.status_code == 200, approved.get_json()
    body = approved.get_json()
    assert body["milestone"]["status"] == "active" and body["released"] == 1
    assert body["milestone"]["notes"] == "Approved: Loyal since day one"
    assert len(credits) == 1 and credits[0]["variables"]["creditInput"]["creditAmount"]["amount"] == "10.00"
    assert _effects(app, review["id"])["store_credit"] == "succeeded"
    assert client.get("/api/reviews", headers=AUTH).get_json()["total"] == 0
    again = client.post(f"/api/reviews/{review['id']}/approve", headers=AUTH)
    assert again.status_code == 409 and again.get_json()["details"] == {"status": "active"}


def test_approving_opens_held_tasks_for_a_person(app, client, workspace, build):
    milestone = _pending_review(build, "task")
    review = client.get("/api/reviews", headers=AUTH).get_json()["items"][0]
    assert review["customer"]["context"] == {
        "arr": "65000.00", "health_score": 85, "owner_email": "csm@example.com", "customer_since": None,
        "company_name": None, "timezone": None}
    assert client.get("/api/tasks?status=held", headers=AUTH).get_json()["total"] == 1
    assert client.post(f"/api/reviews/{milestone.id}/approve", headers=AUTH).status_code == 200
    assert _effects(app, milestone.id) == {"task": "open_task", "crm_note": "succeeded"}
    tasks = client.get("/api/tasks", headers=AUTH).get_json()
    assert tasks["total"] == 1 and tasks["items"][0]["customer_email"] == "vip@example.com"


def test_rejecting_cancels_the_held_rewards_and_records_why(app, client, workspace, build):
    milestone = _pending_review(build, "customer_tag", "task")
    assert client.post(f"/api/reviews/{milestone.id}/reject", json={}, headers=AUTH).status_code == 400
    response = client.post(f"/api/reviews/{milestone.id}/reject", json={"reason": "Staff account"}, headers=AUTH)
    assert response.status_code == 200
    body = response.get_json()
    assert body["released"] == 2
    assert (body["milestone"]["status"], body["milestone"]["notes"]) == ("rejected", "Rejected: Staff account")
    assert _effects(app, milestone.id) == {"customer_tag": "cancelled", "task": "cancelled", "crm_note": "succeeded"}
    assert client.post(f"/api/reviews/{milestone.id}/approve", headers=AUTH).status_code == 409


def test_another_workspace_cannot_see_or_decide_a_review(app, client, workspace, other_workspace, build):
    milestone = _pending_review(build, "task")
    assert client.get("/api/reviews", headers=OTHER_AUTH).get_json()["total"] == 0
    for action, body in (("approve", None), ("reject", {"reason": "no"})):
        response = client.post(f"/api/reviews/{milestone.id}/{action}", json=body, headers=OTHER_AUTH)
        assert response.status_code == 404 and response.get_json()["error"] == f"no milestone {milestone.id}"
    with services_of(app).sessions() as session:
        assert session.get(CustomerMilestone, milestone.id).status == "pending_review"
    assert _effects(app, milestone.id)["task"] == "held"


def test_tasks_are_done_by_hand_once(app, client, workspace, build):
    def rows_for(rows):
        milestone = rows.milestone(rows.customer("gift@example.com"), "order-1")
        return rows.effect(milestone, "task", "open_task", {"action": {"kind": "task"}, "title": "Send a welcome gift"})

    task = build(rows_for)
    listed = client.get("/api/tasks", headers=AUTH).get_json()["items"]
    assert [(t["id"], t["title"], t["milestone_name"]) for t in listed] == [(task.id, "Send a welcome gift",
                                                                             "1st Order")]
    done = client.post(f"/api/tasks/{task.id}/done", json={"notes": "Jam and a card"}, headers=AUTH)
    assert done.status_code == 200
    assert (done.get_json()["status"], done.get_json()["notes"]) == ("done_task", "Jam and a card")
    assert client.post(f"/api/tasks/{task.id}/done", headers=AUTH).get_json()["status"] == "done_task"
    assert client.get("/api/tasks", headers=AUTH).get_json()["total"] == 0
    assert client.get("/api/tasks?status=done", headers=AUTH).get_json()["items"][0]["completed_at"] <= (
        utcnow().isoformat())
