"""The daily time-milestone scan: anniversaries found by one indexed query per day and workspace.

Webhooks tell what customers do; anniversaries happen on their own. For a local date D, the
candidates are customers whose start date has D's month-day (yearly tenure), day-of-month
(monthly tenure) or lies the right number of days back (daily tenure) — see
:mod:`plugin.milestones.tenure`. Each candidate is then evaluated with the same engine as
webhook events (yesterday → today), and awarded through the same unique key, so a rerun or a
catch-up after days of downtime awards each anniversary exactly once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from plugin.db import upsert_statement, utcnow
from plugin.engine.conditions import AllOf, AnyOf, Condition, Facts, TenureCondition, crossed
from plugin.milestones.award import Crossing, award
from plugin.milestones.definitions import ActiveDefinition, enabled_definitions
from plugin.milestones.tenure import days_of_month_for, local_zone, month_days_for
from plugin.models import Customer, CustomerMetric, ScanRun, Workspace

log = logging.getLogger(__name__)

DEFAULT_SCAN_HOUR = 9


@dataclass(frozen=True)
class ScanResult:
    workspace_id: uuid.UUID
    day: date
    candidates: int
    awarded: int


def _tenures(condition: Condition) -> list[TenureCondition]:
    if isinstance(condition, TenureCondition):
        return [condition]
    if isinstance(condition, AllOf | AnyOf):
        return [t for child in condition.children for t in _tenures(child)]
    return []


def _candidate_filter(definitions: list[ActiveDefinition], day: date) -> Any:
    tenures = [t for d in definitions for t in _tenures(d.condition)]
    clauses: list[Any] = []
    if any(t.unit == "years" for t in tenures):
        clauses.append(Customer.since_mmdd.in_(month_days_for(day)))
    if any(t.unit == "months" for t in tenures):
        clauses.append(Customer.since_dom.in_(days_of_month_for(day)))
    for t in (t for t in tenures if t.unit == "days"):
        if t.every is None:
            clauses.append(Customer.since_local == day - timedelta(days=t.amount))
        else:  # a repeating day count has no index-friendly form; rare by design
            clauses.append(Customer.since_local <= day - timedelta(days=t.amount))
    return or_(*clauses) if clauses else None


def scan_day(session: Session, workspace: Workspace, day: date) -> ScanResult:
    definitions = [d for d in enabled_definitions(session, {workspace.id})[workspace.id] if d.uses_tenure]
    where = _candidate_filter(definitions, day)
    candidates: Sequence[Any] = []
    if where is not None:
        candidates = session.execute(
            select(Customer.id, Customer.customer_since, Customer.timezone)
            .where(Customer.workspace_id == workspace.id, Customer.since_local < day, where)
        ).all()
    metrics = _metrics(session, [c.id for c in candidates]) if any(d.metrics for d in definitions) else {}
    scan_hour = int((workspace.settings or {}).get("scan_hour", DEFAULT_SCAN_HOUR))
    crossings: list[Crossing] = []
    for customer in candidates:
        zone = local_zone(customer.timezone, workspace.timezone)
        since = customer.customer_since.astimezone(zone)
        values = metrics.get(customer.id, {})
        before = Facts(metrics=values, customer_since=since, as_of=day - timedelta(days=1))
        after = Facts(metrics=values, customer_since=since, as_of=day)
        achieved_at = datetime.combine(day, time(scan_hour), tzinfo=zone)
        for definition in definitions:
            for occurrence in crossed(definition.condition, before, after):
                crossings.append(
                    Crossing(
                        workspace_id=workspace.id,
                        customer_id=customer.id,
                        definition=definition,
                        occurrence=occurrence.number,
                        value=occurrence.value,
                        achieved_at=achieved_at,
                        customer_since=customer.customer_since,
                        metrics={k: str(v) for k, v in values.items()},
                        source=f"anniversary scan {day.isoformat()}",
                    )
                )
    awarded = len(award(session, crossings))
    _record_run(session, workspace.id, day, len(candidates), awarded)
    return ScanResult(workspace.id, day, len(candidates), awarded)


def _metrics(session: Session, customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Decimal]]:
    found: dict[uuid.UUID, dict[str, Decimal]] = {}
    for row in session.execute(
        select(CustomerMetric.customer_id, CustomerMetric.metric, CustomerMetric.value).where(
            CustomerMetric.customer_id.in_(customer_ids)
        )
    ):
        found.setdefault(row.customer_id, {})[row.metric] = row.value
    return found


def _record_run(session: Session, workspace_id: uuid.UUID, day: date, candidates: int, awarded: int) -> None:
    statement = upsert_statement(session, ScanRun.__table__).values(
        workspace_id=workspace_id, day=day, ran_at=utcnow(), candidates=candidates, awarded=awarded
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["workspace_id", "day"],
            set_={"ran_at": statement.excluded.ran_at, "candidates": statement.excluded.candidates,
                  "awarded": ScanRun.__table__.c.awarded + statement.excluded.awarded},
        )
    )


def days_due(session: Session, workspace: Workspace, now: datetime) -> list[date]:
    """Local days not scanned yet, up to today once the scan hour has come (else yesterday).

    A workspace that never ran a scan starts today: past anniversaries are history (the
    backfill records them), not something to celebrate on the day of installation.
    """
    local_now = now.astimezone(ZoneInfo(workspace.timezone or "UTC"))
    scan_hour = int((workspace.settings or {}).get("scan_hour", DEFAULT_SCAN_HOUR))
    last_due = local_now.date() if local_now.hour >= scan_hour else local_now.date() - timedelta(days=1)
    last_run = session.scalar(select(func.max(ScanRun.day)).where(ScanRun.workspace_id == workspace.id))
    first = last_run + timedelta(days=1) if last_run else last_due
    return [first + timedelta(days=n) for n in range((last_due - first).days + 1)]


def run_due_scans(session_factory: Any, now: datetime | None = None) -> list[ScanResult]:
    """Every workspace's missed and due days, each day in its own transaction."""
    now = now or utcnow()
    results = []
    with session_factory() as session:
        workspaces = session.execute(select(Workspace)).scalars().all()
        session.expunge_all()
    for workspace in workspaces:
        with session_factory() as session:
            due = days_due(session, workspace, now)
        for day in due:
            with session_factory() as session:
                results.append(scan_day(session, workspace, day))
                session.commit()
            log.info("scanned %s for %s: %s", day, workspace.name, results[-1])
    return results
