"""Counters and milestones through the real endpoint and pipeline."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select, update

from plugin.db import transaction
from plugin.models import CustomerMilestone, Effect, MilestoneDefinition
from tests.conftest import services_of
from tests.support import T0, count, metric, milestone_keys, order, post_order

ALICE = "alice@example.com"


def test_a_cancelled_order_stops_counting_and_a_refund_reduces_spend(app, client, shop):
    services = services_of(app)
    for n in range(1, 4):
        post_order(client, order(n, total="50.00"))
    post_order(client, order(2, total="50.00"), topic="orders/cancelled", financial_status="refunded",
               cancelled_at=T0 + timedelta(days=3), updated_at=T0 + timedelta(days=3))
    post_order(client, order(3, total="50.00"), topic="orders/updated", financial_status="partially_refunded",
               refunds=[(81, Decimal("20.00"), T0 + timedelta(days=4))], updated_at=T0 + timedelta(days=4))
    assert metric(services, ALICE, "order_count") == 2
    assert metric(services, ALICE, "lifetime_spend") == Decimal("80.00")


def test_one_order_that_jumps_past_two_spend_thresholds_awards_both(app, client, shop):
    post_order(client, order(1, total="1200.00"))
    assert milestone_keys(services_of(app), ALICE) == [("order-1", 1), ("spend-1000", 1), ("spend-500", 1)]


def test_a_pending_order_counts_only_once_it_is_paid(app, client, shop):
    services = services_of(app)
    post_order(client, order(1), topic="orders/create", financial_status="pending")
    assert metric(services, ALICE, "order_count") == 0
    post_order(client, order(1), topic="orders/paid", financial_status="paid")
    assert metric(services, ALICE, "order_count") == 1


def test_a_definition_enabled_after_customers_passed_it_does_not_flood_them(app, client, shop, workspace):
    services = services_of(app)
    with transaction(services.sessions) as session:
        session.execute(update(MilestoneDefinition).where(MilestoneDefinition.key == "order-10").values(enabled=False))
    for n in range(1, 13):
        post_order(client, order(n))
    with transaction(services.sessions) as session:
        session.execute(update(MilestoneDefinition).where(MilestoneDefinition.key == "order-10").values(enabled=True))
    post_order(client, order(13))
    assert ("order-10", 1) not in milestone_keys(services, ALICE)
    assert metric(services, ALICE, "order_count") == 13


def test_a_milestone_needing_review_holds_its_reward_but_not_its_note(app, client, shop, workspace):
    services = services_of(app)
    with transaction(services.sessions) as session:
        session.execute(update(MilestoneDefinition).where(MilestoneDefinition.key == "order-25")
                        .values(requires_review=True))
    for n in range(1, 26):
        post_order(client, order(n))
    with services.sessions() as session:
        milestone = session.execute(
            select(CustomerMilestone).where(CustomerMilestone.milestone_name == "25th Order")
        ).scalar_one()
        kinds = dict(session.execute(select(Effect.kind, Effect.status).where(Effect.milestone_id == milestone.id)).all())
    assert milestone.status == "pending_review"
    assert kinds["store_credit"] == "held"
    assert kinds["crm_note"] == "no_connection"  # not held: no CRM is connected in this test


def test_time_to_milestone_is_measured_from_customer_since(app, client, shop):
    post_order(client, order(1))
    with services_of(app).sessions() as session:
        milestone = session.execute(select(CustomerMilestone)).scalar_one()
    # ALICE's account was created 30 days before T0; order 1 was placed a day after T0.
    assert milestone.time_to_milestone == timedelta(days=31)


def test_milestones_are_scoped_to_their_workspace(app, client, shop):
    post_order(client, order(1))
    response = client.get("/api/milestones", headers={"Authorization": "Bearer test-admin-token"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] == 1 and body["items"][0]["customer_email"] == ALICE
    assert client.get("/api/milestones", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert count(services_of(app), CustomerMilestone) == 1
