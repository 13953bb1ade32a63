"""The JSON grammar of milestone conditions, validated with marshmallow.

``load_condition`` turns what an admin (or PRD-114's catalogue) wrote into a *canonical* dict —
numbers as ``Decimal``, PRD-114's ``threshold`` renamed ``gte`` — or raises
:class:`InvalidCondition` naming the problem and where it is (``all[1].gte: must be a number``).
It knows nothing of evaluation: :mod:`plugin.engine.conditions` builds condition objects from
its output, so the grammar can be reused (admin API, OpenAPI) without importing the engine.

    {"metric": "api_calls", "threshold": 1000000}        PRD-114's form; means gte
    {"metric": "order_count", "gte": 100, "every": 100}  also "gt"; every repeats the threshold
    {"metric": "feature.reports", "eq": true}            a number or a boolean; never repeats
    {"tenure": {"years": 1}, "every": {"years": 1}}      or months, or days; the same unit twice
    {"all": [...]}, {"any": [...]}                       nested up to MAX_DEPTH levels

Numbers are JSON numbers, or strings holding a plain decimal (``"1000.50"``) — the form
``to_json`` uses for the rare value a float cannot carry exactly. Booleans are never numbers.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cache
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

MAX_DEPTH = 5  # levels of all/any nesting, counting the outermost condition as level 1
MAX_CHILDREN = 50
MAX_DECIMAL_PLACES = 6  # customer_metrics.value is NUMERIC(30, 6)
MAX_MAGNITUDE = Decimal(10) ** 24
TENURE_LIMITS = {"years": 100, "months": 1200, "days": 36500}
FORMS = ("metric", "tenure", "all", "any")
COMPARISONS = ("threshold", "gte", "gt", "eq")

_METRIC_NAME = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*\Z")
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z")
_EXAMPLE = '{"metric": "order_count", "gte": 10}'


class InvalidCondition(ValueError):
    """A condition that does not parse. ``path`` says where (``all[1].gte``; "" for the whole)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.message = message
        self.path = path


def load_condition(data: Any) -> dict[str, Any]:
    """Validate ``data`` and return its canonical dict, or raise :class:`InvalidCondition`."""
    try:
        return _load(data, depth=1)
    except ValidationError as error:
        path, message = _first_error(error.messages)
        raise InvalidCondition(message, path) from error


def _load(data: Any, depth: int) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError(f"must be an object, e.g. {_EXAMPLE}")
    if depth > MAX_DEPTH:
        raise ValidationError(f"nesting is too deep (at most {MAX_DEPTH} levels)")
    forms = [key for key in FORMS if key in data]
    if not forms:
        raise ValidationError("needs one of metric, tenure, all or any")
    if len(forms) > 1:
        raise ValidationError(f"use only one of {', '.join(forms)}; combine conditions with all/any")
    if "every" in data and depth > 1:
        raise ValidationError({"every": ["cannot repeat inside all/any"]})
    if "every" in data and forms[0] in ("all", "any"):
        raise ValidationError({"every": ["only gte, gt and tenure conditions can repeat"]})
    schema = (
        _METRIC if forms[0] == "metric" else _TENURE if forms[0] == "tenure" else _composite(forms[0], depth)
    )
    loaded: dict[str, Any] = schema.load(data)
    return loaded


def _first_error(messages: Any, path: str = "") -> tuple[str, str]:
    """marshmallow's nested error dict → (``all[1].gte``, ``must be a number``), first error only."""
    if isinstance(messages, dict):
        key, inner = next(iter(messages.items()))
        if isinstance(key, int):
            path = f"{path}[{key}]"
        elif key != "_schema":
            path = f"{path}.{key}" if path else str(key)
        return _first_error(inner, path)
    if isinstance(messages, list):
        return _first_error(messages[0], path)
    return path, str(messages)


