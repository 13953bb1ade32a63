"""Recording or celebrating the milestones customers passed before installation.

The crossings staged by :mod:`plugin.backfill.crossings` that are already recorded (the unique
customer+definition+occurrence) are left alone — a milestone that exists is never overwritten.
The rest are *recorded* (status ``historical``, no effects) with one ``INSERT … SELECT``, or
*celebrated* through :func:`plugin.milestones.award.award` like any webhook crossing (effects
planned, rewards held for review where the definition requires it), per the run's mode.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import exc, select
from sqlalchemy.orm import Session

from plugin.backfill.crossings import backfillable
from plugin.backfill.staging import CROSSINGS, Sql
from plugin.milestones.award import Crossing, award
from plugin.milestones.definitions import ActiveDefinition
from plugin.models import Customer

AWARD_CHUNK = 500  # crossings per award() call: keeps each INSERT far below 65,535 parameters
NOT_BACKFILLED = "not backfilled: the store's history does not say when this was reached"


@dataclass
class Outcome:
    """What a run did (or, dry, would do) for one definition."""

    key: str
    name: str
    recorded: int = 0
    celebrated: int = 0
    already: int = 0  # crossings that were already recorded: left as they are
    liability: dict[str, Decimal] = field(default_factory=dict)  # store credit of the celebrated
    note: str | None = None  # why the definition was not backfilled


@dataclass(frozen=True)
class Celebration:
    """Which crossings are celebrated: none (record), those on or after ``since``, or all."""

    since: datetime | None
    everything: bool = False

    def sql(self) -> tuple[str, dict[str, Any]]:
        if self.everything:
            return "TRUE", {}
        if self.since is None:
            return "FALSE", {}
        return "x.achieved_at >= :celebrate_since", {"celebrate_since": self.since}


@dataclass(frozen=True)
class Settlement:
    """What to do with the staged crossings of one workspace."""

    workspace_id: uuid.UUID
    currency: str  # the workspace's: store credit without a currency of its own is in it
    definitions: tuple[ActiveDefinition, ...]
    celebration: Celebration
    source: str  # kept in each milestone's context ("backfill <run id>")
    now: datetime
    dry_run: bool


def settle(session: Session, plan: Settlement) -> tuple[list[Outcome], list[uuid.UUID]]:
    """Record or celebrate the staged crossings; count them per definition. Returns the counts
    and the ids of the milestones celebrated (their effects are in the outbox, run after commit)."""
    found = {d.id: Outcome(d.key, d.name, note=None if backfillable(d) else NOT_BACKFILLED) for d in plan.definitions}
    sql = Sql(session)
    sql.run(
        """UPDATE bf_crossings SET existing = TRUE WHERE EXISTS (
               SELECT 1 FROM customer_milestones m WHERE m.customer_id = bf_crossings.customer_id
               AND m.definition_id = bf_crossings.definition_id AND m.occurrence = bf_crossings.occurrence)"""
    )
    celebrate, params = plan.celebration.sql()
    for definition_id, existing, celebrated, count in sql.run(
        f"""SELECT x.definition_id, x.existing, {celebrate} AS celebrate, count(*) FROM bf_crossings x
            GROUP BY 1, 2, 3""",
        **params,
    ).all():
        outcome = found[uuid.UUID(str(definition_id))]
        if existing:
            outcome.already += count
        elif celebrated:
            outcome.celebrated += count
        else:
            outcome.recorded += count
    for definition in plan.definitions:
        found[definition.id].liability = _credit(definition, found[definition.id].celebrated, plan.currency)
    if plan.dry_run:
        return list(found.values()), []
    _record(sql, plan, celebrate, params)
    return list(found.values()), _celebrate(session, plan)


def _credit(definition: ActiveDefinition, celebrated: int, currency: str) -> dict[str, Decimal]:
    total: dict[str, Decimal] = defaultdict(Decimal)
    for action in definition.recognition:
        if action.get("kind") == "store_credit" and celebrated:
            try:
                amount = Decimal(str(action.get("amount")))
            except InvalidOperation:
                continue
            total[str(action.get("currency") or currency)] += amount * celebrated
    return dict(total)


def _record(sql: Sql, plan: Settlement, celebrate: str, params: dict[str, Any]) -> None:
    metrics = (
        f"CASE WHEN x.metric IS NULL THEN {sql.empty_object()} "
        f"ELSE {sql.json_object('x.metric', 'x.metric_value')} END"
    )
    # in the unique key's order: a first import appends to that index instead of searching it
    insert = f"""INSERT INTO customer_milestones (id, customer_id, milestone_type, milestone_name, milestone_value,
                achieved_at, celebrated, created_at, workspace_id, definition_id, occurrence, time_to_milestone,
                status, context)
            SELECT {sql.new_uuid()}, x.customer_id, d.type, d.name, x.value, x.achieved_at, FALSE, :now,
                   :workspace, x.definition_id, x.occurrence,
                   CASE WHEN c.customer_since IS NULL THEN NULL
                        ELSE {sql.duration("x.achieved_at", "c.customer_since")} END,
                   'historical', {sql.json_object("'source'", sql.literal(plan.source), "'metrics'", metrics)}
            FROM bf_crossings x
            JOIN milestone_definitions d ON d.id = x.definition_id
            JOIN customers c ON c.id = x.customer_id
            WHERE NOT x.existing AND NOT ({celebrate})
            ORDER BY x.customer_id, x.definition_id, x.occurrence"""
    values = {"now": plan.now, "workspace": plan.workspace_id, **params}
    # Crossings already recorded were marked ``existing``: only a scan or a webhook that recorded one
    # since then conflicts, and only then is the conflict check worth its lookup per row.
    savepoint = sql.session.begin_nested()
    try:
        sql.run(insert, **values)
    except exc.IntegrityError:
        savepoint.rollback()
        sql.run(f"{insert} ON CONFLICT (customer_id, definition_id, occurrence) DO NOTHING", **values)
    else:
        savepoint.commit()


def _celebrate(session: Session, plan: Settlement) -> list[uuid.UUID]:
    celebration = plan.celebration
    if celebration.since is None and not celebration.everything:
        return []
    x = CROSSINGS.c
    query = (
        select(x.customer_id, x.definition_id, x.occurrence, x.value, x.achieved_at, x.metric, x.metric_value,
               Customer.customer_since)
        .join(Customer, Customer.id == x.customer_id)
        .where(x.existing.is_(False))
        .order_by(x.customer_id, x.achieved_at)  # a customer's crossings together: one combined message
    )
    if not celebration.everything:
        query = query.where(x.achieved_at >= celebration.since)
    definitions = {d.id: d for d in plan.definitions}
    crossings = [
        Crossing(
            workspace_id=plan.workspace_id,
            customer_id=row.customer_id,
            definition=definitions[row.definition_id],
            occurrence=row.occurrence,
            value=row.value,
            achieved_at=row.achieved_at,
            customer_since=row.customer_since,
            metrics={row.metric: row.metric_value} if row.metric else {},
            source=plan.source,
            occasion=plan.source,  # celebrated now, together: one message per customer for the pass
        )
        for row in session.execute(query)
    ]
    awarded: list[uuid.UUID] = []
    chunk: list[Crossing] = []
    for crossing in crossings:  # chunks end between customers (unless one has very many crossings)
        if len(chunk) >= AWARD_CHUNK and (chunk[-1].customer_id != crossing.customer_id or len(chunk) >= 4 * AWARD_CHUNK):
            awarded += award(session, chunk)
            chunk = []
        chunk.append(crossing)
    if chunk:
        awarded += award(session, chunk)
    return awarded
