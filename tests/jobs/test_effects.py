"""The effect runner: one credit per milestone, retries with backoff, Retry-After, dead and retry,
and the crash between "credit applied" and "we recorded it"."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import responses
from sqlalchemy import select, update

from plugin.db import utcnow
from plugin.jobs.effects import run_effects
from plugin.models import Effect
from tests.conftest import services_of
from tests.support import order, post_order

GRAPHQL = "https://shop.test/admin/api/2025-07/graphql.json"


def _credit_ok(amount: str = "10.00") -> dict:
    # https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/storeCreditAccountCredit
    return {
        "data": {
            "storeCreditAccountCredit": {
                "storeCreditAccountTransaction": {
                    "id": "gid://shopify/StoreCreditAccountCreditTransaction/77",
                    "amount": {"amount": amount, "currencyCode": "USD"},
                    "createdAt": utcnow().isoformat(),
                    "account": {"id": "gid://shopify/StoreCreditAccount/5", "balance": {"amount": amount,
                                                                                       "currencyCode": "USD"}},
                },
                "userErrors": [],
            }
        }
    }


def _credit_calls(mock: responses.RequestsMock) -> list[dict]:
    bodies = [json.loads(c.request.body) for c in mock.calls if c.request.url == GRAPHQL]
    return [b for b in bodies if "storeCreditAccountCredit(" in b["query"]]


def _reach_25_orders(client) -> None:
    for number in range(1, 26):
        assert post_order(client, order(number)).status_code == 200


def _credit_effect(app) -> Effect:
    with services_of(app).sessions() as session:
        return session.execute(select(Effect).where(Effect.kind == "store_credit")).scalar_one()


def test_the_25th_order_applies_ten_dollars_of_credit_once(app, client, shop):
    with responses.RequestsMock() as mock:
        mock.post(GRAPHQL, json=_credit_ok())
        _reach_25_orders(client)
        post_order(client, order(25), topic="orders/updated")  # a re-delivery of the same order
        calls = _credit_calls(mock)
    assert len(calls) == 1
    credit_input = calls[0]["variables"]["creditInput"]
    assert credit_input["creditAmount"] == {"amount": "10.00", "currencyCode": "USD"}
    assert calls[0]["variables"]["id"] == "gid://shopify/Customer/7001"
    effect = _credit_effect(app)
    assert effect.status == "succeeded"
    assert effect.external_id == "gid://shopify/StoreCreditAccountCreditTransaction/77"


def test_a_429_is_retried_no_sooner_than_retry_after(app, client, shop):
    with responses.RequestsMock() as mock:
        mock.post(GRAPHQL, status=429, headers={"Retry-After": "600"}, json={"errors": "Throttled"})
        _reach_25_orders(client)
    effect = _credit_effect(app)
    assert effect.status == "pending"
    assert effect.attempts == 1
    assert "429" in (effect.last_error or "")
    assert effect.next_attempt_at >= utcnow() + timedelta(seconds=590)


def test_a_server_error_backs_off_and_a_later_run_succeeds(app, client, shop):
    with responses.RequestsMock() as mock:
        mock.post(GRAPHQL, status=502, body="bad gateway")
        _reach_25_orders(client)
    effect = _credit_effect(app)
    assert (effect.status, effect.attempts) == ("pending", 1)
    assert effect.next_attempt_at > utcnow() + timedelta(seconds=10)
    with services_of(app).sessions() as session:  # time passes
        session.execute(update(Effect).where(Effect.id == effect.id).values(next_attempt_at=utcnow()))
        session.commit()
    with responses.RequestsMock() as mock:
        mock.post(GRAPHQL, json=_credit_ok())
        with app.app_context():
            run_effects()
        assert len(_credit_calls(mock)) == 1
    assert _credit_effect(app).status == "succeeded"


def test_a_permanent_error_makes_the_effect_dead_and_the_admin_can_retry_it(app, client, shop):
    with responses.RequestsMock() as mock:
        mock.post(GRAPHQL, status=401, json={"errors": "[API] Invalid API key or access token"})
        _reach_25_orders(client)
    effect = _credit_effect(app)
    assert effect.status == "dead"
    assert "401" in (effect.last_error or "")
    with responses.RequestsMock() as mock:
        mock.post(GRAPHQL, json=_credit_ok())
        response = client.post(f"/api/effects/{effect.id}/retry", headers={"Authorization": "Bearer test-admin-token"})
        assert response.status_code == 200
        assert len(_credit_calls(mock)) == 1
    assert _credit_effect(app).status == "succeeded"
    again = client.post(f"/api/effects/{effect.id}/retry", headers={"Authorization": "Bearer test-admin-token"})
    assert again.status_code == 409


def test_an_effect_runs_out_of_attempts_and_goes_dead(app, client, shop):
    services = services_of(app)
    with responses.RequestsMock() as mock:
        mock.post(GRAPHQL, status=503, body="unavailable")
        _reach_25_orders(client)
        for _ in range(services.settings.effect_max_attempts):
            with services.sessions() as session:
                session.execute(update(Effect).where(Effect.kind == "store_credit").values(next_attempt_at=utcnow()))
                session.commit()
            with app.app_context():
                run_effects()
    effect = _credit_effect(app)
    assert effect.status == "dead"
    assert effect.attempts == services.settings.effect_max_attempts
    assert "gave up after" in (effect.last_error or "")


@pytest.fixture
def crashed_credit(app, client, shop):
    """The 25th order's credit, left in flight by a worker that died mid-call."""
    with responses.RequestsMock() as mock:
        mock.post(GRAPHQL, status=503, body="unavailable")
        _reach_25_orders(client)
    crashed_at = utcnow() - timedelta(minutes=10)
    with services_of(app).sessions() as session:
        session.execute(
            update(Effect).where(Effect.kind == "store_credit").values(status="in_flight", in_flight_at=crashed_at)
        )
        session.commit()
    return crashed_at


