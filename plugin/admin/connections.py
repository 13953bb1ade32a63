"""Connecting, changing and disconnecting platforms, with their secrets write-only.

Secrets are encrypted at rest (:mod:`plugin.secrets`) and only ever read back masked. A form
that sends the mask back for a secret means "keep the stored one" (Redash's rule), so an admin
can rename a connection or change its channel without retyping every token.

Disconnecting keeps the row (its orders, inbox and the effects that used it stay readable) but
forgets its secrets and frees its lookup key: webhooks addressed to it are ignored from then on,
and effects still routed to it fail visibly ("the connection was removed") instead of vanishing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from secrets import token_urlsafe
from typing import Any

from marshmallow import ValidationError, fields, missing, validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import Capability, SettingsSchema, as_utc
from connectors.errors import ConnectorError
from connectors.registry import CONNECTORS, connector_class
from plugin import connections
from plugin.admin.errors import Conflict, Invalid, NotFound
from plugin.db import utcnow
from plugin.models import Connection, InboxDelivery
from plugin.secrets import MASK, SecretBox, mask
from plugin.webhook_subscriptions import delivery_url, supports_registration

ACTIVE = "active"
DISCONNECTED = "disconnected"
# Platforms that send us webhooks at /webhooks/<platform>[/<id>] (DESIGN.md, External contract).
INBOUND_WEBHOOKS = frozenset({"shopify", "woocommerce", "hubspot", "usage"})
LOOKUP_MAX = 255  # connections.lookup_key
RECONCILED = "reconcile:"  # delivery keys of the orders reconciliation fetched (plugin.reconcile)


def webhook_url(public_url: str, platform: str, connection_id: uuid.UUID) -> str | None:
    """Where the platform must send to reach this connection, or None when it sends nothing."""
    if platform in INBOUND_WEBHOOKS:
        return delivery_url(public_url, platform, connection_id)
    if platform == "slack":
        return f"{public_url.rstrip('/')}/slack/interactions/{connection_id}"
    return None


def get(session: Session, workspace_id: uuid.UUID, connection_id: uuid.UUID) -> Connection:
    row = session.execute(
        select(Connection).where(
            Connection.id == connection_id,
            Connection.workspace_id == workspace_id,
            Connection.status != DISCONNECTED,
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no connection {connection_id}")
    return row


def every(session: Session, workspace_id: uuid.UUID, *, disconnected: bool = False) -> list[Connection]:
    """The workspace's connections, oldest first; ``disconnected`` ones too when asked (their
    deliveries and effects stay readable)."""
    query = select(Connection).where(Connection.workspace_id == workspace_id)
    if not disconnected:
        query = query.where(Connection.status != DISCONNECTED)
    return list(session.execute(query.order_by(Connection.created_at, Connection.id)).scalars())


def last_webhooks(session: Session, workspace_id: uuid.UUID) -> dict[uuid.UUID, datetime]:
    """When each connection last received a webhook: its newest inbox delivery that the platform
    sent (reconciliation's fetched orders enter the inbox too, but nobody sent them). Newest by
    id, so each lookup walks the primary key backwards and stops at the first match."""
    newest = (
        select(InboxDelivery.received_at)
        .where(InboxDelivery.connection_id == Connection.id, ~InboxDelivery.delivery_key.startswith(RECONCILED))
        .order_by(InboxDelivery.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Connection.id, newest, Connection.last_webhook_at).where(Connection.workspace_id == workspace_id)
    ).tuples()
    latest: dict[uuid.UUID, datetime] = {}
    for connection_id, *seen in rows:
        # as_utc: SQLite (the demo's database) hands datetimes back naive
        times = [as_utc(at) for at in seen if at is not None]
        if times:
            latest[connection_id] = max(times)
    return latest


def registers_webhooks(connection: Connection) -> bool:
    """Whether saving or re-registering this connection asks the platform for its webhooks."""
    return connection.status == ACTIVE and supports_registration(connection.platform)


def record_check(connection: Connection, ok: bool, error: str | None) -> None:
    """Keep the outcome of the last *Test connection* on the connection, for the admin to see."""
    connection.webhook_status = {
        **(connection.webhook_status or {}),
        "check": {"at": utcnow().isoformat(), "ok": ok, "error": error},
    }


def form_values(connection: Connection, box: SecretBox) -> dict[str, Any]:
    """The settings as the admin form writes them: secrets masked, mappings as ``key=value, …``
    (the text the mapping fields read back)."""
    return {key: _as_text(value) for key, value in masked_settings(connection, box).items()}


def _as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in value.items())
    return value


def masked_settings(connection: Connection, box: SecretBox) -> dict[str, Any]:
    secret_names = _schema(connection.platform).secret_fields() if connection.platform in CONNECTORS else frozenset()
    return mask({**(connection.settings or {}), **box.open(connection.secrets)}, secret_names)


def create(
    session: Session, box: SecretBox, workspace_id: uuid.UUID, *, platform: str, name: str, settings: dict[str, Any]
) -> Connection:
    if platform not in CONNECTORS:
        raise Invalid(f"unknown platform {platform!r}", {"platform": [f"one of {', '.join(sorted(CONNECTORS))}"]})
    _no_secret_masks(platform, settings)
    loaded = _load(platform, settings)
    _check_lookup(session, platform, loaded, None)
    try:
        return connections.create_connection(
            session, box, workspace_id=workspace_id, platform=platform, name=name, settings=settings
        )
    except connections.InvalidSettings as exc:  # validated above; kept for a schema with side effects
        raise Invalid("invalid settings", {"settings": exc.errors}) from exc


def update(
    session: Session,
    box: SecretBox,
    connection: Connection,
    *,
    name: str | None = None,
    settings: dict[str, Any] | None = None,
) -> None:
    """Change the name and/or settings. ``settings`` is merged into the stored ones: a key left
    out keeps its value, ``null`` clears an optional one, and a secret sent back as the mask keeps
    the stored secret."""
    if name is not None:
        connection.name = name
    if settings is None:
        return
    schema = _schema(connection.platform)
    secret_names = schema.secret_fields()
    stored = {**(connection.settings or {}), **box.open(connection.secrets)}
    merged = {k: v for k, v in stored.items() if k in schema.fields}
    for key, value in settings.items():
        if key in secret_names and value == MASK:
            continue
        merged[key] = value
    loaded = _load(connection.platform, merged)
    _check_lookup(session, connection.platform, loaded, connection.id)
    if "webhook_secret" in schema.fields and not loaded.get("webhook_secret"):
        loaded["webhook_secret"] = token_urlsafe(32)
    hidden = {k: v for k, v in loaded.items() if k in secret_names and v}
    connection.settings = {k: v for k, v in loaded.items() if k not in secret_names}
    connection.secrets = box.seal(hidden) if hidden else None
    lookup = connections.LOOKUP_SETTING.get(connection.platform)
    connection.lookup_key = str(loaded[lookup]).lower() if lookup else None
    if connection.status == "uninstalled":  # new credentials after a reinstall
        connection.status = ACTIVE
    session.flush()


def disconnect(connection: Connection) -> None:
    connection.status = DISCONNECTED
    connection.lookup_key = None
    connection.secrets = None
    connection.webhook_status = {}


def check(connection: Connection, box: SecretBox) -> tuple[bool, str | None]:
    """Whether the platform accepts the stored credentials: one cheap authenticated call."""
    cls = connector_class(connection.platform)
    if Capability.CHECK_CONNECTION not in cls.capabilities:
        return False, f"{connection.platform} has no connection check: it only sends us webhooks"
    try:
        cls(connections.view_of(connection, box).settings).check_connection()
    except ConnectorError as exc:
        return False, exc.message
    return True, None


def platforms() -> list[dict[str, Any]]:
    """Every platform with its settings form, from the connector's schema metadata."""
    return [
        {
            "platform": name,
            "kind": cls.kind,
            "capabilities": sorted(c.value for c in cls.capabilities),
            "registers_webhooks": supports_registration(name),
            "receives_webhooks": name in INBOUND_WEBHOOKS or name == "slack",
            "fields": [_field(field_name, field) for field_name, field in cls.settings_schema._declared_fields.items()],
        }
        for name, cls in sorted(CONNECTORS.items())
    ]


def _field(name: str, field: fields.Field) -> dict[str, Any]:
    default = field.load_default
    choices = next((v.choices for v in field.validators if isinstance(v, validate.OneOf)), None)
    return {
        "name": name,
        "type": _FIELD_TYPES.get(type(field), "text"),
        "label": field.metadata.get("label", name.replace("_", " ").capitalize()),
        "help": field.metadata.get("help"),
        "secret": bool(field.metadata.get("secret")),
        "required": field.required,
        "default": None if default is missing or callable(default) else default,
        "choices": list(choices) if choices is not None else None,
    }


_FIELD_TYPES: dict[type, str] = {
    fields.String: "text",
    fields.Url: "url",
    fields.Email: "email",
    fields.Integer: "integer",
    fields.Boolean: "boolean",
}


def _schema(platform: str) -> SettingsSchema:
    return connector_class(platform).settings_schema()


def _load(platform: str, settings: dict[str, Any]) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = _schema(platform).load(settings)
    except ValidationError as exc:
        raise Invalid("invalid settings", {"settings": exc.messages_dict}) from exc
    return loaded


def _no_secret_masks(platform: str, settings: dict[str, Any]) -> None:
    """A new connection has no stored secret to keep: the mask is not a value."""
    masked = sorted(k for k in _schema(platform).secret_fields() if settings.get(k) == MASK)
    if masked:
        raise Invalid("invalid settings", {"settings": {k: ["enter the secret itself, not the mask"] for k in masked}})


def _check_lookup(session: Session, platform: str, loaded: dict[str, Any], own_id: uuid.UUID | None) -> None:
    """A shop can be connected once: its webhooks find their connection by its domain."""
    setting = connections.LOOKUP_SETTING.get(platform)
    if setting is None:
        return
    key = str(loaded[setting]).lower()
    if len(key) > LOOKUP_MAX:
        raise Invalid("invalid settings", {"settings": {setting: [f"must be at most {LOOKUP_MAX} characters"]}})
    query = select(Connection.id).where(Connection.platform == platform, Connection.lookup_key == key)
    if own_id is not None:
        query = query.where(Connection.id != own_id)
    if session.scalar(query) is not None:
        raise Conflict(f"{key} is already connected", {"settings": {setting: ["already connected"]}})
