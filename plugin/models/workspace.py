"""A workspace is one business (its store, CRM and Slack); every other row belongs to one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db import JSONType
from plugin.models.base import Base, Timestamps


class Workspace(Timestamps, Base):
    __tablename__ = "workspaces"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(255))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    # sha256 hex of the admin bearer token; the token itself is never stored.
    admin_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Connection(Timestamps, Base):
    """One connected platform account: a Shopify shop, a HubSpot portal, a Slack workspace…

    ``settings`` holds the non-secret settings; ``secrets`` is a Fernet token of the secret ones.
    ``lookup_key`` is how an inbound webhook finds its connection when the URL does not carry
    the id (Shopify: the shop domain).
    """

    __tablename__ = "connections"
    __table_args__ = (
        UniqueConstraint("platform", "lookup_key"),
        Index("ix_connections_workspace", "workspace_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    lookup_key: Mapped[str | None] = mapped_column(String(255))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    secrets: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="active")
    webhook_status: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_webhook_at: Mapped[datetime | None]
