"""Customers with metrics, milestones and context; case-study candidates as JSON and CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from tests.api.support import AUTH, OTHER_AUTH
from tests.support import ALICE, order, post_order


def test_a_customer_is_found_by_email_with_metrics_milestones_and_context(client, shop):
    for number in (1, 2):
        post_order(client, order(number))
    body = client.get(f"/api/customers?email={ALICE.email.upper()}", headers=AUTH).get_json()
    assert (body["total"], body["page"], body["per_page"]) == (1, 1, 50)
    alice = body["items"][0]
    assert alice["email"] == ALICE.email and alice["name"] == "Alice Nguyen"
    assert alice["metrics"]["order_count"] == "2" and alice["metrics"]["lifetime_spend"] == "80"
    assert [(m["key"], m["occurrence"], m["status"], m["celebrated"]) for m in alice["milestones"]] == [
        ("order-1", 1, "active", False)]
    assert set(alice["context"]) == {"arr", "health_score", "owner_email", "customer_since", "company_name",
                                     "timezone"}
    assert alice["context"]["customer_since"] == ALICE.created_at.isoformat()
    one = client.get(f"/api/customers/{alice['id']}", headers=AUTH).get_json()
    assert one == alice
    assert client.get("/api/customers?q=nguy", headers=AUTH).get_json()["total"] == 1
    assert client.get("/api/customers?email=nobody@example.com", headers=AUTH).get_json()["items"] == []


def test_another_workspaces_customers_are_not_found(client, shop, other_workspace):
    post_order(client, order(1))
    alice = client.get("/api/customers", headers=AUTH).get_json()["items"][0]
    assert client.get("/api/customers", headers=OTHER_AUTH).get_json()["total"] == 0
    assert client.get(f"/api/customers/{alice['id']}", headers=OTHER_AUTH).status_code == 404


def _candidates(build):
    def rows_for(rows):
        growth = rows.customer("ceo@growthcorp.example", company_name="GrowthCorp", arr="65000.00", health_score=85,
                               owner_email="csm@example.com", customer_since=datetime(2025, 5, 1, tzinfo=UTC))
        rows.milestone(growth, "api-calls-1m", achieved_at=datetime(2026, 1, 29, tzinfo=UTC), celebrated=True)
        rows.milestone(growth, "order-10")  # not significant: not listed
        shopper = rows.customer("shopper@example.com", first_name="Sam", arr="12000.00", health_score=60,
                                company_name="=HYPERLINK(\"http://evil\")")
        rows.milestone(shopper, "order-50", achieved_at=datetime(2026, 2, 2, tzinfo=UTC))
        quiet = rows.customer("quiet@example.com", arr="90000.00", health_score=95)
        rows.milestone(quiet, "order-10")
        refused = rows.customer("refused@example.com", arr="50000.00", health_score=90)
        rows.milestone(refused, "order-100", status="rejected")

    build(rows_for)


def test_case_study_candidates_have_significant_milestones_biggest_accounts_first(client, workspace, build):
    _candidates(build)
    body = client.get("/api/case-study-candidates", headers=AUTH).get_json()
    assert [c["email"] for c in body["items"]] == ["ceo@growthcorp.example", "shopper@example.com"]
    growth = body["items"][0]
    assert (growth["arr"], growth["health_score"], growth["owner_email"]) == ("65000.00", 85, "csm@example.com")
    assert [m["key"] for m in growth["milestones"]] == ["api-calls-1m"]
    assert body["total"] == 2
    rich = client.get("/api/case-study-candidates?min_arr=20000&min_health=80", headers=AUTH).get_json()
    assert [c["email"] for c in rich["items"]] == ["ceo@growthcorp.example"]
    orders = client.get("/api/case-study-candidates?milestone_type=order", headers=AUTH).get_json()
    assert [c["email"] for c in orders["items"]] == ["shopper@example.com"]
    bad = client.get("/api/case-study-candidates?min_arr=lots", headers=AUTH)
    assert bad.status_code == 400 and "min_arr" in bad.get_json()["details"]


def test_case_study_candidates_download_as_csv_safe_for_spreadsheets(client, workspace, build, other_workspace):
    _candidates(build)
    response = client.get("/api/case-study-candidates?format=csv", headers=AUTH)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="case-study-candidates.csv"'
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["email"] for r in rows] == ["ceo@growthcorp.example", "shopper@example.com"]
    assert rows[0]["significant_milestones"] == "1 Million API Calls" and rows[0]["celebrated"] == "yes"
    assert rows[0]["customer_since"] == "2025-05-01T00:00:00+00:00"
    assert rows[1]["company"] == "'=HYPERLINK(\"http://evil\")"  # shown, never run
    other = client.get("/api/case-study-candidates?format=csv", headers=OTHER_AUTH).get_data(as_text=True)
    assert other.splitlines() == ["email,name,company,arr,health_score,owner_email,customer_since,"
                                  "significant_milestones,latest_milestone_at,celebrated"]


def test_a_customer_who_opted_out_of_public_celebration_is_never_a_case_study_candidate(client, workspace, build):
    def rows_for(rows):
        private = rows.customer("private@bigco.example", arr="99000.00", health_score=99)
        private.properties = {"opt_out": ["public"], "segment": "public sector"}
        rows.milestone(private, "order-50")
        emails_only = rows.customer("no-emails@bigco.example", arr="80000.00", health_score=90)
        emails_only.properties = {"opt_out": ["email"], "company_type": "public"}
        rows.milestone(emails_only, "order-50")

    build(rows_for)
    body = client.get("/api/case-study-candidates", headers=AUTH).get_json()
    assert [c["email"] for c in body["items"]] == ["no-emails@bigco.example"]
    assert body["total"] == 1
    exported = client.get("/api/case-study-candidates?format=csv", headers=AUTH).get_data(as_text=True)
    assert "no-emails@bigco.example" in exported and "private@bigco.example" not in exported


def test_customer_search_takes_wildcards_literally_and_finds_full_names(client, workspace, build):
    def rows_for(rows):
        rows.customer("sam@example.com", first_name="Sam", last_name="Lee")
        rows.customer("pct@example.com", company_name="100% Juice")

    build(rows_for)

    def found(q):
        return [c["email"] for c in client.get(f"/api/customers?q={q}", headers=AUTH).get_json()["items"]]

    assert found("%25") == ["pct@example.com"]  # "%" is a character, not "anything"
    assert found("sam lee") == ["sam@example.com"]
