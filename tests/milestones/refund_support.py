"""Helpers for the refund-policy tests: a definition that rewards the 3rd order, a faked Shopify
and Slack that answer with their documented shapes, and the rows to read back.

Shopify: ``storeCreditAccountCredit`` / ``storeCreditAccountDebit``
(https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/storeCreditAccountDebit, its
payload ``StoreCreditAccountDebitPayload`` and ``StoreCreditAccountDebitTransaction``).
Slack: ``chat.postMessage`` (https://docs.slack.dev/reference/methods/chat.postMessage).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from plugin.db import transaction, utcnow
from plugin.demo.shopify_payloads import refund_payload, signed_delivery
from plugin.jobs.effects import run_effects
from plugin.milestones import holds
from plugin.models import CustomerMilestone, Effect, MilestoneDefinition, Workspace
from tests.conftest import services_of
from tests.support import SHOP_DOMAIN, SHOP_SECRET, T0, order, post_order

GRAPHQL = "https://shop.test/admin/api/2025-07/graphql.json"
SLACK_POST = "https://slack.test/api/chat.postMessage"
KEY = "order-3"
ACCOUNT = "gid://shopify/StoreCreditAccount/5"


def define(app: Flask, workspace: Any, *, policy: str = "keep", hold: int | None = None, review: bool = False,
           condition: dict[str, Any] | None = None) -> uuid.UUID:
    """A definition rewarding the 3rd order (or ``condition``) with $10 of credit and a Slack alert."""
    with transaction(services_of(app).sessions) as session:
        row = MilestoneDefinition(
            id=uuid.uuid4(), workspace_id=workspace.id, key=KEY, type="order", name="3rd Order",
            condition=condition or {"metric": "order_count", "gte": 3}, enabled=True, sort_order=99,
            recognition=[{"kind": "slack_alert"}, {"kind": "store_credit", "amount": "10.00"}],
            requires_review=review, refund_policy=policy, credit_hold_days=hold,
        )
        session.add(row)
    return row.id


def settings(app: Flask, workspace: Any, **values: Any) -> None:
    with transaction(services_of(app).sessions) as session:
        session.execute(update(Workspace).where(Workspace.id == workspace.id).values(settings=values))


def _transaction(kind: str, gid: str, amount: str) -> dict[str, Any]:
    return {
        "id": gid,
        "amount": {"amount": amount, "currencyCode": "USD"},
        "createdAt": utcnow().isoformat(),
        "account": {"id": ACCOUNT, "balance": {"amount": "0.0" if kind == "debit" else amount, "currencyCode": "USD"}},
    }


class Platforms:
    """Shopify's Admin GraphQL and Slack's Web API as one fake; remembers what was asked."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.mock = mock
        self.debit_errors: list[dict[str, Any]] = []
        self.recent_debits: list[dict[str, Any]] = []  # what ``recentStoreCreditDebits`` finds

    def graphql(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        if "storeCreditAccountCredit(" in body["query"]:
            payload = {"storeCreditAccountCredit": {
                "storeCreditAccountTransaction": _transaction("credit", "gid://shopify/StoreCreditAccountCreditTransaction/77",
                                                              "10.0"),
                "userErrors": []}}
        elif "storeCreditAccountDebit(" in body["query"]:
            payload = {"storeCreditAccountDebit": {
                "storeCreditAccountTransaction": None if self.debit_errors else _transaction(
                    "debit", "gid://shopify/StoreCreditAccountDebitTransaction/88", "-10.0"),
                "userErrors": self.debit_errors}}
        elif "recentStoreCreditDebits" in body["query"]:
            payload = {"customer": {"storeCreditAccounts": {"nodes": [{
                "id": ACCOUNT, "balance": {"amount": "0.0", "currencyCode": "USD"},
                "transactions": {"nodes": self.recent_debits}}]}}}
        else:
            return 200, {}, json.dumps({"errors": [{"message": "unexpected query in this test"}]})
        return 200, {}, json.dumps({"data": payload})

    def calls(self, mutation: str) -> list[dict[str, Any]]:
        bodies = [json.loads(c.request.body) for c in self.mock.calls if c.request.url == GRAPHQL]
        return [b for b in bodies if f"{mutation}(" in b["query"]]

    def slack_posts(self) -> list[dict[str, Any]]:
        return [json.loads(c.request.body) for c in self.mock.calls if c.request.url == SLACK_POST]


@contextmanager
def platforms() -> Iterator[Platforms]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = Platforms(mock)
        mock.add_callback(responses.POST, GRAPHQL, callback=fake.graphql, content_type="application/json")
        mock.add(responses.POST, SLACK_POST, json={"ok": True, "channel": "C0CSM01", "ts": "1700000000.000100"})
        yield fake


def place(client: FlaskClient, *numbers: int, base: datetime | None = None) -> None:
    """Orders ``numbers`` of Alice, paid; a day apart from T0 (or from ``base``)."""
    for number in numbers:
        sample = order(number) if base is None else replace(order(number), created_at=base + timedelta(days=number))
        assert post_order(client, sample).status_code == 200


def placed_at(number: int, base: datetime | None = None) -> datetime:
    return order(number).created_at if base is None else base + timedelta(days=number)


def cancel(client: FlaskClient, number: int, *, event_id: str | None = None) -> None:
    """``orders/cancelled`` as Shopify sends it after a refund to the original payment."""
    when = placed_at(number) + timedelta(hours=2)
    refunds = [(number * 10 + 9, Decimal("40.00"), when)]
    assert post_order(client, order(number), topic="orders/cancelled", financial_status="refunded", event_id=event_id,
                      cancelled_at=when, updated_at=when, refunds=refunds).status_code == 200


def refund(client: FlaskClient, number: int, amount: str = "40.00", *, refund_id: int | None = None,
           event_id: str | None = None, hours: int = 1) -> None:
    """``refunds/create``: the Refund resource of order ``number``."""
    payload = refund_payload(order(number), refund_id or number * 10 + 1, Decimal(amount),
                             placed_at(number) + timedelta(hours=hours))
    body, headers = signed_delivery(payload, topic="refunds/create", shop_domain=SHOP_DOMAIN, secret=SHOP_SECRET,
                                    event_id=event_id)
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200


def release_at(app: Flask, when: datetime) -> int:
    """What the sweeper does at ``when``: release due holds, then run the effects."""
    with transaction(services_of(app).sessions) as session:
        released = holds.release(session, when)
    run_effects()
    return released


def milestone(app: Flask, key: str = KEY) -> CustomerMilestone:
    with services_of(app).sessions() as session:
        return session.execute(
            select(CustomerMilestone)
            .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
            .where(MilestoneDefinition.key == key)
        ).scalar_one()


def effects(app: Flask, kind: str, key: str = KEY) -> list[Effect]:
    with services_of(app).sessions() as session:
        return list(session.execute(
            select(Effect)
            .join(CustomerMilestone, CustomerMilestone.id == Effect.milestone_id)
            .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
            .where(MilestoneDefinition.key == key, Effect.kind == kind)
            .order_by(Effect.id)
        ).scalars())


def one(app: Flask, kind: str, key: str = KEY) -> Effect:
    (effect,) = effects(app, kind, key)
    return effect


__all__ = ["T0"]
