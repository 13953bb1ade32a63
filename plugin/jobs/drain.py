"""The inbox drain job: claim pending rows in batches, apply them, award, mark them done.

One transaction per batch. Rows are claimed with ``FOR UPDATE SKIP LOCKED`` inside that same
transaction, so a worker that dies mid-batch simply rolls back and the rows are pending again.
A batch that fails unexpectedly is retried row by row, so one poisoned delivery is marked
failed (visible, replayable) without holding up the others.
"""

from __future__ import annotations

import logging
import time
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.jobs.queue import NUDGE_MEMO_SECONDS
from plugin.milestones.award import award
from plugin.milestones.reversals import reverse
from plugin.models import InboxDelivery
from plugin.models import delivery as inbox_status
from plugin.pipeline.batch import Claimed, process
from plugin.services import Services, current

log = logging.getLogger(__name__)

LANE = "inbox"
INBOX = cast(Table, InboxDelivery.__table__)
DEADLOCK_RETRIES = 5


def drain_inbox(lane: str = LANE, batch_size: int | None = None) -> int:
    """Process pending inbox rows until none is left. Returns how many rows were handled."""
    services = current()
    services.queue.clear_nudge(lane)
    size = batch_size or services.settings.drain_batch_size
    handled = 0
    lingered = services.queue.inline
    while True:
        count, full = _drain_one_batch(services, size)
        handled += count
        if full:
            # More work is waiting: wake another worker to share it while we carry on.
            services.queue.nudge(drain_inbox, lane)
            continue
        if lingered:
            break
        # A row committed by a process that skipped its nudge (plugin.jobs.queue: the nudge
        # memo) is visible by now: look once more before stopping.
        time.sleep(NUDGE_MEMO_SECONDS)
        lingered = True
    if handled:
        from plugin.jobs.effects import run_effects

        services.queue.nudge(run_effects, "effects")
    return handled


def _claim(session: Session, size: int, ids: list[int] | None = None) -> list[Claimed]:
    """Pending rows, oldest first, locked for this transaction; rows another worker holds are skipped."""
    table = INBOX
    query = select(
        table.c.id, table.c.workspace_id, table.c.connection_id, table.c.platform, table.c.topic, table.c.body
    ).where(table.c.status == inbox_status.PENDING)
    if ids is not None:
        query = query.where(table.c.id.in_(ids))
    rows = session.execute(query.order_by(table.c.id).limit(size).with_for_update(skip_locked=True)).all()
    return [Claimed(r.id, r.workspace_id, r.connection_id, r.platform, r.topic, r.body) for r in rows]


class _BatchFailed(Exception):
    """A batch raised something other than a transient database error: the rows to isolate."""

    def __init__(self, ids: list[int]) -> None:
        super().__init__(f"batch of {len(ids)} inbox rows failed")
        self.ids = ids


def _run_batch(services: Services, size: int, ids: list[int] | None = None) -> tuple[int, bool]:
    """Claim, apply and commit one batch; a deadlock or serialisation failure runs it again."""
    for attempt in range(DEADLOCK_RETRIES):
        session = services.sessions()
        claimed: list[Claimed] = []
        try:
            claimed = _claim(session, size, ids)
            if not claimed:
                session.rollback()
                return 0, False
            _apply(session, claimed)
            session.commit()
            return len(claimed), len(claimed) == size
        except OperationalError as exc:
            session.rollback()
            if _is_retryable(exc) and attempt + 1 < DEADLOCK_RETRIES:
                time.sleep(0.01 * (attempt + 1))
                continue
            raise
        except Exception as exc:
            session.rollback()
            raise _BatchFailed([c.id for c in claimed]) from exc
        finally:
            session.close()
    return 0, False


def _drain_one_batch(services: Services, size: int) -> tuple[int, bool]:
    try:
        return _run_batch(services, size)
    except _BatchFailed as failure:
        log.exception("batch of %d inbox rows failed; retrying them one by one", len(failure.ids))
        for delivery_id in failure.ids:
            _one(services, delivery_id)
        return len(failure.ids), False


def _one(services: Services, delivery_id: int) -> None:
    """One row on its own: applied, or marked failed with its error (visible, replayable).

    A transient database error that outlasts the retries leaves the row pending for the
    sweeper: a good delivery is never marked failed for the database's sake.
    """
    try:
        _run_batch(services, 1, [delivery_id])
    except OperationalError:
        log.exception("inbox row %s hit a database error; it stays pending", delivery_id)
    except _BatchFailed as failure:
        cause = failure.__cause__ or failure
        log.error("inbox row %s failed: %r", delivery_id, cause)
        with services.sessions() as session:
            session.execute(
                update(INBOX)
                .where(INBOX.c.id == delivery_id)
                .values(
                    status=inbox_status.FAILED,
                    attempts=INBOX.c.attempts + 1,
                    error=f"{type(cause).__name__}: {cause}"[:2000],
                    processed_at=utcnow(),
                )
            )
            session.commit()


def _apply(session: Session, claimed: list[Claimed]) -> None:
    result = process(session, claimed)
    award(session, result.crossings)
    reverse(session, result.undone)  # after award: a refund may undo what this very batch awarded
    now = utcnow()
    if result.processed:
        session.execute(
            update(INBOX)
            .where(INBOX.c.id.in_(result.processed))
            .values(status=inbox_status.PROCESSED, processed_at=now, attempts=INBOX.c.attempts + 1, error=None)
        )
    for delivery_id, error in result.failed.items():
        session.execute(
            update(INBOX)
            .where(INBOX.c.id == delivery_id)
            .values(status=inbox_status.FAILED, processed_at=now, attempts=INBOX.c.attempts + 1, error=error[:2000])
        )


def _is_retryable(exc: DBAPIError) -> bool:
    """PostgreSQL deadlock or serialisation failure: the batch can simply run again."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in {"40P01", "40001"} or "database is locked" in str(exc.orig)
