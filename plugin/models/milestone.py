"""PRD-114's two tables, column for column, plus what the flow needs (workspace, key, occurrence)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, Interval, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db import JSONType, utcnow
from plugin.models.base import Base, BigId, Timestamps


class MilestoneDefinition(Timestamps, Base):
    __tablename__ = "milestone_definitions"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    # PRD-114 columns
    type: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(255))
    condition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    celebration_template: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # what the flow needs
    description: Mapped[str | None] = mapped_column(Text)
    recognition: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    requires_review: Mapped[bool] = mapped_column(Boolean, default=False)
    escalate: Mapped[bool] = mapped_column(Boolean, default=False)
    significant: Mapped[bool] = mapped_column(Boolean, default=False)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    # What a refund or cancellation that undoes the milestone does (plugin.milestones.reversals):
    # keep | claw_back | revoke; and how many days money rewards wait after the qualifying order.
    refund_policy: Mapped[str] = mapped_column(String(20), default="keep", server_default="keep")
    credit_hold_days: Mapped[int | None] = mapped_column(Integer)


class CustomerMilestone(Base):
    """One customer reaching one definition once (``occurrence`` counts repeats: 2nd year…).

    ``status``: ``active`` (celebrating: effects queued), ``historical`` (passed before the
    definition existed or before installation: recorded, never rewarded), ``pending_review``
    (rewards held until an admin approves), ``rejected``, ``revoked`` (a refund or cancellation
    undid it and its definition's refund policy is *revoke*). ``order_id`` is the order that
    qualified the customer; ``reversed_at`` when a refund or cancellation took them back below it.
    """

    __tablename__ = "customer_milestones"
    __table_args__ = (
        UniqueConstraint("customer_id", "definition_id", "occurrence"),
        Index("ix_customer_milestones_workspace_achieved", "workspace_id", "achieved_at"),
    )

    # PRD-114 columns
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    milestone_type: Mapped[str] = mapped_column(String(50))
    milestone_name: Mapped[str] = mapped_column(String(255))
    milestone_value: Mapped[str | None] = mapped_column(Text)
    achieved_at: Mapped[datetime] = mapped_column(default=utcnow)
    celebrated: Mapped[bool] = mapped_column(Boolean, default=False)
    celebrated_at: Mapped[datetime | None]
    celebration_type: Mapped[str | None] = mapped_column(String(50))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # what the flow needs; no key to workspaces: the customer pins the workspace (migration 0007)
    workspace_id: Mapped[uuid.UUID]
    definition_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("milestone_definitions.id", ondelete="CASCADE")
    )
    occurrence: Mapped[int] = mapped_column(Integer, default=1)
    time_to_milestone: Mapped[timedelta | None] = mapped_column(Interval)
    status: Mapped[str] = mapped_column(String(20), default="active")
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    order_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orders.id", ondelete="SET NULL"))
    reversed_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ScanRun(Base):
    """One daily time-milestone scan of one workspace: reruns and catch-up know what is done."""

    __tablename__ = "scan_runs"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(default=utcnow)
    candidates: Mapped[int] = mapped_column(Integer, default=0)
    awarded: Mapped[int] = mapped_column(Integer, default=0)
