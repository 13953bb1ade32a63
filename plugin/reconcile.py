"""Periodic reconciliation: what the platforms changed that their webhooks never told us.

Shopify drops a subscription's deliveries after 8 failed retries; WooCommerce never retries
and disables a webhook after 5 failures. Every few minutes each store connection is asked
for the orders changed since its watermark (minus an overlap for clock skew and slow
commits); they enter the inbox like deliveries and take the same path, so an order already
seen merges into the ledger as a no-op and a lost one is counted — once. The same pass
re-registers webhook subscriptions that were deleted or disabled, and records both outcomes
on the connection for the admin.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from connectors.base import Capability
from connectors.errors import ConnectorError
from connectors.registry import CONNECTORS, connector_class
from plugin import connections, webhook_subscriptions
from plugin.db import utcnow
from plugin.inbox import store_items
from plugin.models import Connection
from plugin.services import Services
from webhooks.base import InboxItem

log = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=10)
FIRST_LOOKBACK = timedelta(days=1)
DEFAULT_EVERY = timedelta(minutes=15)


@dataclass(frozen=True)
class Reconciled:
    connection_id: uuid.UUID
    fetched: int
    new: int
    error: str | None = None


def reconcilable(platform: str) -> bool:
    return platform in CONNECTORS and Capability.FETCH_ORDERS in CONNECTORS[platform].capabilities


def reconcile_connection(services: Services, connection_id: uuid.UUID, now: datetime | None = None) -> Reconciled:
    now = now or utcnow()
    with services.sessions() as session:
        row = session.get(Connection, connection_id)
        if row is None or row.status != "active" or not reconcilable(row.platform):
            return Reconciled(connection_id, 0, 0, "not a connection that can be reconciled")
        view = connections.view_of(row, services.secrets)
        state = dict((row.webhook_status or {}).get("reconcile") or {})
    watermark = datetime.fromisoformat(state["watermark"]) if state.get("watermark") else None
    since = watermark - OVERLAP if watermark else now - FIRST_LOOKBACK
    try:
        fetched = connector_class(view.platform)(view.settings).changed_orders(since)
    except ConnectorError as exc:
        _record(services, connection_id, {**state, "last_run": now.isoformat(), "error": exc.message})
        return Reconciled(connection_id, 0, 0, exc.message)
    items = [
        InboxItem(
            topic=order.topic,
            delivery_key=f"reconcile:{order.external_id}:{order.version}"[:255],
            body=json.dumps(order.payload, separators=(",", ":")),
        )
        for order in fetched
    ]
    with services.sessions() as session:
        new_ids = store_items(session, view.workspace_id, view.id, view.platform, items)
        session.commit()
    _record(
        services,
        connection_id,
        {"watermark": now.isoformat(), "last_run": now.isoformat(), "fetched": len(fetched), "new": len(new_ids),
         "error": None},
    )
    if new_ids:
        from plugin.jobs.drain import drain_inbox

        services.queue.nudge(drain_inbox, "inbox", job_suffix=f"reconcile-{new_ids[0]}")
    if webhook_subscriptions.supports_registration(view.platform):
        webhook_subscriptions.register(services, connection_id)  # re-creates deleted/disabled ones
    log.info("reconciled %s: %d orders changed since %s, %d new to us", view.name, len(fetched), since, len(new_ids))
    return Reconciled(connection_id, len(fetched), len(new_ids))


def _record(services: Services, connection_id: uuid.UUID, state: dict[str, object]) -> None:
    with services.sessions() as session:
        row = session.get(Connection, connection_id)
        if row is not None:
            row.webhook_status = {**(row.webhook_status or {}), "reconcile": state}
            session.commit()


def reconcile_due(services: Services, now: datetime | None = None, every: timedelta = DEFAULT_EVERY) -> list[Reconciled]:
    """Every active store connection whose last reconciliation is older than ``every``."""
    now = now or utcnow()
    with services.sessions() as session:
        rows = session.execute(select(Connection.id, Connection.platform, Connection.webhook_status)
                               .where(Connection.status == "active")).all()
    due = []
    for connection_id, platform, status in rows:
        last = ((status or {}).get("reconcile") or {}).get("last_run")
        if reconcilable(platform) and (last is None or now - datetime.fromisoformat(last) >= every):
            due.append(connection_id)
    return [reconcile_connection(services, connection_id, now) for connection_id in due]
