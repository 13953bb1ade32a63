"""Claimed inbox rows, read into canonical events by their platform's webhook source."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from plugin.events import CanonicalEvent
from webhooks.base import MalformedDelivery
from webhooks.registry import source_for


@dataclass(frozen=True)
class Claimed:
    id: int
    workspace_id: uuid.UUID
    connection_id: uuid.UUID
    platform: str
    topic: str
    body: str


Parsed = list[tuple[Claimed, list[CanonicalEvent]]]


def normalize(deliveries: list[Claimed]) -> tuple[Parsed, dict[int, str]]:
    """Events per delivery, and the error of each delivery that cannot be read."""
    parsed: Parsed = []
    failed: dict[int, str] = {}
    for delivery in deliveries:
        source = source_for(delivery.platform)
        if source is None:
            failed[delivery.id] = f"no webhook source for platform {delivery.platform!r}"
            continue
        try:
            parsed.append((delivery, source.normalize(delivery.topic, json.loads(delivery.body))))
        except (MalformedDelivery, ValueError, TypeError, KeyError, RecursionError) as exc:
            failed[delivery.id] = f"{type(exc).__name__}: {exc}"
    return parsed, failed
