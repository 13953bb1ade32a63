"""The milestones feed, its filters, marking a milestone celebrated; effects and the inbox."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.api.support import AUTH, OTHER_AUTH
from tests.support import ALICE, order, post_order


def _feed(build):
    def rows_for(rows):
        ann = rows.customer("ann@example.com")
        bob = rows.customer("bob@example.com")
        return {
            "ann-1": rows.milestone(ann, "order-1", achieved_at=datetime(2026, 1, 10, 9, tzinfo=UTC)),
            "ann-25": rows.milestone(ann, "order-25", achieved_at=datetime(2026, 3, 1, 9, tzinfo=UTC),
                                     celebrated=True, celebrated_at=datetime(2026, 3, 2, tzinfo=UTC)),
            "bob-500": rows.milestone(bob, "spend-500", achieved_at=datetime(2026, 2, 14, 23, tzinfo=UTC)),
            "bob-1y": rows.milestone(bob, "anniversary-1y", status="historical",
                                     achieved_at=datetime(2025, 6, 1, tzinfo=UTC)),
        }

    return build(rows_for)


def _keys(client, query=""):
    body = client.get(f"/api/milestones?{query}", headers=AUTH).get_json()
    return [(m["customer_email"], m["key"]) for m in body["items"]], body["total"]


def test_the_feed_is_newest_first_and_filters_by_customer_type_key_status_and_dates(client, workspace, build):
    made = _feed(build)
    everything, total = _keys(client)
    assert total == 4
    assert everything == [("ann@example.com", "order-25"), ("bob@example.com", "spend-500"),
                          ("ann@example.com", "order-1"), ("bob@example.com", "anniversary-1y")]
    assert _keys(client, "email=ANN@example.com")[1] == 2
    assert _keys(client, f"customer_id={made['bob-500'].customer_id}")[1] == 2
    assert _keys(client, "type=order")[1] == 2
    assert _keys(client, "key=spend-500")[0] == [("bob@example.com", "spend-500")]
    assert _keys(client, "status=historical")[0] == [("bob@example.com", "anniversary-1y")]
    assert _keys(client, "celebrated=true")[0] == [("ann@example.com", "order-25")]
    assert _keys(client, "since=2026-02-14&until=2026-02-14")[0] == [("bob@example.com", "spend-500")]
    assert _keys(client, "since=2026-01-01&per_page=1&page=2")[0] == [("bob@example.com", "spend-500")]
    reversed_range = client.get("/api/milestones?since=2026-03-01&until=2026-02-01", headers=AUTH)
    assert reversed_range.status_code == 400 and "until" in reversed_range.get_json()["details"]


def test_a_milestone_from_the_pipeline_carries_its_effects(client, shop):
    post_order(client, order(1))
    item = client.get("/api/milestones", headers=AUTH).get_json()["items"][0]
    assert (item["key"], item["customer_email"], item["milestone_value"]) == ("order-1", ALICE.email, "1")
    assert {e["kind"] for e in item["effects"]} == {"crm_note", "slack_alert", "email", "task"}
    one = client.get(f"/api/milestones/{item['id']}", headers=AUTH).get_json()
    assert one == item


def test_marking_celebrated_records_how_once(client, workspace, build):
    milestone = _feed(build)["bob-500"]
    path = f"/api/milestones/{milestone.id}/celebrate"
    first = client.post(path, json={"celebration_type": "gift", "notes": "Sent a hamper"}, headers=AUTH)
    assert first.status_code == 200
    body = first.get_json()
    assert (body["celebrated"], body["celebration_type"], body["notes"]) == (True, "gift", "Sent a hamper")
    assert body["celebrated_at"] is not None
    again = client.post(path, json={"celebration_type": "call"}, headers=AUTH).get_json()
    assert (again["celebration_type"], again["celebrated_at"]) == ("gift", body["celebrated_at"])
    default = client.post(f"/api/milestones/{_feed_ann_1(client)}/celebrate", headers=AUTH).get_json()
    assert default["celebration_type"] == "manual"
    bad = client.post(path, json={"celebration_type": "A Party!"}, headers=AUTH)
    assert bad.status_code == 400 and "celebration_type" in bad.get_json()["details"]


def _feed_ann_1(client):
    items = client.get("/api/milestones?key=order-1", headers=AUTH).get_json()["items"]
    return items[0]["id"]


def test_a_rejected_milestone_is_not_celebrated(client, workspace, build):
    milestone = build(lambda rows: rows.milestone(rows.customer("x@example.com"), "order-100", status="rejected"))
    response = client.post(f"/api/milestones/{milestone.id}/celebrate", headers=AUTH)
    assert response.status_code == 409 and response.get_json()["details"] == {"status": "rejected"}


def test_another_workspaces_milestones_are_invisible_and_unchanged(client, workspace, other_workspace, build):
    milestone = _feed(build)["bob-500"]
    assert client.get("/api/milestones", headers=OTHER_AUTH).get_json()["total"] == 0
    assert client.get(f"/api/milestones/{milestone.id}", headers=OTHER_AUTH).status_code == 404
    assert client.post(f"/api/milestones/{milestone.id}/celebrate", headers=OTHER_AUTH).status_code == 404
    assert client.get(f"/api/milestones/{milestone.id}", headers=AUTH).get_json()["celebrated"] is False


def test_effects_and_deliveries_filter_by_status_and_stay_in_their_workspace(client, shop, other_workspace):
    post_order(client, order(1))
    effects = client.get("/api/effects?status=no_connection", headers=AUTH).get_json()
    assert effects["total"] == 3 and {e["kind"] for e in effects["items"]} == {"crm_note", "slack_alert", "email"}
    task = client.get("/api/effects?kind=task", headers=AUTH).get_json()["items"][0]
    assert task["status"] == "open_task"
    retry = client.post(f"/api/effects/{task['id']}/retry", headers=AUTH)
    assert retry.status_code == 409 and "only dead effects" in retry.get_json()["error"]
    assert client.post(f"/api/effects/{task['id']}/retry", headers=OTHER_AUTH).status_code == 404
    deliveries = client.get("/api/inbox?status=processed&platform=shopify", headers=AUTH).get_json()
    assert deliveries["total"] == 1 and deliveries["items"][0]["topic"] == "orders/paid"
    delivery_id = deliveries["items"][0]["id"]
    assert client.get("/api/inbox", headers=OTHER_AUTH).get_json()["total"] == 0
    assert client.post(f"/api/inbox/{delivery_id}/replay", headers=OTHER_AUTH).status_code == 404
    assert client.get("/api/effects", headers=OTHER_AUTH).get_json()["total"] == 0
