"""Reading what platforms send: headers and JSON fields, every failure a MalformedDelivery.

Shared by every inbound module so that "missing", "blank" and "not an amount" mean the same
thing — and answer the same 400 — whichever platform sent the delivery.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from webhooks.base import MalformedDelivery


class RequestHeaders(Mapping[str, str]):
    """A WSGI request's headers, read case-insensitively straight from the environ.

    A header name maps to its environ key (``X-Shopify-Topic`` → ``HTTP_X_SHOPIFY_TOPIC``) once
    per process, so a look-up is two dict accesses. (werkzeug's ``EnvironHeaders`` converts the
    name on every access, and a webhook reads its headers a dozen times on the one hot path of
    the service.)
    """

    _keys: dict[str, str] = {}  # header name, as asked for → environ key; names are code constants
    _UNPREFIXED = ("CONTENT_TYPE", "CONTENT_LENGTH")

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self._environ = environ

    @classmethod
    def _key(cls, name: str) -> str:
        key = cls._keys.get(name)
        if key is None:
            key = name.upper().replace("-", "_")
            if key not in cls._UNPREFIXED:
                key = "HTTP_" + key
            if len(cls._keys) < 1024:
                cls._keys[name] = key
        return key

    def __getitem__(self, name: str) -> str:
        return self._environ[self._key(name)]  # type: ignore[no-any-return]

    def get(self, name: str, default: Any = None) -> Any:
        return self._environ.get(self._key(name), default)

    def __iter__(self) -> Iterator[str]:
        for key in self._environ:
            if key.startswith("HTTP_"):
                yield key[5:].replace("_", "-").lower()
            elif key in self._UNPREFIXED and self._environ[key]:
                yield key.replace("_", "-").lower()

    def __len__(self) -> int:
        return sum(1 for _ in self)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, case-insensitively (HTTP/2 lowercases them); blank counts as missing."""
    value = headers.get(name)
    if value is None and not isinstance(headers, RequestHeaders):
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    if value is None:
        return None
    return value.strip() or None


def as_object(payload: Any) -> Mapping[str, Any]:
    if isinstance(payload, bytes | str):
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            raise MalformedDelivery("body is not valid JSON") from exc
    if not isinstance(payload, Mapping):
        raise MalformedDelivery("body is not a JSON object")
    return payload


def identifier(value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise MalformedDelivery(f"{field} is missing or not an id")
    return str(value).strip()


def money(value: Any, field: str) -> Decimal:
    """An amount as a platform writes it: a string ("29.35") or, in places, a number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MalformedDelivery(f"{field} is missing or not an amount")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise MalformedDelivery(f"{field} is not an amount: {value!r}") from exc
    if not amount.is_finite():
        raise MalformedDelivery(f"{field} is not an amount: {value!r}")
    return amount
