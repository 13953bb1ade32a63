"""Money rules: the kill switch, the monthly budget, the per-customer cap, opt-outs, the holdout."""

from __future__ import annotations

from dataclasses import replace

import responses
from sqlalchemy import select, update

from plugin.db import transaction
from plugin.models import Customer, CustomerMilestone, Effect, Workspace
from tests.conftest import services_of
from tests.jobs.test_effects import GRAPHQL, _credit_ok
from tests.support import ALICE, order, post_order

BOB = replace(ALICE, id=7002, email="bob@example.com", first_name="Bob")


def _settings(app, workspace, **settings):
    with transaction(services_of(app).sessions) as session:
        session.execute(update(Workspace).where(Workspace.id == workspace.id).values(settings=settings))


def _orders(client, customer, numbers):
    for number in numbers:
        post_order(client, order(number + (0 if customer is ALICE else 500), customer))


def _credit(app, email):
    with services_of(app).sessions() as session:
        return session.execute(
            select(Effect.status, Effect.last_error, CustomerMilestone.status)
            .join(CustomerMilestone, CustomerMilestone.id == Effect.milestone_id)
            .join(Customer, Customer.id == CustomerMilestone.customer_id)
            .where(Effect.kind == "store_credit", Customer.email == email)
        ).one()


def test_the_kill_switch_holds_store_credit(app, client, shop, workspace):
    _settings(app, workspace, money_paused=True)
    _orders(client, ALICE, range(1, 26))
    effect_status, reason, _ = _credit(app, ALICE.email)
    assert effect_status == "held" and "kill switch" in reason


def test_credit_beyond_the_monthly_budget_goes_to_review(app, client, shop, workspace):
    _settings(app, workspace, monthly_credit_budget="15.00")
    with responses.RequestsMock() as mock:
        mock.post(GRAPHQL, json=_credit_ok())
        _orders(client, ALICE, range(1, 26))
        _orders(client, BOB, range(1, 26))
    assert _credit(app, ALICE.email)[0] == "succeeded"
    bob = _credit(app, BOB.email)
    assert bob[0] == "held" and "monthly credit budget of 15.00" in bob[1]
    assert bob[2] == "pending_review"


def test_credit_beyond_the_customer_cap_goes_to_review(app, client, shop, workspace):
    _settings(app, workspace, customer_credit_cap="5.00")
    _orders(client, ALICE, range(1, 26))
    effect_status, reason, milestone_status = _credit(app, ALICE.email)
    assert (effect_status, milestone_status) == ("held", "pending_review") and "cap of 5.00" in reason


def test_a_customer_who_opted_out_of_credit_gets_none(app, client, shop, workspace):
    _orders(client, ALICE, range(1, 3))
    with transaction(services_of(app).sessions) as session:
        session.execute(update(Customer).where(Customer.email == ALICE.email).values(properties={"opt_out": ["credit"]}))
    _orders(client, ALICE, range(3, 26))
    effect_status, reason, _ = _credit(app, ALICE.email)
    assert effect_status == "cancelled" and "opted out" in reason


def test_a_held_out_customer_is_recorded_but_not_rewarded(app, client, shop, workspace):
    _settings(app, workspace, holdout={"order-1": 100})
    _orders(client, ALICE, [1])
    with services_of(app).sessions() as session:
        milestone = session.execute(select(CustomerMilestone)).scalar_one()
        effects = dict(session.execute(select(Effect.kind, Effect.status).where(Effect.milestone_id == milestone.id)).tuples().all())
    assert milestone.context.get("holdout") is True
    assert effects["task"] == "cancelled"  # the welcome gift is a reward
    assert effects["crm_note"] != "cancelled"  # the record of the milestone is not


def test_the_alert_suggests_no_public_celebration_for_a_customer_who_opted_out() -> None:
    from datetime import UTC, datetime

    from plugin.milestones.planning import PRD_CELEBRATION_IDEAS, milestone_alert
    from plugin.models import Customer, Workspace

    workspace = Workspace(name="Shop", slug="shop", currency="USD", timezone="UTC", settings={})
    public = Customer(email="a@example.com", properties={})
    private = Customer(email="b@example.com", properties={"opt_out": ["public", "email"]})
    achieved = datetime(2026, 3, 1, tzinfo=UTC)

    def ideas(customer: Customer) -> tuple[str, ...]:
        return milestone_alert("k", customer, workspace, "10th Order", "", achieved, None, {}).celebration_ideas

    assert ideas(public) == PRD_CELEBRATION_IDEAS
    assert ideas(private) == ("Send congratulations email", "Consider milestone gift",
                              "No public celebration: the customer opted out")
