"""The HubSpot connection's CRM property mapping: which contact/company property means what.

HubSpot's webhooks report property changes by internal name (``annualrevenue``,
``hubspot_owner_id``, a portal's own ``health_score``…). The admin says what each one is for this
workspace with the ``property_map`` setting, ``property=target``::

    {"annualrevenue": "arr", "health_score": "health_score", "api_calls_total": "metric:api_calls",
     "roi_achieved": "metric:roi_achieved", "csm_email": "owner_email"}
    "annualrevenue=arr, api_calls_total=metric:api_calls"      (the same, as the admin form's text)

Targets: ``arr`` (decimal), ``health_score`` (whole number), ``customer_since`` (a date or
datetime property; the earliest known date wins), ``owner_email`` (a text property holding the
CSM's email), ``owner_id`` (a HubSpot owner id such as ``hubspot_owner_id``, turned into an
email through the ``owner_emails`` setting), and ``metric:<name>`` (a counter or flag a milestone
condition reads; ``order_count`` and ``lifetime_spend`` come from orders only). The mapping is
applied by the pipeline (:mod:`plugin.pipeline.crm_properties`), so changing it applies to the
next events and to replayed ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields

CONTEXT_TARGETS = frozenset({"arr", "health_score", "customer_since", "owner_email", "owner_id"})
METRIC_TARGET = "metric:"
LEDGER_METRICS = frozenset({"order_count", "lifetime_spend"})
PROPERTY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}\Z")
METRIC_NAME = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*\Z")  # as in plugin.engine.schemas
EMAIL = re.compile(r"[^@\s,=]+@[^@\s,=]+\.[^@\s,=]+\Z")

DEFAULT_PROPERTY_MAP: dict[str, str] = {
    "annualrevenue": "arr",
    "health_score": "health_score",
    "hubspot_owner_id": "owner_id",
    "customer_since": "customer_since",
    "api_calls_total": "metric:api_calls",
    "roi_achieved": "metric:roi_achieved",
}


def _pairs(value: Any, what: str) -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        return [(str(k).strip(), str(v).strip()) for k, v in value.items()]
    if isinstance(value, str):
        pairs = []
        for part in re.split(r"[,\n]", value):
            if not part.strip():
                continue
            key, sep, target = part.partition("=")
            if not sep or not key.strip() or not target.strip():
                raise ValueError(f"{part.strip()!r} is not {what}")
            pairs.append((key.strip(), target.strip()))
        return pairs
    raise ValueError(f"a mapping or text of {what}, comma separated")


def check_target(target: str) -> str:
    """The target itself, or ValueError saying why it is not one."""
    if target in CONTEXT_TARGETS:
        return target
    if target.startswith(METRIC_TARGET):
        metric = target[len(METRIC_TARGET) :]
        if not METRIC_NAME.match(metric) or len(metric) > 100:
            raise ValueError(f"{target!r}: a metric is lowercase words joined by _ or . (e.g. metric:api_calls)")
        if metric in LEDGER_METRICS:
            raise ValueError(f"{target!r}: {metric} is counted from orders and cannot come from the CRM")
        return target
    raise ValueError(f"{target!r} is not one of {', '.join(sorted(CONTEXT_TARGETS))} or metric:<name>")


def parse_property_map(value: Any) -> dict[str, str]:
    """``{"property": "target"}`` from a mapping or ``"property=target, …"``; ValueError if malformed."""
    if value is None:
        return dict(DEFAULT_PROPERTY_MAP)
    if value == "":
        return {}
    mapping: dict[str, str] = {}
    for name, target in _pairs(value, "property=target"):
        if not PROPERTY_NAME.match(name):
            raise ValueError(f"{name!r} is not a HubSpot property's internal name")
        if name == "email":
            raise ValueError("email always links the contact to the store's customer; it cannot be mapped")
        mapping[name] = check_target(target)
    return mapping


def parse_owner_emails(value: Any) -> dict[str, str]:
    """``{"owner id": "email"}`` from a mapping or ``"12345=jane@example.com, …"``."""
    if value in (None, ""):
        return {}
    owners: dict[str, str] = {}
    for owner_id, email in _pairs(value, "owner-id=email"):
        if not owner_id.isdigit():
            raise ValueError(f"{owner_id!r} is not a HubSpot owner id")
        if not EMAIL.match(email):
            raise ValueError(f"{email!r} is not an email address")
        owners[owner_id] = email.lower()
    return owners


class PropertyMap(fields.Field):
    """The ``property_map`` setting: a mapping, or the admin form's ``property=target, …`` text."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> dict[str, str]:
        try:
            return parse_property_map(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class OwnerEmails(fields.Field):
    """The ``owner_emails`` setting: HubSpot owner ids and their emails."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> dict[str, str]:
        try:
            return parse_owner_emails(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
