"""Helpers shared by tests: sending signed Shopify deliveries and reading back results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select

from plugin.demo.shopify_payloads import SampleCustomer, SampleOrder, order_payload, signed_delivery
from plugin.services import Services

SHOP_DOMAIN = "red-hill-fresh.myshopify.com"
SHOP_SECRET = "shpss_test_secret"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

ALICE = SampleCustomer(
    id=7001, email="alice@example.com", first_name="Alice", last_name="Nguyen", created_at=T0 - timedelta(days=30)
)


def order(number: int, customer: SampleCustomer = ALICE, total: str = "40.00", **kwargs: Any) -> SampleOrder:
    return SampleOrder(
        id=900000 + number,
        customer=customer,
        total=Decimal(total),
        created_at=T0 + timedelta(days=number),
        line_items=[(501, "Seasonal veg box", 1, Decimal(total))],
        **kwargs,
    )


def post_order(
    client: FlaskClient,
    sample: SampleOrder,
    topic: str = "orders/paid",
    *,
    event_id: str | None = None,
    secret: str = SHOP_SECRET,
    **payload_kwargs: Any,
) -> Any:
    payload = order_payload(sample, **payload_kwargs)
    body, headers = signed_delivery(payload, topic=topic, shop_domain=SHOP_DOMAIN, secret=secret, event_id=event_id)
    return client.post("/webhooks/shopify", data=body, headers=headers)


def count(services: Services, model: Any, *where: Any) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def metric(services: Services, email: str, name: str) -> Decimal:
    from plugin.models import Customer, CustomerMetric

    with services.sessions() as session:
        value = session.scalar(
            select(CustomerMetric.value)
            .join(Customer, Customer.id == CustomerMetric.customer_id)
            .where(Customer.email == email, CustomerMetric.metric == name)
        )
    return Decimal(value) if value is not None else Decimal(0)


def milestone_keys(services: Services, email: str | None = None) -> list[tuple[str, int]]:
    from plugin.models import Customer, CustomerMilestone, MilestoneDefinition

    query = (
        select(MilestoneDefinition.key, CustomerMilestone.occurrence)
        .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
        .join(Customer, Customer.id == CustomerMilestone.customer_id)
        .order_by(MilestoneDefinition.key, CustomerMilestone.occurrence)
    )
    if email:
        query = query.where(Customer.email == email)
    with services.sessions() as session:
        return [(k, o) for k, o in session.execute(query).all()]

OTHER_TOKEN = "other-workspace-token"  # the admin token of the other_workspace fixture
