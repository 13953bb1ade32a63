"""Helpers for the admin API tests: the tokens, and rows built directly with the models.

Rows are built with the models (not through webhooks) where a test needs a known dataset —
a dashboard month, a review queue — so each figure can be checked by hand.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.db import transaction
from plugin.models import Customer, CustomerMetric, CustomerMilestone, Effect, MilestoneDefinition
from tests.conftest import ADMIN_TOKEN, services_of
from tests.support import OTHER_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

OTHER_AUTH = {"Authorization": f"Bearer {OTHER_TOKEN}"}
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


class Rows:
    """Builds customers, milestones and effects in one workspace, committed at once."""

    def __init__(self, session: Session, workspace_id: uuid.UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    def definition(self, key: str) -> MilestoneDefinition:
        return self.session.execute(
            select(MilestoneDefinition).where(
                MilestoneDefinition.workspace_id == self.workspace_id, MilestoneDefinition.key == key
            )
        ).scalar_one()

    def customer(self, email: str, metrics: dict[str, str] | None = None, *, changed_at: datetime = NOW,
                 **values: Any) -> Customer:
        row = Customer(id=uuid.uuid4(), workspace_id=self.workspace_id, email=email, properties={}, **values)
        self.session.add(row)
        self.session.flush()
        for name, value in (metrics or {}).items():
            self.session.add(
                CustomerMetric(customer_id=row.id, metric=name, value=Decimal(value), updated_at=changed_at)
            )
        self.session.flush()
        return row

    def milestone(self, customer: Customer, key: str, *, status: str = "active", achieved_at: datetime = NOW,
                  occurrence: int = 1, **values: Any) -> CustomerMilestone:
        definition = self.definition(key)
        row = CustomerMilestone(
            id=uuid.uuid4(), workspace_id=self.workspace_id, customer_id=customer.id, definition_id=definition.id,
            milestone_type=definition.type, milestone_name=definition.name, milestone_value=key.split("-")[-1],
            achieved_at=achieved_at, occurrence=occurrence, status=status, context={}, **values,
        )
        self.session.add(row)
        self.session.flush()
        return row

    def effect(self, milestone: CustomerMilestone, kind: str, status: str, payload: dict[str, Any] | None = None,
               **values: Any) -> Effect:
        row = Effect(
            workspace_id=self.workspace_id, milestone_id=milestone.id, kind=kind, status=status,
            idempotency_key=f"{milestone.id}:{kind}:{uuid.uuid4().hex[:8]}", payload=payload or {"action": {"kind": kind}},
            **values,
        )
        self.session.add(row)
        self.session.flush()
        return row


def credit(amount: str, currency: str = "USD") -> dict[str, Any]:
    """A store_credit effect's payload as planning writes it (the request the connector got)."""
    return {"action": {"kind": "store_credit", "amount": amount},
            "request": {"amount": {"amount": amount, "currency": currency}}}


def days(n: float) -> timedelta:
    return timedelta(days=n)


def build(app: Any, workspace_id: uuid.UUID, builder: Callable[[Rows], Any]) -> Any:
    """Run ``builder(Rows(...))`` in one transaction and return what it returns (the ``build``
    fixture of ``tests/conftest.py`` calls it with the test's workspace)."""
    with transaction(services_of(app).sessions) as session:
        return builder(Rows(session, workspace_id))
