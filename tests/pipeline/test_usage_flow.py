"""PRD-114's usage and adoption milestones, fed by signed usage events through the real pipeline."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from plugin.models import Customer, CustomerMilestone
from tests.conftest import add_connection, services_of
from tests.support import count, metric, milestone_keys, order, post_order
from webhooks.usage import sign

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ACCOUNT = {"external_id": "acct_42", "email": "ops@growthcorp.example", "name": "GrowthCorp"}
EMAIL = ACCOUNT["email"]
T0 = datetime(2026, 1, 29, 10, 0, tzinfo=UTC)
FEATURES = ("dashboards", "reports", "integrations", "alerts")
_ids = itertools.count(1)


@pytest.fixture
def usage(app: Any, workspace: Any) -> Any:
    return add_connection(app, workspace.id, "usage", {"signing_secret": SECRET})


def reading(metric_name: str, value: Any, minute: int, customer: dict[str, str] = ACCOUNT) -> dict[str, Any]:
    return {"id": f"evt_{next(_ids)}", "customer": customer, "metric": metric_name, "value": value,
            "occurred_at": (T0 + timedelta(minutes=minute)).isoformat()}


def increment(metric_name: str, amount: Any, minute: int) -> dict[str, Any]:
    return {"id": f"evt_{next(_ids)}", "customer": ACCOUNT, "metric": metric_name, "increment": amount,
            "occurred_at": (T0 + timedelta(minutes=minute)).isoformat()}


def send(client: Any, usage: Any, *events: dict[str, Any]) -> None:
    body = json.dumps({"events": list(events)}).encode()
    msg_id, stamp = f"msg_{next(_ids)}", int(time.time())
    response = client.post(f"/webhooks/usage/{usage.id}", data=body, headers={
        "webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": sign(msg_id, stamp, body, SECRET)})
    assert response.status_code == 200, response.get_json()


def test_api_calls_counted_up_past_a_million_award_the_milestone_once(app: Any, client: Any, usage: Any) -> None:
    services = services_of(app)
    send(client, usage, reading("api_calls", 999_990, 0))
    assert milestone_keys(services, EMAIL) == []
    send(client, usage, increment("api_calls", 20, 1))
    send(client, usage, increment("api_calls", 5, 2))
    assert metric(services, EMAIL, "api_calls") == Decimal(1_000_015)
    assert milestone_keys(services, EMAIL) == [("api-calls-1m", 1)]


def test_an_absolute_reading_that_jumps_past_a_million_awards_once_when_it_was_crossed(
    app: Any, client: Any, usage: Any
) -> None:
    services = services_of(app)
    send(client, usage, reading("api_calls", 999_990, 0))
    send(client, usage, reading("api_calls", 1_000_010, 7))
    send(client, usage, reading("api_calls", 1_000_020, 8))
    assert milestone_keys(services, EMAIL) == [("api-calls-1m", 1)]
    with services.sessions() as session:
        milestone = session.execute(select(CustomerMilestone)).scalar_one()
    assert milestone.achieved_at == T0 + timedelta(minutes=7)
    assert milestone.milestone_value == "1000000"


def test_one_batch_that_crosses_a_million_awards_once(app: Any, client: Any, usage: Any) -> None:
    send(client, usage, reading("api_calls", 999_990, 0), increment("api_calls", 20, 1), increment("api_calls", 1, 2))
    assert milestone_keys(services_of(app), EMAIL) == [("api-calls-1m", 1)]


def test_active_users_reaching_100_award_once_even_if_they_dip_and_recover(app: Any, client: Any, usage: Any) -> None:
    services = services_of(app)
    send(client, usage, reading("active_users", 99, 0))
    assert milestone_keys(services, EMAIL) == []
    send(client, usage, reading("active_users", 100, 1))
    send(client, usage, reading("active_users", 98, 2))
    send(client, usage, reading("active_users", 101, 3))
    assert milestone_keys(services, EMAIL) == [("users-100", 1)]
    assert metric(services, EMAIL, "active_users") == 101


def test_full_feature_adoption_is_awarded_once_when_the_last_flag_flips(app: Any, client: Any, usage: Any) -> None:
    services = services_of(app)
    send(client, usage, *(reading(f"feature.{name}", True, n) for n, name in enumerate(FEATURES[:3])))
    assert milestone_keys(services, EMAIL) == []
    send(client, usage, reading("feature.alerts", True, 10))
    assert milestone_keys(services, EMAIL) == [("feature-adoption", 1)]
    send(client, usage, reading("feature.alerts", False, 11))
    send(client, usage, reading("feature.alerts", True, 12))
    assert milestone_keys(services, EMAIL) == [("feature-adoption", 1)]
    assert metric(services, EMAIL, "feature.alerts") == 1


def test_a_late_older_reading_never_moves_a_counter_or_a_flag_back(app: Any, client: Any, usage: Any) -> None:
    services = services_of(app)
    send(client, usage, reading("active_users", 120, 10), reading("feature.reports", True, 10))
    send(client, usage, reading("active_users", 90, 5), reading("feature.reports", False, 5))
    assert metric(services, EMAIL, "active_users") == 120
    assert metric(services, EMAIL, "feature.reports") == 1


def test_a_usage_account_and_a_shopper_with_the_same_email_are_one_customer(
    app: Any, client: Any, shop: Any, usage: Any
) -> None:
    services = services_of(app)
    post_order(client, order(1))
    shopper = {"external_id": "acct_7", "email": "Alice@Example.com"}
    send(client, usage, reading("active_users", 3, 0, customer=shopper))
    assert count(services, Customer) == 1
    assert metric(services, "alice@example.com", "active_users") == 3
    assert metric(services, "alice@example.com", "order_count") == 1


def test_an_increment_older_than_the_last_absolute_reading_is_not_counted_twice(
    app: Any, client: Any, usage: Any
) -> None:
    send(client, usage, reading("api_calls", 1_000, 10))
    send(client, usage, increment("api_calls", 10, 5))  # already inside the reading taken at minute 10
    assert metric(services_of(app), EMAIL, "api_calls") == 1_000
