"""Every refusal is a JSON body that says what was wrong, and changes nothing."""

from __future__ import annotations

import uuid

import pytest

from plugin.models import MilestoneDefinition
from tests.api.support import AUTH
from tests.conftest import services_of
from tests.support import count

ROUTES = [
    ("GET", "/api/customers"),
    ("GET", "/api/milestones"),
    ("GET", "/api/definitions"),
    ("POST", "/api/definitions"),
    ("GET", "/api/connections"),
    ("POST", "/api/connections"),
    ("GET", "/api/dashboard"),
    ("GET", "/api/reviews"),
    ("GET", "/api/tasks"),
    ("GET", "/api/case-study-candidates"),
    ("GET", "/api/platforms"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_the_bearer_token(client, workspace, method, path):
    missing = client.open(path, method=method)
    wrong = client.open(path, method=method, headers={"Authorization": "Bearer not-the-token"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.get_json()["error"] == "missing bearer token"
    assert wrong.get_json()["error"] == "invalid token"


def test_the_openapi_document_is_public_and_generated_from_the_schemas(client, workspace):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    body = spec["paths"]["/api/connections"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/NewConnection"}
    assert set(spec["components"]["schemas"]["NewConnection"]["required"]) == {"platform", "name", "settings"}
    assert "/api/inbox/{delivery_id}/replay" in spec["paths"]


def test_an_unknown_field_is_refused_with_its_name(client, workspace):
    response = client.post("/api/definitions", json={"name": "Big", "type": "order",
                                                     "condition": {"metric": "order_count", "gte": 5}, "colour": "red"},
                           headers=AUTH)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid request body: colour: Unknown field."
    assert body["details"] == {"colour": ["Unknown field."]}


def test_an_unknown_query_parameter_is_refused_too(client, workspace):
    response = client.get("/api/milestones?stauts=active", headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["details"] == {"stauts": ["Unknown field."]}


@pytest.mark.parametrize(
    ("query", "field"),
    [("page=0", "page"), ("per_page=500", "per_page"), ("page=two", "page"), ("status=bogus", "status"),
     ("since=2026-13-01", "since"), ("celebrated=perhaps", "celebrated")],
)
def test_bad_query_values_are_400_with_the_field(client, workspace, query, field):
    response = client.get(f"/api/milestones?{query}", headers=AUTH)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"].startswith(f"invalid query string: {field}: ")
    assert field in body["details"]


def test_a_body_that_is_not_json_is_refused(client, workspace):
    garbled = client.post("/api/definitions", data="{not json", headers={**AUTH, "Content-Type": "application/json"})
    form = client.post("/api/definitions", data="name=x", headers={**AUTH, "Content-Type": "text/plain"})
    assert garbled.status_code == 400 and garbled.get_json()["error"] == "invalid request body: Invalid JSON body."
    assert form.status_code == 400 and "Content-Type: application/json" in form.get_json()["error"]


def test_text_postgres_cannot_store_is_refused_not_crashed(client, workspace):
    nul_query = client.get("/api/customers?email=a%00b", headers=AUTH)
    nul_body = client.post("/api/definitions", json={"name": "a\u0000b", "type": "order",
                                                     "condition": {"metric": "order_count", "gte": 5}}, headers=AUTH)
    assert (nul_query.status_code, nul_body.status_code) == (400, 400)
    assert "NUL" in nul_body.get_json()["error"]
    assert count(services_of(client.application), MilestoneDefinition) == 16


def test_ids_beyond_bigint_and_malformed_ids_are_404(client, workspace):
    huge = client.post(f"/api/effects/{2**70}/retry", headers=AUTH)
    assert huge.status_code == 404 and "error" in huge.get_json()
    assert client.get("/api/milestones/not-a-uuid", headers=AUTH).status_code == 404
    assert client.get(f"/api/milestones/{uuid.uuid4()}", headers=AUTH).get_json()["error"].startswith("no milestone")
