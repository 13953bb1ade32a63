"""Customers, their identities on each platform, their counters and their order ledger."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db import JSONType, MetricValue, Money
from plugin.models.base import Base, BigId, Timestamps


class Customer(Timestamps, Base):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("workspace_id", "email"),
        Index("ix_customers_since_mmdd", "workspace_id", "since_mmdd"),
        Index("ix_customers_since_dom", "workspace_id", "since_dom"),
        Index("ix_customers_since_local", "workspace_id", "since_local"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    email: Mapped[str | None] = mapped_column(String(320))
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    company_name: Mapped[str | None] = mapped_column(String(255))
    # Earliest of the platform's account creation and the first order (see ledger).
    customer_since: Mapped[datetime | None]
    timezone: Mapped[str | None] = mapped_column(String(64))
    # customer_since as a local date (the customer's timezone, else the workspace's), and its
    # month*100+day and day of month: what the daily anniversary scan finds customers by.
    since_local: Mapped[date | None] = mapped_column(Date)
    since_mmdd: Mapped[int | None] = mapped_column(SmallInteger)
    since_dom: Mapped[int | None] = mapped_column(SmallInteger)
    arr: Mapped[Decimal | None] = mapped_column(Money)
    health_score: Mapped[int | None] = mapped_column(Integer)
    owner_email: Mapped[str | None] = mapped_column(String(320))
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    @property
    def display_name(self) -> str:
        full = " ".join(p for p in (self.first_name, self.last_name) if p)
        return full or self.company_name or self.email or "Customer"


class CustomerIdentity(Base):
    """The customer's id on one connection (Shopify customer id, HubSpot contact id…)."""

    __tablename__ = "customer_identities"
    __table_args__ = (
        UniqueConstraint("connection_id", "external_id"),
        Index("ix_customer_identities_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # No key to workspaces: the connection and the customer pin the workspace (migration 0007).
    workspace_id: Mapped[uuid.UUID]
    connection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))


class CustomerMetric(Base):
    """An incremental counter: ``order_count``, ``lifetime_spend``, ``api_calls``, ``feature.x``…"""

    __tablename__ = "customer_metrics"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Decimal] = mapped_column(MetricValue)
    # When an absolute reading (usage, CRM property) was true, so a late older one is ignored.
    observed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class Order(Timestamps, Base):
    """The ledger row that makes a re-delivered or updated order count once.

    ``paid`` is sticky (an order that was ever paid stays so), ``cancelled`` is sticky, and
    ``refunds`` maps refund ids to amounts, so merging snapshots in any order gives one result.
    ``counted`` is whether the order contributes to the customer's counters right now.
    """

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("connection_id", "external_id"),
        Index("ix_orders_customer_placed", "customer_id", "placed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # No key to workspaces: the connection pins the workspace (migration 0007).
    workspace_id: Mapped[uuid.UUID]
    connection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(Money)
    refunded: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    refunds: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    paid: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    counted: Mapped[bool] = mapped_column(Boolean, default=False)
    has_snapshot: Mapped[bool] = mapped_column(Boolean, default=False)
    placed_at: Mapped[datetime | None]
    source_updated_at: Mapped[datetime | None]
    line_items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
