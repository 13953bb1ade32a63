"""Milestone conditions: what a definition asks for, and when a customer crosses it.

``parse_condition`` turns a definition's JSON (grammar in :mod:`plugin.engine.schemas`) into a
frozen :data:`Condition`; ``to_json`` writes it back in canonical form. Evaluation is pure:
``holds`` says whether a customer meets a condition now, ``crossed`` which *occurrences* became
true between two states of the same customer — the question the pipeline asks after every update.

Crossing, not equality: 9 → 12 orders crosses "10th order" though the count was never 10, and a
condition already met before the update crosses nothing, so a definition created today does not
flood customers who passed it long ago. Occurrences are numbered from 1 along the repeats of
``every`` (the 100th, 200th… order is occurrence 1, 2…), so the pipeline's unique key
(customer, definition, occurrence) makes a re-crossing after a decrease (an order cancelled,
then placed again) harmless. For non-decreasing values crossing is additive — ``crossed(a, c)``
is ``crossed(a, b) + crossed(b, c)`` — so how events are batched never changes what is awarded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, localcontext
from typing import Any, Literal, TypeAlias

from plugin.engine.dates import UNITS, Unit, anniversary_date, elapsed
from plugin.engine.schemas import InvalidCondition, load_condition

__all__ = [
    "MAX_OCCURRENCES",
    "AllOf",
    "AnyOf",
    "Condition",
    "Facts",
    "InvalidCondition",
    "MetricCondition",
    "Occurrence",
    "TenureCondition",
    "anniversary_date",
    "crossed",
    "describe",
    "holds",
    "metrics_of",
    "parse_condition",
    "to_json",
    "uses_tenure",
]

MAX_OCCURRENCES = 1000
"""At most this many occurrences from one ``crossed`` call — the highest ones. A bulk import that
takes ``api_calls`` from 0 to 10^9 against "every 1,000" must not enqueue a million
celebrations in one transaction; the customer is celebrated for where they are now."""

Op = Literal["gte", "gt", "eq"]
ZERO = Decimal(0)


@dataclass(frozen=True)
class MetricCondition:
    """``metric`` compared with ``value``; ``every`` repeats gte/gt at value, value + every, …"""

    metric: str
    op: Op
    value: Decimal | bool
    every: Decimal | None = None

    def __post_init__(self) -> None:
        if self.op not in ("gte", "gt", "eq"):
            raise ValueError(f"unknown comparison {self.op!r}")
        if not isinstance(self.value, Decimal | bool) or (isinstance(self.value, bool) and self.op != "eq"):
            raise TypeError(f"{self.op} compares with a Decimal{' or a bool' if self.op == 'eq' else ''}")
        if self.every is not None and (
            self.op == "eq" or not isinstance(self.every, Decimal) or self.every <= 0
        ):
            raise ValueError("every is a positive Decimal, on gte/gt only")


@dataclass(frozen=True)
class TenureCondition:
    """``amount`` whole ``unit``s as a customer; ``every`` repeats it (1 year, 2 years, …)."""

    unit: Unit
    amount: int
    every: int | None = None

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unknown tenure unit {self.unit!r}")
        if self.amount < 1 or (self.every is not None and self.every < 1):
            raise ValueError("tenure amount and every are at least 1")


@dataclass(frozen=True)
class AllOf:
    children: tuple[Condition, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "children", tuple(self.children))
        if not self.children:
            raise ValueError("all needs at least one condition")


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Condition, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "children", tuple(self.children))
        if not self.children:
            raise ValueError("any needs at least one condition")


Condition: TypeAlias = MetricCondition | TenureCondition | AllOf | AnyOf


@dataclass(frozen=True)
class Facts:
    """One customer's state as evaluation sees it; a missing metric counts as 0 / false.

    ``as_of`` is the customer's *local* date. Tenure counts from ``customer_since.date()``, so
    pass ``customer_since`` in the same timezone (``.astimezone(tz)``) or the anniversary can
    land a day early or late.
    """

    metrics: Mapping[str, Decimal | bool]
    customer_since: datetime | None
    as_of: date

    def __post_init__(self) -> None:
        if isinstance(self.as_of, datetime):
            raise TypeError("as_of is the customer's local date, not a datetime")


@dataclass(frozen=True)
class Occurrence:
    """The ``number``-th time a definition is reached; ``value`` is what was reached ("100", "2 years")."""

    number: int
    value: str


def parse_condition(data: Any) -> Condition:
    """Validate a definition's condition JSON; raises :class:`InvalidCondition` (a ValueError)."""
    return _build(load_condition(data))


