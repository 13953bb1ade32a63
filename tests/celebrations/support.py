"""A celebration context built the way the runner builds it, from unsaved rows (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from plugin.celebrations.context import celebration_context
from plugin.models import Customer, CustomerMilestone, Effect, MilestoneDefinition, Workspace

ACHIEVED = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)

DEFINITIONS: dict[str, tuple[str, str, dict[str, Any]]] = {
    # key: (type, name, condition)
    "order-1": ("order", "1st Order", {"metric": "order_count", "gte": 1}),
    "order-10": ("order", "10th Order", {"metric": "order_count", "gte": 10}),
    "order-25": ("order", "25th Order", {"metric": "order_count", "gte": 25}),
    "spend-500": ("spend", "$500 Spent", {"metric": "lifetime_spend", "gte": 500}),
    "anniversary-1y": ("time", "1 Year Anniversary", {"tenure": {"years": 1}}),
    "api-calls-1m": ("usage", "1 Million API Calls", {"metric": "api_calls", "threshold": 1000000}),
}


def credit_effect(amount: str = "5.00", status: str = "succeeded", effect_id: int = 3, **result: Any) -> Effect:
    request = {"idempotency_key": "m", "customer_external_id": "7001", "amount": {"amount": amount, "currency": "USD"},
               "reason": "10th Order (10)", "expires_at": None, "notify": True, "customer_email": "alice@example.com"}
    payload: dict[str, Any] = {"action": {"kind": "store_credit", "amount": amount}, "request": request}
    if result:
        payload["result"] = result
    return Effect(id=effect_id, kind="store_credit", status=status, payload=payload)


def discount_effect(status: str = "succeeded", code: str = "YEAR1-3F9A2C", effect_id: int = 4) -> Effect:
    request = {"idempotency_key": "m", "customer_external_id": "7001", "customer_email": "alice@example.com",
               "code": code, "title": "1 Year Anniversary — thank you", "starts_at": "2026-01-06T09:00:00+00:00",
               "ends_at": "2026-01-13T09:00:00+00:00", "percentage": "20", "amount": None}
    return Effect(id=effect_id, kind="discount_code", status=status,
                  payload={"action": {"kind": "discount_code"}, "request": request, "result": {"code": code}})


def tag_effect(tag: str = "VIP", status: str = "succeeded", effect_id: int = 5) -> Effect:
    request = {"idempotency_key": "m", "customer_external_id": "7001", "customer_email": None, "tags": [tag]}
    return Effect(id=effect_id, kind="customer_tag", status=status, payload={"request": request})


def make_context(
    key: str = "order-10",
    *,
    value: str = "10",
    siblings: list[Effect] | None = None,
    first_name: str | None = "Alice",
    company_name: str | None = None,
    metrics: dict[str, Decimal] | None = None,
    line_items: list[list[dict[str, Any]]] | None = None,
    customer_since: datetime | None = ACHIEVED - timedelta(days=820),
    arr: Decimal | None = None,
    health_score: int | None = None,
) -> dict[str, Any]:
    kind, name, condition = DEFINITIONS[key]
    return celebration_context(
        workspace=Workspace(name="Red Hill Fresh", currency="USD", timezone="Australia/Melbourne", settings={}),
        customer=Customer(email="alice@example.com", first_name=first_name, last_name="Nguyen",
                          company_name=company_name, customer_since=customer_since, arr=arr, health_score=health_score),
        milestone=CustomerMilestone(milestone_name=name, milestone_type=kind, milestone_value=value,
                                    achieved_at=ACHIEVED, occurrence=1, time_to_milestone=timedelta(days=61)),
        definition=MilestoneDefinition(key=key, type=kind, name=name, condition=condition),
        metrics=metrics if metrics is not None else {"order_count": Decimal(10), "lifetime_spend": Decimal("1234.50")},
        line_items_per_order=line_items if line_items is not None else [
            [{"title": "Seasonal veg box", "quantity": 1}, {"title": "Free-range eggs", "quantity": 2}],
            [{"title": "Sourdough", "quantity": 1}, {"title": "Free-range eggs", "quantity": 1}],
            [{"title": "Seasonal veg box", "quantity": 1}, {"title": "Kale", "quantity": 1}],
        ],
        siblings=siblings or [],
    )
