"""Storing inbound items in the inbox, once each: webhooks and reconciliation share this."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from plugin.db import upsert_statement
from plugin.models import InboxDelivery
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
    # Rows passed as parameters (not baked into VALUES) keep the statement cacheable: it is
    # compiled once per process instead of on every webhook.
    statement = (
        upsert_statement(session, InboxDelivery.__table__)
        .on_conflict_do_nothing(index_elements=["connection_id", "delivery_key"])
        .returning(InboxDelivery.__table__.c.id)
    )
    parameters = rows if len(rows) > 1 else rows[0]
    return sorted(session.execute(statement, parameters).scalars().all())
