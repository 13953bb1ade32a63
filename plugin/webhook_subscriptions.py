"""Making each platform deliver the topics ``plugin.json`` lists to this deployment, and checking it.

Runs when a connection is saved and on demand ("Re-register" in the admin, ``milestones
webhooks``); the connector does the platform's calls idempotently, this module decides the
address and topics and records the outcome on the connection for the admin to see.
"""

from __future__ import annotations

import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from connectors.base import Capability
from connectors.errors import ConnectorError
from connectors.registry import connector_class
from plugin import connections
from plugin.db import utcnow
from plugin.models import Connection
from plugin.services import Services

MANIFEST = Path(__file__).resolve().parent.parent / "plugin.json"


@cache
def manifest() -> dict[str, Any]:
    return dict(json.loads(MANIFEST.read_text()))


def topics_for(platform: str) -> list[str]:
    return list(manifest().get("webhooks", {}).get(platform, {}).get("topics", []))


def delivery_url(public_url: str, platform: str, connection_id: uuid.UUID) -> str:
    """Shopify finds its connection by shop domain; every other platform by id in the URL."""
    base = public_url.rstrip("/")
    return f"{base}/webhooks/shopify" if platform == "shopify" else f"{base}/webhooks/{platform}/{connection_id}"


def supports_registration(platform: str) -> bool:
    return Capability.REGISTER_WEBHOOKS in connector_class(platform).capabilities


def _run(services: Services, connection_id: uuid.UUID, register: bool) -> dict[str, str]:
    with services.sessions() as session:
        row = session.get(Connection, connection_id)
        if row is None:
            raise LookupError(f"no connection {connection_id}")
        view = connections.view_of(row, services.secrets)
        if not supports_registration(view.platform):
            return {}
        connector = connector_class(view.platform)(view.settings)
        url = delivery_url(services.settings.public_url, view.platform, view.id)
        topics = topics_for(view.platform)
        try:
            status = (connector.register_webhooks if register else connector.webhook_status)(url, topics)
            row.last_error = None
        except ConnectorError as exc:
            status = {topic: f"error: {exc.message}" for topic in topics}
            row.last_error = exc.message
        row.webhook_status = {
            **(row.webhook_status or {}), "checked_at": utcnow().isoformat(), "address": url, "topics": status,
        }
        session.commit()
        return status


def register(services: Services, connection_id: uuid.UUID) -> dict[str, str]:
    """Register every missing topic; the per-topic outcome is also stored on the connection."""
    return _run(services, connection_id, register=True)


def check(services: Services, connection_id: uuid.UUID) -> dict[str, str]:
    """Per topic, whether the platform still delivers it here (reconciliation and the admin)."""
    return _run(services, connection_id, register=False)
