"""The outbox: one row per thing to do in another system, written with its milestone."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db import JSONType, utcnow
from plugin.models.base import Base, BigId

PENDING = "pending"  # due at next_attempt_at
HELD = "held"  # waiting for a review (or a hold period) before it may run
# Why a held effect waits when it is not for the review queue (``hold_reason``; None: review or
# a budget). These are released by plugin.milestones.holds, never by approving the milestone.
CREDIT_HOLD = "credit_hold"  # money reward paid N days after the qualifying order (next_attempt_at)
KILL_SWITCH = "kill_switch"  # the workspace paused money effects
SETTLING = "settling"  # waits for other effects of its milestone to finish (payload["waits_for"])
IN_FLIGHT = "in_flight"  # a worker called the platform; the outcome is not recorded yet
SUCCEEDED = "succeeded"
DEAD = "dead"  # permanent error or out of attempts: visible and retryable in the admin
NO_CONNECTION = "no_connection"  # no connected platform can do it: visible, never dropped
OPEN_TASK = "open_task"  # a task for a person (gift, call): done by hand in the admin
DONE_TASK = "done_task"
CANCELLED = "cancelled"

OPEN_STATUSES = (PENDING, IN_FLIGHT)


class Effect(Base):
    __tablename__ = "effects"
    __table_args__ = (
        Index(
            "ix_effects_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'in_flight')"),
            sqlite_where=text("status IN ('pending', 'in_flight')"),
        ),
        Index("ix_effects_milestone", "milestone_id"),
        Index("ix_effects_workspace_status", "workspace_id", "status"),
        Index(
            "ix_effects_held",
            "next_attempt_at",
            postgresql_where=text("status = 'held' AND hold_reason IS NOT NULL"),
            sqlite_where=text("status = 'held' AND hold_reason IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    milestone_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customer_milestones.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(40))
    connection_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL")
    )
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    in_flight_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    hold_reason: Mapped[str | None] = mapped_column(String(20))
    external_id: Mapped[str | None] = mapped_column(String(255))
    completed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