def _decimal(value: Any) -> Decimal | None:
    """``value`` as a finite Decimal, or None if it is not a number (booleans are not)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        number = Decimal(repr(value))  # the decimal the JSON text said, not the binary float
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str) and _PLAIN_DECIMAL.match(value.strip()):
        number = Decimal(value.strip())
    else:
        return None
    return number if number.is_finite() else None


def _decimal_places(number: Decimal) -> int:
    """Significant places after the point, counted exactly (no context rounding)."""
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite numbers only
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros)) if any(digits) else 0


def _in_range(number: Decimal) -> Decimal:
    if abs(number) >= MAX_MAGNITUDE:
        raise ValidationError("is too large (at most 24 digits before the decimal point)")
    if _decimal_places(number) > MAX_DECIMAL_PLACES:
        raise ValidationError(f"must have at most {MAX_DECIMAL_PLACES} decimal places")
    return number


def _number(value: Any) -> Decimal:
    number = _decimal(value)
    if number is None:
        raise ValidationError("must be a number")
    return _in_range(number)


class _Number(fields.Field):
    default_error_messages = {"null": "must be a number"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        return _number(value)


class _NumberOrBool(fields.Field):
    default_error_messages = {"null": "must be a number or true/false"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal | bool:
        if isinstance(value, bool):
            return value
        if _decimal(value) is None:
            raise ValidationError("must be a number or true/false")
        return _number(value)


def _positive(number: Decimal) -> None:
    if number <= 0:
        raise ValidationError("must be greater than 0")


class _Strict(Schema):
    error_messages = {"unknown": "unknown key", "type": f"must be an object, e.g. {_EXAMPLE}"}


class MetricSchema(_Strict):
    error_messages = {"unknown": "unknown key (a metric condition takes metric, one of gte/gt/eq, every)"}

    metric = fields.String(
        required=True,
        validate=[
            validate.Length(max=100, error="must be at most {max} characters"),
            validate.Regexp(
                _METRIC_NAME, error="must look like order_count or feature.reports (a-z, 0-9, _ and .)"
            ),
        ],
        error_messages={"invalid": "must be a string", "null": "must be a string"},
    )
    threshold = _Number()
    gte = _Number()
    gt = _Number()
    eq = _NumberOrBool()
    every = _Number(validate=_positive)

    @validates_schema
    def _one_comparison(self, data: dict[str, Any], **kwargs: Any) -> None:
        present = [key for key in COMPARISONS if key in data]
        if not present:
            raise ValidationError("needs one of gte, gt, eq (or threshold)")
        if len(present) > 1:
            raise ValidationError(f"use only one of {', '.join(present)}")
        if "every" in data and present[0] == "eq":
            raise ValidationError("only gte, gt and tenure conditions can repeat", "every")

    @post_load
    def _canonical(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if "threshold" in data:
            data["gte"] = data.pop("threshold")
        return data


def _units_field(unit: str) -> fields.Integer:
    limit = TENURE_LIMITS[unit]
    return fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=limit, error="must be between {min} and {max}"),
        error_messages={"invalid": "must be a whole number", "null": "must be a whole number"},
    )


class UnitsSchema(_Strict):
    error_messages = {
        "unknown": "unknown unit (use years, months or days)",
        "type": 'must be an object, e.g. {"years": 1}',
    }

    years = _units_field("years")
    months = _units_field("months")
    days = _units_field("days")

    @validates_schema
    def _one_unit(self, data: dict[str, Any], **kwargs: Any) -> None:
        if len(data) != 1:
            raise ValidationError("needs exactly one of years, months or days")


class TenureSchema(_Strict):
    error_messages = {"unknown": "unknown key (a tenure condition takes tenure, every)"}

    tenure = fields.Nested(UnitsSchema, required=True)
    every = fields.Nested(UnitsSchema)

    @validates_schema
    def _same_unit(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "every" in data and data["every"].keys() != data["tenure"].keys():
            (unit,) = data["tenure"]
            raise ValidationError(f"must use the same unit as tenure ({unit})", "every")


class _Child(fields.Field):
    """One condition inside all/any, one level deeper than its parent."""

    def __init__(self, depth: int) -> None:
        super().__init__()
        self.depth = depth

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, Any]:
        return _load(value, self.depth)


@cache
def _composite(key: str, depth: int) -> Schema:
    children = fields.List(
        _Child(depth + 1),
        required=True,
        validate=[
            validate.Length(min=1, error="must list at least one condition"),
            validate.Length(max=MAX_CHILDREN, error="must list at most {max} conditions"),
        ],
        error_messages={"invalid": "must be a list of conditions", "null": "must be a list of conditions"},
    )
    attributes = {key: children, "error_messages": {"unknown": f"unknown key ({key} takes only a list)"}}
    return type(f"{key.title()}Schema", (_Strict,), attributes)()


_METRIC = MetricSchema()
_TENURE = TenureSchema()
