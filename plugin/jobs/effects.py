"""The effect runner: perform due outbox rows through their connectors.

Each effect is marked ``in_flight`` (committed) *before* the platform is called. If the worker
dies between the call and recording its outcome, the row stays in flight; when it is found
later (stale), the connector is asked whether the thing already exists (``find_*``) before
anything is sent again — Shopify has no idempotency key for store credit, so this check is
what keeps a credit from being applied twice.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from connectors.errors import ConnectorError
from connectors.http import HttpClient
from connectors.payloads import (
    CsmNotice,
    CustomerTag,
    DiscountCode,
    EffectResult,
    EmailMessage,
    Escalation,
    MilestoneAlert,
    StoreCredit,
    StoreCreditDebit,
    TimelineNote,
    from_json,
)
from connectors.registry import connector_class
from plugin import connections
from plugin.celebrations.prepare import PREPARE, Wait
from plugin.db import utcnow
from plugin.milestones import escalation
from plugin.models import Connection, CustomerMilestone, Effect
from plugin.models import effect as status
from plugin.pipeline.customers import link_identity
from plugin.services import Services, current

log = logging.getLogger(__name__)

LANE = "effects"
EFFECTS = cast(Table, Effect.__table__)
STALE_IN_FLIGHT = timedelta(minutes=2)
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 6 * 3600

@dataclass(frozen=True)
class Runner:
    """How an effect kind runs: its payload class, the connector method that performs it, and
    the one that finds what a crashed attempt may have done (None: performing is idempotent).
    ``identity`` names the result detail that holds the platform's id of the customer's record
    (a CRM note's contact), remembered so that platform's webhooks about it find the customer."""

    payload: type
    perform: str
    reconcile: str | None
    identity: str | None = None


DISPATCH: dict[str, Runner] = {
    "crm_note": Runner(TimelineNote, "add_timeline_note", "find_timeline_note", identity="contact_id"),
    "slack_alert": Runner(MilestoneAlert, "post_alert", "find_alert"),
    "store_credit": Runner(StoreCredit, "apply_store_credit", "find_store_credit"),
    "customer_tag": Runner(CustomerTag, "add_customer_tag", None),
    "discount_code": Runner(DiscountCode, "create_discount_code", "find_discount_code"),
    "email": Runner(EmailMessage, "send_email", "find_email"),
    "store_credit_debit": Runner(StoreCreditDebit, "debit_store_credit", "find_store_credit_debit"),
    "csm_notice": Runner(CsmNotice, "post_notice", "find_notice"),
    "escalation": Runner(Escalation, "post_escalation", "find_escalation"),
}


@dataclass(frozen=True)
class _Claim:
    id: int
    kind: str
    connection_id: uuid.UUID | None
    request: dict[str, Any]
    payload: dict[str, Any]
    attempts: int
    marked_at: datetime
    recovering_since: datetime | None  # set when a crashed attempt may have gone through


def run_effects(lane: str = LANE, batch_size: int | None = None) -> int:
    services = current()
    services.queue.clear_nudge(lane)
    size = batch_size or services.settings.effect_batch_size
    http = HttpClient()
    done = 0
    while claimed := _claim(services, size):
        for claim in claimed:
            _run_one(services, http, claim)
            done += 1
    return done


def _claim(services: Services, size: int) -> list[_Claim]:
    now = utcnow()
    table = EFFECTS
    with services.sessions() as session:
        rows = session.execute(
            select(table.c.id, table.c.kind, table.c.connection_id, table.c.payload, table.c.attempts,
                   table.c.status, table.c.in_flight_at)
            .where(
                or_(
                    (table.c.status == status.PENDING) & (table.c.next_attempt_at <= now),
                    (table.c.status == status.IN_FLIGHT) & (table.c.in_flight_at < now - STALE_IN_FLIGHT),
                )
            )
            .order_by(table.c.next_attempt_at, table.c.id)
            .limit(size)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return []
        session.execute(
            update(table)
            .where(table.c.id.in_([r.id for r in rows]))
            .values(status=status.IN_FLIGHT, in_flight_at=now, attempts=table.c.attempts + 1, updated_at=now)
        )
        session.commit()
    return [
        _Claim(
            id=r.id,
            kind=r.kind,
            connection_id=r.connection_id,
            request=(r.payload or {}).get("request") or {},
            payload=dict(r.payload or {}),
            attempts=r.attempts + 1,
            marked_at=now,
            recovering_since=r.in_flight_at if r.status == status.IN_FLIGHT else None,
        )
        for r in rows
    ]


def _run_one(services: Services, http: HttpClient, claim: _Claim) -> None:
    try:
        prepared = _prepare(services, claim)
        if prepared is None:
            return
        claim = prepared
        result = _perform(services, http, claim)
    except ConnectorError as exc:
        _record_failure(services, claim, exc)
        return
    except Exception as exc:  # a bug must not leave the row in flight forever
        log.exception("effect %s crashed", claim.id)
        _record_failure(services, claim, ConnectorError(f"{type(exc).__name__}: {exc}", permanent=True))
        return
    # What the platform created (a coupon's code, a discount's end) is kept for the celebration email.
    kept = {"payload": {**claim.payload, "result": result.detail}} if result.detail else {}
    _finish(services, claim, status=status.SUCCEEDED, external_id=result.external_id, last_error=None,
            completed_at=utcnow(), **kept)
    identity_key = DISPATCH[claim.kind].identity
    if identity_key and result.detail.get(identity_key):
        _remember_identity(services, claim, str(result.detail[identity_key]))


def _prepare(services: Services, claim: _Claim) -> _Claim | None:
    """Build a request its kind can only build at run time (an email written from the rewards
    actually given). None when it has to wait: rescheduled without using an attempt."""
    prepare = PREPARE.get(claim.kind)
    if prepare is None or claim.request:
        return claim  # nothing to build, or built by an earlier attempt: resend exactly that
    with services.sessions() as session:
        effect = session.execute(
            select(Effect)
            .where(Effect.id == claim.id, Effect.status == status.IN_FLIGHT, Effect.in_flight_at == claim.marked_at)
            .with_for_update()
        ).scalar_one_or_none()
        if effect is None:
            return None  # reclaimed by another worker meanwhile
        outcome = prepare(session, effect)
        if isinstance(outcome, Wait):
            effect.status, effect.attempts = status.PENDING, claim.attempts - 1
            effect.next_attempt_at, effect.last_error = outcome.until, outcome.reason
            session.commit()
            services.queue.enqueue_at(outcome.until, run_effects, LANE)
            return None
        payload = {**(effect.payload or {}), "request": outcome}
        effect.payload = payload
        session.commit()
    return replace(claim, request=outcome, payload=payload)


def _perform(services: Services, http: HttpClient, claim: _Claim) -> EffectResult:
    if claim.kind not in DISPATCH:
        raise ConnectorError(f"no runner for effect kind {claim.kind!r}", permanent=True)
    if claim.connection_id is None:
        raise ConnectorError("effect has no connection", permanent=True)
    with services.sessions() as session:
        row = session.get(Connection, claim.connection_id)
        if row is None or row.status != "active":
            raise ConnectorError("the connection was removed or uninstalled", permanent=True)
        view = connections.view_of(row, services.secrets)
    connector = connector_class(view.platform)(view.settings, http=http)
    runner = DISPATCH[claim.kind]
    payload: Any = from_json(runner.payload, claim.request)
    if claim.recovering_since is not None and runner.reconcile is not None:
        existing = getattr(connector, runner.reconcile)(payload, claim.recovering_since)
        if existing is not None:
            log.info("effect %s had gone through before a crash; not sending it again", claim.id)
            return existing
    return getattr(connector, runner.perform)(payload)


def _remember_identity(services: Services, claim: _Claim, external_id: str) -> None:
    """The platform's id of the customer this effect reached, recorded on its connection (and an
    id-only customer the platform's webhooks made earlier merged in). Bookkeeping after a success:
    if it fails, the effect still succeeded, and the email will link them later."""
    if claim.connection_id is None:
        return
    try:
        with services.sessions() as session:
            row = session.execute(
                select(Effect.workspace_id, CustomerMilestone.customer_id)
                .join(CustomerMilestone, CustomerMilestone.id == Effect.milestone_id)
                .where(Effect.id == claim.id)
            ).one_or_none()
            if row is not None:
                link_identity(session, row.workspace_id, claim.connection_id, external_id, row.customer_id)
                session.commit()
    except SQLAlchemyError:
        log.exception("effect %s: could not record identity %s on connection %s", claim.id, external_id, claim.connection_id)


def backoff(attempts: int) -> float:
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.8, 1.2)


def _record_failure(services: Services, claim: _Claim, exc: ConnectorError) -> None:
    out_of_attempts = claim.attempts >= services.settings.effect_max_attempts
    if exc.permanent or out_of_attempts:
        reason = exc.message if exc.permanent else f"gave up after {claim.attempts} attempts: {exc.message}"
        _finish(services, claim, lambda session: _escalate(session, claim), status=status.DEAD,
                last_error=reason[:2000])
        return
    delay = max(backoff(claim.attempts), exc.retry_after or 0.0)
    when = utcnow() + timedelta(seconds=delay)
    _finish(services, claim, status=status.PENDING, last_error=exc.message[:2000], next_attempt_at=when)
    services.queue.enqueue_at(when, run_effects, LANE)


def _finish(
    services: Services, claim: _Claim, then: Callable[[Session], None] | None = None, /, **values: Any
) -> None:
    """Record the outcome, only if the row is still ours (nobody reclaimed it as stale); ``then``
    runs in the same transaction when it was."""
    table = EFFECTS
    with services.sessions() as session:
        updated = session.execute(
            update(table)
            .where(table.c.id == claim.id, table.c.status == status.IN_FLIGHT, table.c.in_flight_at == claim.marked_at)
            .values(updated_at=utcnow(), **values)
        ).rowcount  # type: ignore[attr-defined]
        if updated and then is not None:
            then(session)
        session.commit()


def _escalate(session: Session, claim: _Claim) -> None:
    """A dead effect is an error in a recognition: tell the team lead (once per effect, in this
    run's loop). A failure here is logged and leaves the effect dead, never in flight."""
    try:
        with session.begin_nested():
            escalation.on_dead(session, claim.id)
    except Exception:  # the effect's own outcome must still be recorded
        log.exception("effect %s went dead, and its escalation could not be planned", claim.id)
