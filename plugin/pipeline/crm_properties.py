"""CRM properties, mapped per connection to metrics and customer context.

A CRM's webhook source reports a property change as it is, under the property's own name:
``MetricChanged("crm.<property>")`` for a number or a flag, ``CustomerUpdated(properties=
{"crm.<property>": text})`` for text. What the property means in this workspace is the admin's
choice, the connection's ``property_map`` setting (``{"annualrevenue": "arr",
"api_calls_total": "metric:api_calls", …}``, parsed by the connector's own settings field), and
this module turns the raw readings into what the rest of the pipeline understands:

- ``metric:<name>``  → ``MetricChanged(<name>)``, same value and time (milestones read it);
- ``arr``, ``health_score``, ``customer_since``, ``owner_email`` → ``CustomerUpdated`` context;
- ``owner_id``       → ``owner_email`` through the connection's ``owner_emails`` setting.

An unmapped property, or a value its target cannot take, is dropped. The mapping is read when the
batch runs — one query, only for batches that carry CRM readings — so the inbox keeps what the
platform sent and a corrected mapping applies to replayed deliveries too.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.registry import CONNECTORS
from plugin.events import CanonicalEvent, CustomerUpdated, MetricChanged
from plugin.models import Connection
from plugin.pipeline.normalize import Parsed

log = logging.getLogger(__name__)

PREFIX = "crm."
METRIC_TARGET = "metric:"
CENTS = Decimal("0.01")
MAX_ARR = Decimal(10) ** 16  # customers.arr is NUMERIC(18, 2)


@dataclass(frozen=True)
class PropertyMapping:
    targets: dict[str, str]
    owner_emails: dict[str, str]


NOTHING = PropertyMapping({}, {})


def apply(session: Session, parsed: Parsed) -> Parsed:
    """``parsed`` with every CRM reading replaced by the events its connection maps it to."""
    connection_ids = {d.connection_id for d, events in parsed if any(_is_reading(e) for e in events)}
    if not connection_ids:
        return parsed
    mappings = _load(session, connection_ids)
    return [
        (delivery, [out for event in events for out in translate(event, mappings.get(delivery.connection_id, NOTHING))])
        for delivery, events in parsed
    ]


def translate(event: CanonicalEvent, mapping: PropertyMapping) -> list[CanonicalEvent]:
    """The events one canonical event stands for under ``mapping`` (itself, if not a CRM reading)."""
    if isinstance(event, MetricChanged) and event.metric.startswith(PREFIX):
        mapped = mapping.targets.get(event.metric[len(PREFIX) :])
        if mapped is None or event.value is None:
            return []
        if mapped.startswith(METRIC_TARGET):
            return [replace(event, metric=mapped[len(METRIC_TARGET) :])]
        context = _context(mapped, event.value, mapping)
        return [CustomerUpdated(customer=event.customer, **context)] if context else []
    if isinstance(event, CustomerUpdated) and any(key.startswith(PREFIX) for key in event.properties):
        fields: dict[str, Any] = {}
        kept = {}
        for key, value in event.properties.items():
            if not key.startswith(PREFIX):
                kept[key] = value
                continue
            target = mapping.targets.get(key[len(PREFIX) :])
            if target is not None and not target.startswith(METRIC_TARGET):
                fields.update(_context(target, value, mapping))
        return [replace(event, properties=kept, **fields)]
    return [event]


def _is_reading(event: CanonicalEvent) -> bool:
    if isinstance(event, MetricChanged):
        return event.metric.startswith(PREFIX)
    return isinstance(event, CustomerUpdated) and any(key.startswith(PREFIX) for key in event.properties)


def _context(target: str, value: Any, mapping: PropertyMapping) -> dict[str, Any]:
    """``{field: value}`` for CustomerUpdated, or {} when the value does not fit the target."""
    if isinstance(value, bool):
        return {}
    if target == "arr":
        amount = _decimal(value)
        return {"arr": amount.quantize(CENTS)} if amount is not None and 0 <= amount < MAX_ARR else {}
    if target == "health_score":
        score = _decimal(value)
        return {"health_score": int(score.to_integral_value())} if score is not None and abs(score) < 10**6 else {}
    if target == "customer_since":
        since = _moment(value)
        return {"customer_since": since} if since is not None else {}
    if target == "owner_email":
        email = str(value).strip().lower()
        return {"owner_email": email} if "@" in email and len(email) <= 320 else {}
    if target == "owner_id":
        owner = str(int(value)) if isinstance(value, Decimal) and value == value.to_integral_value() else str(value).strip()
        known = mapping.owner_emails.get(owner)
        return {"owner_email": known} if known else {}
    return {}


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _moment(value: Any) -> datetime | None:
    """A CRM date: epoch milliseconds (how HubSpot sends date and datetime properties) or ISO 8601."""
    if isinstance(value, Decimal):
        try:
            return datetime.fromtimestamp(int(value) / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = str(value).strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _load(session: Session, connection_ids: set[uuid.UUID]) -> dict[uuid.UUID, PropertyMapping]:
    rows = session.execute(
        select(Connection.id, Connection.platform, Connection.settings).where(Connection.id.in_(connection_ids))
    ).all()
    return {row.id: _mapping(row.platform, row.settings or {}) for row in rows}


def _mapping(platform: str, settings: dict[str, Any]) -> PropertyMapping:
    """The connection's mapping, read by its connector's own settings fields (their defaults when
    the connection was saved before the setting existed)."""
    connector = CONNECTORS.get(platform)
    if connector is None:
        return NOTHING
    declared = connector.settings_schema._declared_fields
    parsed: dict[str, dict[str, str]] = {}
    for name in ("property_map", "owner_emails"):
        field = declared.get(name)
        if field is None:
            parsed[name] = {}
            continue
        try:
            value = settings.get(name, field.load_default)
            value = value() if callable(value) else value
            parsed[name] = dict(field.deserialize(value) or {})
        except ValidationError as exc:
            log.warning("connection setting %s of a %s connection is unreadable: %s", name, platform, exc.messages)
            parsed[name] = {}
    return PropertyMapping(parsed["property_map"], parsed["owner_emails"])
