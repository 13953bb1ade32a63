"""The milestone catalogue through the API: CRUD, validation, and the what-if preview."""

from __future__ import annotations

from datetime import timedelta

import pytest

from plugin.db import utcnow
from plugin.models import MilestoneDefinition
from tests.api.support import AUTH, OTHER_AUTH
from tests.conftest import services_of
from tests.support import count

BREAKFAST = {"name": "VIP Breakfast Club", "type": "order", "condition": {"metric": "order_count", "threshold": 15},
             "recognition": [{"kind": "store_credit", "amount": 10}, {"kind": "slack_alert"}]}


def _create(client, **changes):
    return client.post("/api/definitions", json={**BREAKFAST, **changes}, headers=AUTH)


def test_the_default_catalogue_is_listed_in_order_and_paginated(client, workspace):
    first = client.get("/api/definitions?per_page=5", headers=AUTH).get_json()
    assert first["total"] == 16 and first["page"] == 1 and first["per_page"] == 5
    assert [d["key"] for d in first["items"]] == ["order-1", "order-10", "order-25", "order-50", "order-100"]
    order_25 = first["items"][2]
    assert order_25["condition_description"] == "order count ≥ 25"
    assert order_25["recognition"][-1] == {"kind": "store_credit", "amount": "10.00", "currency": "USD"}
    spend = client.get("/api/definitions?type=spend", headers=AUTH).get_json()
    assert [d["key"] for d in spend["items"]] == ["spend-500", "spend-1000", "spend-2500", "spend-5000"]


def test_an_admin_made_definition_gets_a_key_from_its_name_and_a_canonical_condition(client, workspace):
    first, second = _create(client), _create(client)
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert body["key"] == "vip-breakfast-club" and second.get_json()["key"] == "vip-breakfast-club-2"
    assert body["condition"] == {"metric": "order_count", "gte": 15}
    assert body["condition_description"] == "order count ≥ 15"
    assert body["recognition"] == [{"kind": "store_credit", "amount": "10.00"}, {"kind": "slack_alert"}]
    assert body["enabled"] is True and body["milestones"] == 0 and body["sort_order"] == 16
    taken = _create(client, key="order-25")
    assert taken.status_code == 409 and taken.get_json()["details"] == {"key": ["already used in this workspace"]}


@pytest.mark.parametrize(
    ("changes", "where", "message"),
    [
        ({"condition": {"all": [{"metric": "order_count", "gte": 1}, {"metric": "x", "gte": "lots"}]}},
         "condition", "all[1].gte: must be a number"),
        ({"type": "vibes"}, "type", "Must be one of"),
        ({"recognition": [{"kind": "store_credit", "amount": "-5"}]}, "recognition", "greater than 0"),
        ({"recognition": [{"kind": "store_credit", "amount": "1.234"}]}, "recognition", "2 decimal places"),
        ({"recognition": [{"kind": "store_credit"}]}, "recognition", "store_credit needs amount"),
        ({"recognition": [{"kind": "email", "template": "welcome", "amount": 5}]}, "recognition",
         "email does not take amount"),
        ({"recognition": [{"kind": "discount_code"}]}, "recognition", "exactly one of percentage or amount"),
        ({"recognition": [{"kind": "fireworks"}]}, "recognition", "Must be one of"),
        ({"celebration_template": "Hi {{ first_name }"}, "celebration_template", "line 1"),
    ],
)
def test_invalid_definitions_are_400_saying_where(app, client, workspace, changes, where, message):
    response = _create(client, **changes)
    assert response.status_code == 400
    body = response.get_json()
    assert where in body["details"] and message in body["error"], body
    assert count(services_of(app), MilestoneDefinition) == 16


def test_a_definition_is_changed_enabled_and_disabled(client, workspace):
    created = _create(client).get_json()
    path = f"/api/definitions/{created['id']}"
    changed = client.patch(path, json={"name": "Breakfast Club", "condition": {"metric": "order_count", "gte": 20},
                                       "requires_review": True}, headers=AUTH)
    assert changed.status_code == 200
    body = changed.get_json()
    assert (body["name"], body["key"], body["condition"]["gte"], body["requires_review"]) == (
        "Breakfast Club", "vip-breakfast-club", 20, True)
    assert client.patch(path, json={"key": "renamed"}, headers=AUTH).status_code == 400  # keys are stable
    assert client.post(f"{path}/disable", headers=AUTH).get_json()["enabled"] is False
    assert client.get("/api/definitions?enabled=false", headers=AUTH).get_json()["total"] == 1
    assert client.post(f"{path}/enable", headers=AUTH).get_json()["enabled"] is True


def test_a_definition_with_milestones_cannot_be_deleted_but_an_unused_one_can(app, client, workspace, build):
    milestone = build(lambda rows: rows.milestone(rows.customer("ann@example.com"), "order-10"))
    used = client.delete(f"/api/definitions/{milestone.definition_id}", headers=AUTH)
    assert used.status_code == 409 and "disable it instead" in used.get_json()["error"]
    unused = _create(client).get_json()
    assert client.delete(f"/api/definitions/{unused['id']}", headers=AUTH).status_code == 204
    assert client.get(f"/api/definitions/{unused['id']}", headers=AUTH).status_code == 404
    assert count(services_of(app), MilestoneDefinition) == 16


