"""Storing inbound items in the inbox, once each: webhooks and reconciliation share this."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from plugin.models import InboxDelivery
from plugin.upsert import upsert
from webhooks.base import InboxItem


def store_items(
    session: Session,
    workspace_id: uuid.UUID,
    connection_id: uuid.UUID,
    platform: str,
    items: Sequence[InboxItem],
) -> list[int]:
    """Insert the items, ignoring ones already stored (same delivery key). The new rows' ids,
    in order ([] when every item was a duplicate)."""
    rows = [
        {
            "workspace_id": workspace_id,
            "connection_id": connection_id,
            "platform": platform,
            "delivery_key": item.delivery_key,
            "topic": item.topic,
            "webhook_id": item.webhook_id,
            "headers": dict(item.headers or {}),
            "body": item.body,
            "status": "pending",
        }
        for item in items
    ]
    if not rows:
        return []
    statement = upsert(session, InboxDelivery.__table__, conflict=["connection_id", "delivery_key"], returning=["id"])
    parameters = rows if len(rows) > 1 else rows[0]
    return sorted(session.execute(statement, parameters).scalars().all())
