"""The contract of an inbound platform module.

A request goes through four steps, each a method here: find the connection it is for
(:meth:`WebhookSource.connection_ref`), verify its signature on the raw body
(:meth:`WebhookSource.verify`, a result object, never an exception), split it into inbox items
with their dedupe keys (:meth:`WebhookSource.items`), and later, in a worker, normalise each
item into canonical events (:meth:`WebhookSource.normalize`).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from plugin.events import CanonicalEvent


class MalformedDelivery(ValueError):
    """The body or headers are not what the platform sends: answered 400, stored nowhere."""


@dataclass(frozen=True)
class Verification:
    ok: bool
    reason: str = ""

    @classmethod
    def passed(cls) -> Verification:
        return cls(True)

    @classmethod
    def failed(cls, reason: str) -> Verification:
        return cls(False, reason)


@dataclass(frozen=True)
class ConnectionRef:
    """How to find the connection: by its id (in the URL) or by a platform key (shop domain)."""

    connection_id: str | None = None
    lookup_key: str | None = None


@dataclass(frozen=True)
class InboxItem:
    """One unit of work for the inbox: a topic, a dedupe key and the raw body text."""

    topic: str
    delivery_key: str
    body: str
    webhook_id: str | None = None
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Reply:
    """An answer given without storing anything (a platform's ping or handshake)."""

    status: int = 200
    body: str = ""


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    a_bytes = a.encode() if isinstance(a, str) else a
    b_bytes = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_bytes, b_bytes)


class WebhookSource:
    platform: ClassVar[str]
    # Settings of the connection that hold signing secrets, newest first (rotation).
    secret_settings: ClassVar[tuple[str, ...]]
    # Topics still processed after the app was uninstalled (privacy requests arrive then).
    after_uninstall_topics: ClassVar[frozenset[str]] = frozenset()

    def connection_ref(self, headers: Mapping[str, str], connection_id: str | None) -> ConnectionRef:
        return ConnectionRef(connection_id=connection_id)

    def reply_without_storing(self, body: bytes, headers: Mapping[str, str]) -> Reply | None:
        """A request that needs an answer but no processing (e.g. a creation ping)."""
        return None

    def verify(
        self, body: bytes, headers: Mapping[str, str], secrets: Sequence[str], *, url: str, method: str = "POST"
    ) -> Verification:
        raise NotImplementedError

    def items(self, body: bytes, headers: Mapping[str, str]) -> list[InboxItem]:
        """Split a verified delivery into inbox items; raise MalformedDelivery if it is not valid."""
        raise NotImplementedError

    def normalize(self, topic: str, payload: Any) -> list[CanonicalEvent]:
        """Canonical events for one stored item; raise MalformedDelivery if it cannot be read."""
        raise NotImplementedError
