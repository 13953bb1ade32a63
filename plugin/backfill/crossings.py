"""Where each customer passed each milestone, found from the ledger and the calendar, set-based.

Every crossing lands in the ``bf_crossings`` staging table (customer, definition, occurrence,
value, when), for :mod:`plugin.backfill.history` to record or celebrate:

* order-count and lifetime-spend thresholds (``gte``/``gt``, with ``every`` repeats) are found
  by window functions: a running count and sum over each customer's counted orders by
  ``placed_at``; an order whose running value reaches a threshold its predecessor had not is
  the crossing, and its ``placed_at`` is ``achieved_at``. Occurrence numbers and their text
  ("25", "1000") come from the engine (:func:`plugin.engine.conditions.crossed`);
* anniversaries already passed, by the engine's calendar (:func:`plugin.engine.dates.elapsed`,
  :func:`~plugin.engine.dates.add_months`): achieved on the local anniversary date, at the
  hour the daily scan would have recorded it (so a Feb-29 start lands on Feb 28). They are
  worked out once per start date and timezone, then joined to the customers who share them;
* other conditions (usage metrics, feature flags, all/any combinations) cannot be read from a
  store's history: :func:`backfillable` says which are left out.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from plugin.backfill import staging
from plugin.backfill.staging import CROSSINGS, Sql
from plugin.engine.conditions import (
    MAX_OCCURRENCES,
    Facts,
    MetricCondition,
    Occurrence,
    TenureCondition,
    crossed,
)
from plugin.engine.dates import add_months, elapsed
from plugin.milestones.definitions import ActiveDefinition

ORDER_METRICS = ("order_count", "lifetime_spend")
PRECISION = Decimal("0.000001")  # customer_metrics.value is NUMERIC(30, 6)
EPOCH = date(2000, 1, 1)


class Start(NamedTuple):
    """Customers who started on one local date in one timezone: their anniversaries are the same."""

    since_local: date
    timezone: str  # the customers' own timezone column ("" when they have none)
    zone: ZoneInfo  # where their dates are local: that timezone, else the workspace's


def backfillable(definition: ActiveDefinition) -> bool:
    return _is_order_metric(definition) or isinstance(definition.condition, TenureCondition)


def _is_order_metric(definition: ActiveDefinition) -> bool:
    c = definition.condition
    return isinstance(c, MetricCondition) and c.metric in ORDER_METRICS and c.op in ("gte", "gt")


def find_crossings(
    session: Session, definitions: list[ActiveDefinition], starts: set[Start], now: datetime, scan_hour: int
) -> None:
    """Fill the crossings staging table for the customers in ``bf_affected``."""
    staging.recreate(session, CROSSINGS)
    metric = [d for d in definitions if _is_order_metric(d)]
    if metric:
        _metric_crossings(session, metric)
    tenure = [d for d in definitions if isinstance(d.condition, TenureCondition)]
    if tenure and starts:
        _tenure_crossings(session, tenure, starts, now, scan_hour)


def _metric_crossings(session: Session, definitions: list[ActiveDefinition]) -> None:
    sql = Sql(session)
    staging.drop(session, staging.RUNNING)
    sql.run(
        """CREATE TEMPORARY TABLE bf_running AS
           SELECT o.customer_id, o.placed_at,
                  count(*) OVER w AS order_count,
                  sum(o.total - o.refunded) OVER w AS lifetime_spend,
                  o.total - o.refunded AS net
           FROM orders o JOIN bf_affected a ON a.customer_id = o.customer_id
           WHERE o.counted
           WINDOW w AS (PARTITION BY o.customer_id ORDER BY o.placed_at, o.id ROWS UNBOUNDED PRECEDING)"""
    )
    if sql.postgres:
        sql.run("ANALYZE bf_running")
    highest = sql.run("SELECT max(order_count), max(lifetime_spend) FROM bf_running").one()
    top = dict(zip(ORDER_METRICS, highest, strict=True))
    staging.recreate(session, staging.NUMBERS)
    numbers = []
    for d in definitions:
        assert isinstance(d.condition, MetricCondition)
        numbers += [(d.id, o.number, o.value) for o in occurrences_up_to(d.condition, top[d.condition.metric])]
    staging.load(session, staging.NUMBERS, numbers)
    for d in definitions:
        condition = d.condition
        assert isinstance(condition, MetricCondition)
        cur = f"r.{condition.metric}"
        prev = "r.order_count - 1" if condition.metric == "order_count" else "r.lifetime_spend - r.net"
        now_reached, before = _reached(sql, condition, cur), _reached(sql, condition, prev)
        sql.run(
            f"""INSERT INTO bf_crossings (customer_id, definition_id, occurrence, value, achieved_at, metric,
                                          metric_value, existing)
                SELECT r.customer_id, n.definition_id, n.k, n.value, r.placed_at, :metric, {sql.as_text(cur)}, FALSE
                FROM bf_running r JOIN bf_numbers n
                  ON n.definition_id = :definition AND n.k > {before} AND n.k <= {now_reached}
                WHERE {now_reached} > {before}""",
            metric=condition.metric, definition=d.id,
        )
    staging.drop(session, staging.RUNNING, staging.NUMBERS)


def _literal(value: Decimal) -> str:
    """A threshold as an exact decimal literal (never an integer: 5/100 must not be 0)."""
    text = format(value, "f")
    return text if "." in text else text + ".0"


def _reached(sql: Sql, c: MetricCondition, value: str) -> str:
    """How many of the condition's thresholds ``value`` has reached — the engine's count, in SQL."""
    assert not isinstance(c.value, bool)
    threshold = _literal(c.value)
    comparison = ">=" if c.op == "gte" else ">"
    if c.every is None:
        return f"(CASE WHEN {value} {comparison} {threshold} THEN 1 ELSE 0 END)"
    steps = f"(({value}) - {threshold}) / {_literal(c.every)}"
    count = f"{sql.whole(steps)} + 1" if c.op == "gte" else sql.up(steps)
    return f"(CASE WHEN {value} {comparison} {threshold} THEN {count} ELSE 0 END)"


def occurrences_up_to(condition: MetricCondition, highest: Any) -> list[Occurrence]:
    """The occurrences a value of ``highest`` has reached, numbered and worded by the engine:
    the first :data:`MAX_OCCURRENCES` of them (a repeat that fine is not history worth a row each)."""
    if highest is None:
        return []
    assert not isinstance(condition.value, bool)
    try:
        top = Decimal(str(highest))
    except InvalidOperation:
        return []
    below_first = _facts(condition.metric, condition.value - PRECISION)
    reached = crossed(condition, below_first, _facts(condition.metric, top))
    if not reached or reached[0].number == 1:
        return reached
    # more than the engine hands out at once: it gave the highest; ask for the first ones
    last = condition.value + (MAX_OCCURRENCES - 1) * (condition.every or Decimal(0))
    return crossed(condition, below_first, _facts(condition.metric, last + (PRECISION if condition.op == "gt" else 0)))


def _facts(metric: str, value: Decimal) -> Facts:
    return Facts(metrics={metric: value}, customer_since=None, as_of=EPOCH)


def _tenure_crossings(
    session: Session, definitions: list[ActiveDefinition], starts: set[Start], now: datetime, scan_hour: int
) -> None:
    """Anniversaries passed by ``now``: worked out once per start date and timezone, then given to
    every customer with that start in one statement."""
    staging.recreate(session, staging.ANNIVERSARIES)
    staging.load(session, staging.ANNIVERSARIES, list(_anniversaries(definitions, starts, now, scan_hour)))
    Sql(session).run(
        """INSERT INTO bf_crossings (customer_id, definition_id, occurrence, value, achieved_at, existing)
           SELECT c.id, t.definition_id, t.k, t.value, t.achieved_at, FALSE
           FROM customers c
           JOIN bf_affected a ON a.customer_id = c.id
           JOIN bf_anniversaries t ON t.since_local = c.since_local AND t.timezone = coalesce(c.timezone, '')"""
    )
    staging.drop(session, staging.ANNIVERSARIES)


def _anniversaries(definitions: list[ActiveDefinition], starts: set[Start], now: datetime, scan_hour: int) -> Any:
    known: dict[tuple[uuid.UUID, int], list[Occurrence]] = {}
    for start in starts:
        today = now.astimezone(start.zone).date()
        elapsed_in: dict[str, int] = {}
        for d in definitions:
            c = d.condition
            assert isinstance(c, TenureCondition)
            units = elapsed_in.get(c.unit)
            if units is None:
                units = elapsed_in[c.unit] = elapsed(c.unit, start.since_local, today)
            if units < c.amount:
                continue
            occurrences = known.get((d.id, units))
            if occurrences is None:
                occurrences = known[(d.id, units)] = _tenure_occurrences(c, units)
            for occurrence in occurrences:
                day = _anniversary(start.since_local, c.unit, c.amount + (occurrence.number - 1) * (c.every or 0))
                achieved_at = datetime.combine(day, time(scan_hour), tzinfo=start.zone)
                if achieved_at <= now:
                    yield (start.since_local, start.timezone, d.id, occurrence.number, occurrence.value, achieved_at)


def _tenure_occurrences(condition: TenureCondition, units: int) -> list[Occurrence]:
    """What the engine says ``units`` whole units as a customer have reached."""
    start = datetime.combine(EPOCH, time(0))
    end = _anniversary(EPOCH, condition.unit, units)
    return crossed(condition, Facts({}, start, EPOCH), Facts({}, start, end))


def _anniversary(start: date, unit: str, amount: int) -> date:
    if unit == "days":
        return start + timedelta(days=amount)
    return add_months(start, amount * (12 if unit == "years" else 1))