def _build(data: dict[str, Any]) -> Condition:
    if "all" in data:
        return AllOf(tuple(_build(child) for child in data["all"]))
    if "any" in data:
        return AnyOf(tuple(_build(child) for child in data["any"]))
    if "tenure" in data:
        ((unit, amount),) = data["tenure"].items()
        return TenureCondition(unit, amount, data["every"][unit] if "every" in data else None)
    op: Op = "gte" if "gte" in data else "gt" if "gt" in data else "eq"
    return MetricCondition(data["metric"], op, data[op], data.get("every"))


def to_json(condition: Condition) -> dict[str, Any]:
    """The canonical JSON of a condition: ``parse_condition(to_json(c)) == c``, and it dumps with ``json``."""
    if isinstance(condition, AllOf | AnyOf):
        return {"all" if isinstance(condition, AllOf) else "any": [to_json(c) for c in condition.children]}
    if isinstance(condition, TenureCondition):
        data: dict[str, Any] = {"tenure": {condition.unit: condition.amount}}
        if condition.every is not None:
            data["every"] = {condition.unit: condition.every}
        return data
    data = {"metric": condition.metric, condition.op: _json_value(condition.value)}
    if condition.every is not None:
        data["every"] = _json_value(condition.every)
    return data


def _json_value(value: Decimal | bool) -> bool | int | float | str:
    """An int when whole, a float when that is exact, else the decimal as a string."""
    if isinstance(value, bool):
        return value
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else _plain(value)


# -- evaluation ---------------------------------------------------------------------------------


def holds(condition: Condition, facts: Facts) -> bool:
    """Whether ``facts`` meet ``condition`` now (a repeating one: its first threshold)."""
    if isinstance(condition, AllOf):
        return all(holds(child, facts) for child in condition.children)
    if isinstance(condition, AnyOf):
        return any(holds(child, facts) for child in condition.children)
    if isinstance(condition, MetricCondition) and condition.op == "eq":
        actual = facts.metrics.get(condition.metric)
        if isinstance(condition.value, bool):
            return _flag(actual) is condition.value
        return _number(actual) == condition.value
    return _reached(condition, facts) >= 1


def crossed(condition: Condition, before: Facts, after: Facts) -> list[Occurrence]:
    """The occurrences that became true going from ``before`` to ``after``, lowest first.

    Thresholds (gte/gt, tenure) count how many of their repeats each state has reached and
    return the ones in between, at most the highest :data:`MAX_OCCURRENCES`. Equality and
    all/any have one occurrence, crossed when the condition goes from false to true.
    """
    if isinstance(condition, AllOf | AnyOf) or (
        isinstance(condition, MetricCondition) and condition.op == "eq"
    ):
        if holds(condition, after) and not holds(condition, before):
            return [Occurrence(1, _met_text(condition))]
        return []
    low, high = _reached(condition, before), _reached(condition, after)
    first = max(low + 1, high - MAX_OCCURRENCES + 1)
    return [Occurrence(number, _threshold_text(condition, number)) for number in range(first, high + 1)]


def _reached(condition: MetricCondition | TenureCondition, facts: Facts) -> int:
    """How many of the condition's thresholds ``facts`` have reached (0 or 1 without every)."""
    if isinstance(condition, TenureCondition):
        if facts.customer_since is None:
            return 0
        units = elapsed(condition.unit, facts.customer_since.date(), facts.as_of)
        distance, inclusive = Decimal(units - condition.amount), True
        step = None if condition.every is None else Decimal(condition.every)
    else:
        assert not isinstance(condition.value, bool)  # only eq compares with booleans
        distance = _number(facts.metrics.get(condition.metric)) - condition.value
        inclusive, step = condition.op == "gte", condition.every
    if distance < 0 or (distance == 0 and not inclusive):
        return 0
    if step is None:
        return 1
    with localcontext() as context:
        context.prec = 80  # exact integer division for any NUMERIC(30, 6) value
        whole, remainder = divmod(distance, step)
    # thresholds at distance 0, step, 2·step…: gte reaches those <= distance, gt those < distance
    return int(whole) + 1 if inclusive or remainder else int(whole)


