"""One history import of one connection: where it got to, so an interrupted run resumes there."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db import JSONType, utcnow
from plugin.models.base import Base

RUNNING = "running"  # importing pages (or killed while it was: the next run resumes it)
FAILED = "failed"  # stopped by an error, recorded in ``error``; the next run resumes it
FINISHED = "finished"
ABANDONED = "abandoned"  # replaced by a run started with --restart


class BackfillRun(Base):
    __tablename__ = "backfill_runs"
    __table_args__ = (Index("ix_backfill_runs_connection_status", "connection_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    connection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(20))  # shopify, woocommerce, csv
    mode: Mapped[str] = mapped_column(String(20))  # record, recent, all
    days: Mapped[int | None] = mapped_column(Integer)  # the N of "recent"
    file: Mapped[str | None] = mapped_column(Text)  # the CSV file a csv run reads
    status: Mapped[str] = mapped_column(String(20), default=RUNNING)
    # The source's resume point after the last committed page ({"stage": "orders", "after": …}).
    cursor: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
