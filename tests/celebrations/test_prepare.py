"""The email is written when it runs, from the database, after the milestone's rewards settled."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import responses
from sqlalchemy import select, update

from connectors.errors import ConnectorError
from connectors.payloads import EmailMessage, from_json
from plugin.celebrations.prepare import SETTLE_POLL, Wait, prepare_email
from plugin.db import transaction, utcnow
from plugin.jobs.effects import run_effects
from plugin.models import (
    Customer,
    CustomerMetric,
    CustomerMilestone,
    Effect,
    MilestoneDefinition,
    Order,
    Workspace,
)
from tests.conftest import add_connection, services_of
from tests.support import T0

KLAVIYO = "https://klaviyo.test"
EVENTS = f"{KLAVIYO}/api/events"


@pytest.fixture
def klaviyo(app, workspace):
    return add_connection(app, workspace.id, "klaviyo", {"api_key": "pk_test", "base_url": KLAVIYO})


@pytest.fixture
def tenth(app, workspace, shop, klaviyo) -> dict[str, Any]:
    """Alice's 10th-order milestone with a $5 credit (pending) and its email (pending), made by hand."""
    services = services_of(app)
    with transaction(services.sessions) as session:
        customer = Customer(id=uuid.uuid4(), workspace_id=workspace.id, email="alice@example.com", first_name="Alice",
                            last_name="Nguyen", customer_since=T0 - timedelta(days=400), properties={})
        session.add(customer)
        session.flush()
        session.add_all([
            CustomerMetric(customer_id=customer.id, metric="order_count", value=Decimal(10), updated_at=T0),
            CustomerMetric(customer_id=customer.id, metric="lifetime_spend", value=Decimal("412.30"), updated_at=T0),
        ])
        for number, items in enumerate([
            [{"title": "Seasonal veg box", "quantity": 1}, {"title": "Free-range eggs", "quantity": 2}],
            [{"title": "Free-range eggs", "quantity": 1}, {"title": "Sourdough", "quantity": 1}],
            [{"title": "Cancelled kale", "quantity": 9}],
        ]):
            session.add(Order(workspace_id=workspace.id, connection_id=shop.id, external_id=str(900 + number),
                              customer_id=customer.id, currency="USD", total=Decimal("40"), paid=True,
                              counted=number < 2, cancelled=number == 2, has_snapshot=True,
                              placed_at=T0 + timedelta(days=number), line_items=items, refunds={}))
        definition = session.execute(select(MilestoneDefinition).where(
            MilestoneDefinition.workspace_id == workspace.id, MilestoneDefinition.key == "order-10")).scalar_one()
        milestone = CustomerMilestone(id=uuid.uuid4(), workspace_id=workspace.id, customer_id=customer.id,
                                      definition_id=definition.id, occurrence=1, milestone_type="order",
                                      milestone_name="10th Order", milestone_value="10", achieved_at=T0,
                                      time_to_milestone=timedelta(days=400), status="active", context={})
        session.add(milestone)
        session.flush()
        credit = Effect(workspace_id=workspace.id, milestone_id=milestone.id, kind="store_credit",
                        connection_id=shop.id, idempotency_key=f"{milestone.id}:2:store_credit", status="pending",
                        next_attempt_at=utcnow() + timedelta(minutes=10), attempts=1,
                        payload={"action": {"kind": "store_credit", "amount": "5.00"}, "request": {
                            "idempotency_key": str(milestone.id), "customer_external_id": "7001",
                            "amount": {"amount": "5.00", "currency": "USD"}, "reason": "10th Order (10)",
                            "expires_at": None, "notify": True, "customer_email": "alice@example.com"}})
        email = Effect(workspace_id=workspace.id, milestone_id=milestone.id, kind="email", connection_id=klaviyo.id,
                       idempotency_key=f"{milestone.id}:3:email", status="pending", next_attempt_at=utcnow(),
                       attempts=0, payload={"action": {"kind": "email", "template": "order-10-thank-you"}})
        session.add_all([credit, email])
        session.flush()
        ids = {"customer": customer.id, "credit": credit.id, "email": email.id, "workspace": workspace.id}
    return ids


def _set(app, model: Any, row_id: Any, **values: Any) -> None:
    with transaction(services_of(app).sessions) as session:
        session.execute(update(model).where(model.id == row_id).values(**values))


def _prepare(app, email_id: int) -> dict[str, Any] | Wait:
    with services_of(app).sessions() as session:
        return prepare_email(session, session.get(Effect, email_id))


def _effect(app, effect_id: int) -> Effect:
    with services_of(app).sessions() as session:
        return session.get(Effect, effect_id)


@pytest.mark.parametrize("credit_status", ["pending", "in_flight", "held"])
def test_the_email_waits_while_a_reward_of_its_milestone_may_still_succeed(app, tenth, credit_status):
    _set(app, Effect, tenth["credit"], status=credit_status, next_attempt_at=utcnow())
    outcome = _prepare(app, tenth["email"])
    assert isinstance(outcome, Wait)
    assert outcome.until >= utcnow() + SETTLE_POLL - timedelta(seconds=2)
    assert f"store_credit ({credit_status})" in outcome.reason