def test_validate_explains_a_condition_or_says_where_it_is_wrong(client, workspace):
    good = client.post("/api/definitions/validate", json={"condition": {"tenure": {"years": 1}, "every": {"years": 1}}},
                       headers=AUTH)
    assert good.get_json() == {"valid": True, "description": "1 year as a customer, every year",
                               "condition": {"tenure": {"years": 1}, "every": {"years": 1}}}
    bad = client.post("/api/definitions/validate", json={"condition": {"any": [{"metric": "Orders", "gte": 1}]}},
                      headers=AUTH)
    assert bad.status_code == 400
    assert bad.get_json()["details"]["condition"]["path"] == "any[0].metric"
    assert "must look like order_count" in bad.get_json()["error"]


def test_preview_counts_who_qualifies_and_what_celebrating_them_would_cost(client, workspace, build):
    now = utcnow()
    created = _create(client).get_json()

    def dataset(rows):
        rows.customer("recent@example.com", {"order_count": "20"}, changed_at=now - timedelta(days=5))
        rows.customer("long-ago@example.com", {"order_count": "16"}, changed_at=now - timedelta(days=90))
        rows.customer("not-yet@example.com", {"order_count": "3"}, changed_at=now)
        rows.customer("no-orders@example.com")
        done = rows.customer("done@example.com", {"order_count": "40"}, changed_at=now)
        rows.session.add(rows.milestone(done, "order-1"))  # another definition: does not count
        return done

    build(dataset)
    path = f"/api/definitions/{created['id']}/preview"
    quiet = client.get(path, headers=AUTH).get_json()
    assert (quiet["customers"], quiet["qualifying"], quiet["celebrated"], quiet["historical"]) == (5, 3, 0, 3)
    assert quiet["celebration"]["credit_liability"] == [{"currency": "USD", "amount": "0.00"}]
    recent = client.get(f"{path}?celebrate=recent&days=30", headers=AUTH).get_json()
    assert (recent["celebrated"], recent["historical"]) == (2, 1)
    assert recent["celebration"]["credit_liability"] == [{"currency": "USD", "amount": "20.00"}]
    assert recent["celebration"]["slack_alerts"] == 2 and recent["upcoming"] is None
    everyone = client.get(f"{path}?celebrate=all", headers=AUTH).get_json()
    assert everyone["celebrated"] == 3 and everyone["celebration"]["credit_liability"][0]["amount"] == "30.00"
    assert {e["email"] for e in everyone["examples"]} == {"recent@example.com", "long-ago@example.com",
                                                          "done@example.com"}


def test_preview_leaves_out_customers_already_recorded_and_projects_anniversaries(client, workspace, build):
    now = utcnow()

    def dataset(rows):
        veteran = rows.customer("veteran@example.com", customer_since=now - timedelta(days=800))
        rows.customer("almost@example.com", customer_since=now - timedelta(days=355))
        rows.customer("new@example.com", customer_since=now - timedelta(days=30))
        rows.milestone(veteran, "anniversary-1y")
        return rows.definition("anniversary-1y").id

    definition_id = build(dataset)
    body = client.get(f"/api/definitions/{definition_id}/preview?celebrate=all", headers=AUTH).get_json()
    assert (body["qualifying"], body["already_recorded"], body["celebrated"]) == (1, 1, 0)
    assert body["upcoming"]["customers"] == 1 and body["upcoming"]["slack_alerts"] == 1
    draft = client.post("/api/definitions/preview", headers=AUTH, json={
        "condition": {"tenure": {"months": 6}}, "recognition": [{"kind": "store_credit", "amount": "5.50",
                                                                 "currency": "EUR"}], "celebrate": "all"})
    assert draft.status_code == 200, draft.get_json()
    assert draft.get_json()["celebrated"] == 2
    assert draft.get_json()["celebration"]["credit_liability"] == [{"currency": "EUR", "amount": "11.00"}]


def test_another_workspaces_definitions_are_not_found_and_not_changed(client, workspace, other_workspace):
    mine = _create(client).get_json()
    path = f"/api/definitions/{mine['id']}"
    for method, suffix, body in [("GET", "", None), ("PATCH", "", {"name": "Stolen"}), ("DELETE", "", None),
                                 ("POST", "/disable", None), ("GET", "/preview", None)]:
        response = client.open(path + suffix, method=method, json=body, headers=OTHER_AUTH)
        assert response.status_code == 404, (method, suffix)
    draft = client.post("/api/definitions/preview", headers=OTHER_AUTH,
                        json={"condition": {"metric": "order_count", "gte": 1}, "definition_id": mine["id"]})
    assert draft.status_code == 404
    assert client.get(path, headers=AUTH).get_json()["name"] == "VIP Breakfast Club"
    assert client.get(path, headers=AUTH).get_json()["enabled"] is True
