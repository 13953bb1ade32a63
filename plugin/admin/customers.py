"""One customer as an admin sees them: counters, account context, favourites, orders, milestones."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.admin import milestones
from plugin.admin.errors import NotFound
from plugin.celebrations.context import favourite_products
from plugin.models import Connection, Customer, CustomerIdentity, CustomerMetric, Order, Workspace

RECENT_ORDERS = 8
MILESTONES_SHOWN = 200


@dataclass
class Profile:
    customer: Customer
    metrics: dict[str, Decimal]
    favourites: list[str]
    orders: int
    recent_orders: list[Order]
    platforms: list[str]
    milestones: list[milestones.FeedRow]
    opt_outs: list[str]


def get(session: Session, workspace_id: uuid.UUID, customer_id: uuid.UUID) -> Customer:
    customer = session.execute(
        select(Customer).where(Customer.id == customer_id, Customer.workspace_id == workspace_id)
    ).scalar_one_or_none()
    if customer is None:
        raise NotFound(f"no customer {customer_id}")
    return customer


def profile(session: Session, workspace: Workspace, customer_id: uuid.UUID) -> Profile:
    customer = get(session, workspace.id, customer_id)
    counted = (Order.customer_id == customer.id, Order.counted.is_(True))
    recent = list(
        session.execute(select(Order).where(*counted).order_by(Order.placed_at.desc().nulls_last(), Order.id.desc())
                        .limit(RECENT_ORDERS)).scalars()
    )
    platforms = sorted(set(session.execute(
        select(Connection.platform).join(CustomerIdentity, CustomerIdentity.connection_id == Connection.id)
        .where(CustomerIdentity.customer_id == customer.id)
    ).scalars()))
    rows, _more = milestones.feed(session, workspace, milestones.FeedFilters(customer_id=customer.id),
                                  per_page=MILESTONES_SHOWN)
    opt_out = (customer.properties or {}).get("opt_out") or []
    return Profile(
        customer=customer,
        metrics=metrics_of(session, [customer.id])[customer.id],
        favourites=favourites_of(session, [customer.id])[customer.id],
        orders=int(session.scalar(select(func.count()).select_from(Order).where(*counted)) or 0),
        recent_orders=recent,
        platforms=platforms,
        milestones=rows,
        opt_outs=[str(o) for o in opt_out] if isinstance(opt_out, list) else [],
    )


def metrics_of(session: Session, customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Decimal]]:
    found: dict[uuid.UUID, dict[str, Decimal]] = defaultdict(dict)
    if customer_ids:
        for customer_id, metric, value in session.execute(
            select(CustomerMetric.customer_id, CustomerMetric.metric, CustomerMetric.value)
            .where(CustomerMetric.customer_id.in_(customer_ids))
        ):
            found[customer_id][metric] = Decimal(value)
    return found


def favourites_of(session: Session, customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """What each customer buys most, from the line items of their counted orders (RHF's
    "favourite products"); empty where the ledger holds no line items (usage-only accounts)."""
    items: dict[uuid.UUID, list[list[dict[str, Any]]]] = defaultdict(list)
    if customer_ids:
        for customer_id, line_items in session.execute(
            select(Order.customer_id, Order.line_items)
            .where(Order.customer_id.in_(customer_ids), Order.counted.is_(True))
            .order_by(Order.placed_at, Order.id)
        ):
            items[customer_id].append(list(line_items or []))
    return defaultdict(list, {customer_id: favourite_products(lists) for customer_id, lists in items.items()})