def test_an_in_flight_credit_that_went_through_is_not_applied_again(app, crashed_credit):
    found = {
        "data": {"customer": {"storeCreditAccounts": {"nodes": [{
            "id": "gid://shopify/StoreCreditAccount/5",
            "balance": {"amount": "10.0", "currencyCode": "USD"},
            "transactions": {"nodes": [{
                "id": "gid://shopify/StoreCreditAccountCreditTransaction/99",
                "amount": {"amount": "10.0", "currencyCode": "USD"},
                "createdAt": (crashed_credit + timedelta(seconds=2)).isoformat(),
            }]},
        }]}}}
    }
    with responses.RequestsMock() as mock:
        mock.post(GRAPHQL, json=found)
        with app.app_context():
            run_effects()
        assert _credit_calls(mock) == []
    effect = _credit_effect(app)
    assert (effect.status, effect.external_id) == ("succeeded", "gid://shopify/StoreCreditAccountCreditTransaction/99")


def test_an_in_flight_credit_that_never_arrived_is_applied_once(app, crashed_credit):
    nothing = {"data": {"customer": {"storeCreditAccounts": {"nodes": []}}}}
    with responses.RequestsMock() as mock:
        mock.post(GRAPHQL, json=nothing)
        mock.post(GRAPHQL, json=_credit_ok())
        with app.app_context():
            run_effects()
        assert len(_credit_calls(mock)) == 1
    assert _credit_effect(app).status == "succeeded"


def test_a_fresh_in_flight_effect_is_left_alone(app, client, shop):
    """Another worker may be calling the platform right now: only stale ones are reclaimed."""
    with responses.RequestsMock() as mock:
        mock.post(GRAPHQL, status=503, body="unavailable")
        _reach_25_orders(client)
    with services_of(app).sessions() as session:
        session.execute(update(Effect).where(Effect.kind == "store_credit").values(status="in_flight",
                                                                                   in_flight_at=utcnow()))
        session.commit()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(GRAPHQL, json=_credit_ok())
        with app.app_context():
            run_effects()
        assert [c.request.body for c in mock.calls] == []
    assert _credit_effect(app).status == "in_flight"
