"""How the pipeline of one workspace is doing: what waits in the inbox and the outbox, what is
stuck, when each connection last heard from its platform, and when the daily scan last ran.

Only the database's figures: the caller adds what lives elsewhere (the Redis queue's depth).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.base import as_utc
from plugin.admin import connections as connection_service
from plugin.models import Effect, InboxDelivery, ScanRun
from plugin.models import delivery as inbox_status
from plugin.models import effect as effect_status


@dataclass(frozen=True)
class InboxHealth:
    pending: int  # stored, not yet processed (pending or being processed)
    failed: int
    oldest_pending_at: datetime | None


@dataclass(frozen=True)
class EffectHealth:
    pending: int
    in_flight: int
    dead: int
    no_connection: int
    held: int
    open_tasks: int
    oldest_due_at: datetime | None  # the longest-waiting pending effect that is due now


@dataclass(frozen=True)
class ConnectionPulse:
    id: uuid.UUID
    name: str
    platform: str
    status: str
    last_webhook_at: datetime | None


@dataclass(frozen=True)
class LastScan:
    day: date
    ran_at: datetime
    candidates: int
    awarded: int


@dataclass(frozen=True)
class Health:
    inbox: InboxHealth
    effects: EffectHealth
    connections: list[ConnectionPulse]
    last_scan: LastScan | None


def health(session: Session, workspace_id: uuid.UUID, now: datetime) -> Health:
    return Health(
        inbox=_inbox(session, workspace_id),
        effects=_effects(session, workspace_id, now),
        connections=_pulses(session, workspace_id),
        last_scan=_last_scan(session, workspace_id),
    )


def _inbox(session: Session, workspace_id: uuid.UUID) -> InboxHealth:
    waiting = (inbox_status.PENDING, inbox_status.PROCESSING)
    counts = dict(
        session.execute(
            select(InboxDelivery.status, func.count())
            .where(InboxDelivery.workspace_id == workspace_id,
                   InboxDelivery.status.in_([*waiting, inbox_status.FAILED]))
            .group_by(InboxDelivery.status)
        ).tuples().all()
    )
    oldest = session.scalar(
        select(func.min(InboxDelivery.received_at))
        .where(InboxDelivery.workspace_id == workspace_id, InboxDelivery.status.in_(waiting))
    )
    return InboxHealth(
        pending=sum(int(counts.get(s, 0)) for s in waiting),
        failed=int(counts.get(inbox_status.FAILED, 0)),
        oldest_pending_at=as_utc(oldest) if oldest is not None else None,
    )


def _effects(session: Session, workspace_id: uuid.UUID, now: datetime) -> EffectHealth:
    counts = dict(
        session.execute(
            select(Effect.status, func.count()).where(Effect.workspace_id == workspace_id).group_by(Effect.status)
        ).tuples().all()
    )
    oldest_due = session.scalar(
        select(func.min(Effect.next_attempt_at)).where(
            Effect.workspace_id == workspace_id,
            Effect.status == effect_status.PENDING,
            Effect.next_attempt_at <= now,
        )
    )
    return EffectHealth(
        pending=int(counts.get(effect_status.PENDING, 0)),
        in_flight=int(counts.get(effect_status.IN_FLIGHT, 0)),
        dead=int(counts.get(effect_status.DEAD, 0)),
        no_connection=int(counts.get(effect_status.NO_CONNECTION, 0)),
        held=int(counts.get(effect_status.HELD, 0)),
        open_tasks=int(counts.get(effect_status.OPEN_TASK, 0)),
        oldest_due_at=as_utc(oldest_due) if oldest_due is not None else None,
    )


def _pulses(session: Session, workspace_id: uuid.UUID) -> list[ConnectionPulse]:
    heard = connection_service.last_webhooks(session, workspace_id)
    return [
        ConnectionPulse(row.id, row.name, row.platform, row.status, heard.get(row.id))
        for row in connection_service.every(session, workspace_id)
    ]


def _last_scan(session: Session, workspace_id: uuid.UUID) -> LastScan | None:
    row = session.execute(
        select(ScanRun).where(ScanRun.workspace_id == workspace_id).order_by(ScanRun.day.desc()).limit(1)
    ).scalar_one_or_none()
    if row is None:
        return None
    return LastScan(row.day, as_utc(row.ran_at), row.candidates, row.awarded)