def _number(value: object) -> Decimal:
    if value is None:
        return ZERO
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, Decimal | int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    raise TypeError(f"metric values are Decimal or bool, not {type(value).__name__}")


def _flag(value: object) -> bool:
    """A feature flag as the pipeline stores it: a bool, or a number (0 is off)."""
    return value if isinstance(value, bool) else _number(value) != 0


# -- text ---------------------------------------------------------------------------------------


def _plain(number: Decimal) -> str:
    """``1000`` not ``1E+3``; trailing zeros dropped, but cents kept when not whole: ``1000.50``."""
    if number == 0:
        return "0"
    with localcontext() as context:
        context.prec = 80
        normalized = number.normalize()
    exponent = normalized.as_tuple().exponent
    assert isinstance(exponent, int)
    return f"{normalized:.2f}" if exponent == -1 else f"{normalized:f}"


def _units_text(amount: int, unit: Unit) -> str:
    return f"{amount} {unit if amount != 1 else unit[:-1]}"


def _threshold_text(condition: MetricCondition | TenureCondition, number: int) -> str:
    if isinstance(condition, TenureCondition):
        return _units_text(condition.amount + (number - 1) * (condition.every or 0), condition.unit)
    assert not isinstance(condition.value, bool)
    return _plain(condition.value + (number - 1) * (condition.every or ZERO))


def _met_text(condition: Condition) -> str:
    if isinstance(condition, AllOf):
        return "all conditions met"
    if isinstance(condition, AnyOf):
        return "any condition met"
    assert isinstance(condition, MetricCondition)
    value = condition.value
    return ("true" if value else "false") if isinstance(value, bool) else _plain(value)


def _grouped(number: Decimal) -> str:
    """``_plain`` with thousands separators, for people: ``1,000,000``."""
    text = _plain(number)
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, _, fraction = digits.partition(".")
    return f"{sign}{int(whole):,}" + (f".{fraction}" if fraction else "")


def describe(condition: Condition) -> str:
    """Plain English for the admin: "order count ≥ 100, every 100", "1 year as a customer, every year"."""
    if isinstance(condition, AllOf | AnyOf):
        parts = [
            f"({describe(c)})" if isinstance(c, AllOf | AnyOf) else describe(c) for c in condition.children
        ]
        return ("all of: " if isinstance(condition, AllOf) else "any of: ") + "; ".join(parts)
    if isinstance(condition, TenureCondition):
        text = f"{_units_text(condition.amount, condition.unit)} as a customer"
        if condition.every is not None:
            every = (
                condition.unit[:-1] if condition.every == 1 else _units_text(condition.every, condition.unit)
            )
            text += f", every {every}"
        return text
    subject = condition.metric.replace(".", " ").replace("_", " ")
    if isinstance(condition.value, bool):
        return f"{subject} is {'true' if condition.value else 'false'}"
    sign = {"gte": "≥", "gt": ">", "eq": "="}[condition.op]
    text = f"{subject} {sign} {_grouped(condition.value)}"
    return text + (f", every {_grouped(condition.every)}" if condition.every is not None else "")


# -- what a condition depends on ----------------------------------------------------------------


def metrics_of(condition: Condition) -> frozenset[str]:
    """The metrics ``condition`` reads, so the pipeline evaluates only what an update can change."""
    if isinstance(condition, AllOf | AnyOf):
        return frozenset().union(*(metrics_of(child) for child in condition.children))
    return frozenset({condition.metric}) if isinstance(condition, MetricCondition) else frozenset()


def uses_tenure(condition: Condition) -> bool:
    """Whether ``condition`` depends on time as a customer (so the daily scan must look at it)."""
    if isinstance(condition, AllOf | AnyOf):
        return any(uses_tenure(child) for child in condition.children)
    return isinstance(condition, TenureCondition)
