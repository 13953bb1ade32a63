"""Storing inbound items in the inbox, once each: webhooks and reconciliation share this.

:func:`store_items` writes in the caller's session (reconciliation, tests). :func:`receive` is
the webhook path's: on PostgreSQL one INSERT through the driver itself, on a server thread's own
autocommit connection (:class:`plugin.db.ThreadConnections`), for the rows of every request
waiting at that moment (:mod:`plugin.group_commit`) — SQLAlchemy's execution of that statement
cost more CPU than the database's work of storing the row, and each round trip's wake-ups more
than both, on the one path that must keep up with a platform's bursts. Both
write the same row (``tests/web/test_inbox_rows.py`` compares them).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb
from sqlalchemy.orm import Session

from plugin.db import ThreadConnections, utcnow
from plugin.group_commit import GroupCommit
from plugin.models import InboxDelivery
from plugin.models.delivery import PENDING
from plugin.upsert import upsert
from webhooks.base import InboxItem

if TYPE_CHECKING:
    from plugin.connections import ConnectionView
    from plugin.services import Services

# The columns a stored item sets (the others stay NULL until the drain: claimed, processed, error).
COLUMNS = ("workspace_id", "connection_id", "platform", "delivery_key", "topic", "webhook_id", "headers", "body",
           "received_at", "status", "attempts")
_VARYING = COLUMNS[:-2]  # status and attempts are the same for every new row: literals, not parameters
_POSTGRES_INSERT = ("INSERT INTO inbox ({columns}) VALUES {rows} "
                    "ON CONFLICT (connection_id, delivery_key) DO NOTHING RETURNING id, connection_id, delivery_key")
_POSTGRES_ROW = "(" + ", ".join(["%s"] * len(_VARYING)) + f", '{PENDING}', 0)"

Rows = list[dict[str, Any]]


def receive(services: Services, connection: ConnectionView, items: Sequence[InboxItem]) -> list[int]:
    """Store a webhook's items, committed when this returns; the new rows' ids, in order."""
    rows = _rows(connection.workspace_id, connection.id, connection.platform, items)
    if not rows:
        return []
    if services.webhook_inbox is None:  # the embedded SQLite
        with services.autocommit_sessions() as session:
            return _insert(session, rows)
    return services.webhook_inbox.submit(rows)


def group_writer(connections: ThreadConnections) -> GroupCommit[Rows, list[int]]:
    """The webhook path's writer on PostgreSQL: the rows of every request that arrived while the
    previous INSERT was running go in one INSERT (:mod:`plugin.group_commit`)."""
    return GroupCommit(partial(insert_requests, connections))


def insert_requests(connections: ThreadConnections, requests: list[Rows]) -> list[list[int]]:
    """One INSERT of several requests' rows; each request's new ids, in order."""
    rows = [row for request in requests for row in request]
    statement = _postgres_insert(len(rows))
    values = [Jsonb(row[name]) if name == "headers" else row[name] for row in rows for name in _VARYING]
    with connections.connection() as driver, driver.cursor() as cursor:
        cursor.execute(statement, values)
        stored = {(connection_id, key): new_id for new_id, connection_id, key in cursor.fetchall()}
    # A key sent twice in one batch (a platform's retry racing the original) was stored once:
    # the first request to bring it gets the row, the other one hears "duplicate".
    return [sorted(new_id for row in request
                   if (new_id := stored.pop((row["connection_id"], row["delivery_key"]), None)) is not None)
            for request in requests]


@lru_cache(maxsize=64)
def _postgres_insert(rows: int) -> str:
    return _POSTGRES_INSERT.format(columns=", ".join(COLUMNS), rows=", ".join([_POSTGRES_ROW] * rows))


def store_items(
    session: Session,
    workspace_id: uuid.UUID,
    connection_id: uuid.UUID,
    platform: str,
    items: Sequence[InboxItem],
) -> list[int]:
    """Insert the items, ignoring ones already stored (same delivery key). The new rows' ids,
    in order ([] when every item was a duplicate)."""
    rows = _rows(workspace_id, connection_id, platform, items)
    return _insert(session, rows) if rows else []


def _rows(workspace_id: uuid.UUID, connection_id: uuid.UUID, platform: str,
          items: Sequence[InboxItem]) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {
            "workspace_id": workspace_id,
            "connection_id": connection_id,
            "platform": platform,
            "delivery_key": item.delivery_key,
            "topic": item.topic,
            "webhook_id": item.webhook_id,
            "headers": dict(item.headers or {}),
            "body": item.body,
            "status": PENDING,
            "attempts": 0,
            "received_at": now,
        }
        for item in items
    ]


def _insert(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    statement = upsert(session, InboxDelivery.__table__, conflict=["connection_id", "delivery_key"], returning=["id"])
    parameters = rows if len(rows) > 1 else rows[0]
    return sorted(session.execute(statement, parameters).scalars().all())
