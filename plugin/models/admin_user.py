"""A person who signs in to one workspace's settings page."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from plugin.models.base import Base, Timestamps


class AdminUser(Timestamps, Base):
    """Emails are unique across workspaces, so an email and a password find the workspace."""

    __tablename__ = "admin_users"
    __table_args__ = (Index("ix_admin_users_workspace", "workspace_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    # werkzeug.security's salted scrypt hash; the password itself is never stored.
    password_hash: Mapped[str] = mapped_column(String(255))
    last_sign_in_at: Mapped[datetime | None]