def test_the_email_waits_for_a_pending_credit_until_its_next_attempt(app, tenth):
    outcome = _prepare(app, tenth["email"])
    assert isinstance(outcome, Wait)
    assert outcome.until >= utcnow() + timedelta(minutes=9)


def test_once_the_credit_succeeded_the_email_is_written_from_the_database(app, tenth):
    _set(app, Effect, tenth["credit"], status="succeeded")
    outcome = _prepare(app, tenth["email"])
    assert isinstance(outcome, dict)
    message = from_json(EmailMessage, outcome)
    assert message.idempotency_key == _effect(app, tenth["email"]).idempotency_key
    assert (message.to_email, message.to_name, message.template) == ("alice@example.com", "Alice Nguyen",
                                                                     "order-10-thank-you")
    assert message.subject == "Alice, this is your 10th order!"
    assert "As a small thank you:\n- $5 credit added to account\n" in message.text_body
    assert "<li>$5 credit added to account</li>" in message.html_body
    # favourites from counted orders only, by quantity
    assert "Your favourites so far: Free-range eggs, Seasonal veg box and Sourdough." in message.text_body
    assert message.properties["order_count"] == 10
    assert message.properties["lifetime_value"] == "$412.30"
    assert message.properties["time_as_customer"] == "1 year 1 month"


def test_a_credit_that_went_dead_is_not_promised(app, tenth):
    _set(app, Effect, tenth["credit"], status="dead")
    message = from_json(EmailMessage, _prepare(app, tenth["email"]))  # type: ignore[arg-type]
    assert "credit" not in message.text_body and "$5" not in message.html_body
    assert "credit_amount" not in message.properties


def test_a_customer_without_an_email_address_is_a_permanent_error(app, tenth):
    _set(app, Effect, tenth["credit"], status="succeeded")
    _set(app, Customer, tenth["customer"], email=None)
    with pytest.raises(ConnectorError, match="no email address") as raised:
        _prepare(app, tenth["email"])
    assert raised.value.permanent


def test_the_workspaces_own_template_is_used(app, tenth):
    _set(app, Effect, tenth["credit"], status="succeeded")
    templates = {"order-10-thank-you": {"subject": "Ten! {{ first_name }}", "text": "{{ credit.amount }} for you"}}
    _set(app, Workspace, tenth["workspace"], settings={"templates": templates})
    message = from_json(EmailMessage, _prepare(app, tenth["email"]))  # type: ignore[arg-type]
    assert (message.subject, message.text_body) == ("Ten! Alice", "$5 for you\n")


def test_a_broken_template_is_a_clear_permanent_error(app, tenth):
    _set(app, Effect, tenth["credit"], status="succeeded")
    templates = {"order-10-thank-you": {"subject": "s", "text": "{{ ''.__class__.__mro__ }}"}}
    _set(app, Workspace, tenth["workspace"], settings={"templates": templates})
    with pytest.raises(ConnectorError, match="template 'order-10-thank-you', text: .*unsafe") as raised:
        _prepare(app, tenth["email"])
    assert raised.value.permanent


def test_waiting_reschedules_the_email_without_using_an_attempt(app, tenth):
    with responses.RequestsMock() as mock, app.app_context():
        run_effects()
        assert len(mock.calls) == 0
    email = _effect(app, tenth["email"])
    assert (email.status, email.attempts) == ("pending", 0)
    assert email.next_attempt_at >= utcnow() + timedelta(minutes=9)
    assert "waiting for store_credit (pending)" in (email.last_error or "")
    assert "request" not in email.payload


def test_the_rendered_request_is_kept_and_a_retry_resends_exactly_it(app, tenth):
    _set(app, Effect, tenth["credit"], status="succeeded")
    with responses.RequestsMock() as mock, app.app_context():
        mock.post(EVENTS, status=503, body="unavailable")
        run_effects()
    email = _effect(app, tenth["email"])
    assert (email.status, email.attempts) == ("pending", 1)
    assert email.payload["request"]["subject"] == "Alice, this is your 10th order!"
    # the admin edits the template meanwhile: the email already written is the one that goes
    _set(app, Workspace, tenth["workspace"], settings={"templates": {"order-10-thank-you": {"subject": "New", "text": "t"}}})
    _set(app, Effect, tenth["email"], next_attempt_at=utcnow())
    with responses.RequestsMock() as mock, app.app_context():
        mock.post(EVENTS, status=202, body="")
        run_effects()
        [call] = mock.calls
    assert json.loads(call.request.body)["data"]["attributes"]["properties"]["subject"] == "Alice, this is your 10th order!"
    email = _effect(app, tenth["email"])
    assert (email.status, email.attempts) == ("succeeded", 2)
    assert email.payload["result"]["unique_id"] == email.idempotency_key


def test_a_template_error_makes_the_email_dead_with_the_reason(app, tenth):
    _set(app, Effect, tenth["credit"], status="succeeded")
    _set(app, Workspace, tenth["workspace"], settings={"templates": {"order-10-thank-you": {"subject": "s",
                                                                                          "text": "{{ nope }}"}}})
    with responses.RequestsMock() as mock, app.app_context():
        run_effects()
        assert len(mock.calls) == 0
    email = _effect(app, tenth["email"])
    assert email.status == "dead"
    assert "'nope' is undefined" in (email.last_error or "")
