"""Schemathesis drives every operation of /api/openapi.json, valid and invalid input alike, against
the app in-process (WSGI) with the admin token: no answer may be a 5xx.

The workspace holds real rows (a shop, a processed order with its milestone and effects, a
review waiting) so lists serialise data, not just empty pages. Outbound HTTP is blocked: a
connection schemathesis manages to create gets its webhook registration refused, not sent.

By default the explicit examples and the random fuzzing phase run (~40 s on a developer
machine). ``API_FUZZ_PHASES=examples,coverage,fuzzing`` adds schemathesis' coverage phase —
every boundary and invalid value the schema implies, about 70 s more.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import responses
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.api.support import AUTH
from tests.support import order, post_order

PHASES = os.environ.get("API_FUZZ_PHASES", "examples,fuzzing").split(",")


@pytest.fixture
def api_schema(app: Any, client: Any, shop: Any, build: Any) -> Any:
    post_order(client, order(1))
    build(lambda rows: rows.effect(rows.milestone(rows.customer("vip@example.com", {"order_count": "100"}),
                                                  "order-100", status="pending_review"), "task", "held"))
    loaded = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    loaded.config.phases.update(phases=PHASES)
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_a_server_error(case: Any) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        case.call_and_validate(headers=AUTH, checks=[not_a_server_error])
