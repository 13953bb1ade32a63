"""Reading connections with their secrets, for the inbound path and the effect runner.

The inbound path looks a connection up on every webhook; a short per-process cache keeps that
off the database for bursts. Anything that changes a connection calls :func:`forget`.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from secrets import token_urlsafe
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from plugin.models import Connection
from plugin.secrets import SecretBox

CACHE_SECONDS = 10.0


@dataclass(frozen=True)
class ConnectionView:
    """A connection with its settings and decrypted secrets merged, detached from any session."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    platform: str
    name: str
    status: str
    settings: dict[str, Any]

    def secret_values(self, names: tuple[str, ...]) -> list[str]:
        return [str(self.settings[n]) for n in names if self.settings.get(n)]


def view_of(connection: Connection, box: SecretBox) -> ConnectionView:
    return ConnectionView(
        id=connection.id,
        workspace_id=connection.workspace_id,
        platform=connection.platform,
        name=connection.name,
        status=connection.status,
        settings={**(connection.settings or {}), **box.open(connection.secrets)},
    )


_cache: dict[tuple[str, str], tuple[float, ConnectionView | None]] = {}
_lock = threading.Lock()


def find_inbound(
    sessions: sessionmaker[Session], box: SecretBox, platform: str, *, connection_id: str | None,
    lookup_key: str | None,
) -> ConnectionView | None:
    """The connection an inbound request names, from the cache or (opening a session only then)
    the database."""
    cache_key = (platform, f"id:{connection_id}" if connection_id else f"key:{lookup_key}")
    now = time.monotonic()
    with _lock:
        hit = _cache.get(cache_key)
    if hit and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    query = select(Connection).where(Connection.platform == platform)
    if connection_id:
        try:
            query = query.where(Connection.id == uuid.UUID(connection_id))
        except ValueError:
            return None
    elif lookup_key:
        query = query.where(Connection.lookup_key == lookup_key)
    else:
        return None
    with sessions() as session:
        row = session.execute(query).scalar_one_or_none()
        found = view_of(row, box) if row is not None else None
    with _lock:
        _cache[cache_key] = (now, found)
    return found


def forget() -> None:
    with _lock:
        _cache.clear()


class InvalidSettings(ValueError):
    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__(f"invalid connection settings: {errors}")
        self.errors = errors


LOOKUP_SETTING = {"shopify": "shop_domain"}


def create_connection(
    session: Session,
    box: SecretBox,
    *,
    workspace_id: uuid.UUID,
    platform: str,
    name: str,
    settings: dict[str, Any],
) -> Connection:
    """Validate settings with the connector's schema, encrypt the secret ones, store the rest."""
    from marshmallow import ValidationError

    from connectors.registry import connector_class

    cls = connector_class(platform)
    schema = cls.settings_schema()
    try:
        loaded = schema.load(settings)
    except ValidationError as exc:
        raise InvalidSettings(exc.messages_dict) from exc
    if "webhook_secret" in schema.fields and not loaded.get("webhook_secret"):
        # We choose the secret when we register the platform's webhooks ourselves (WooCommerce).
        loaded["webhook_secret"] = token_urlsafe(32)
    secret_names = schema.secret_fields()
    public = {k: v for k, v in loaded.items() if k not in secret_names}
    hidden = {k: v for k, v in loaded.items() if k in secret_names and v}
    lookup_setting = LOOKUP_SETTING.get(platform)
    connection = Connection(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        platform=platform,
        name=name,
        lookup_key=str(loaded[lookup_setting]).lower() if lookup_setting else None,
        settings=public,
        secrets=box.seal(hidden) if hidden else None,
        status="active",
        webhook_status={},
    )
    session.add(connection)
    session.flush()
    forget()
    return connection
