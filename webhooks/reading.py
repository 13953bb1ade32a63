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
    """A request's headers by lower-case name, read case-insensitively.

    Built once per request from the WSGI environ, so every look-up after that is one dict
    access. (werkzeug's ``EnvironHeaders`` converts the name on every access, and a webhook
    reads its headers a dozen times: measurable on the one hot path of the service.)
    """

    def __init__(self, by_lower_name: dict[str, str]) -> None:
        self._headers = by_lower_name

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any]) -> RequestHeaders:
        found = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                found[key.replace("_", "-").lower()] = environ[key]
        return cls(found)

    def __getitem__(self, name: str) -> str:
        return self._headers[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:
        return self._headers.get(name.lower(), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers)

    def __len__(self) -> int:
        return len(self._headers)


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
