"""The ``backfill_runs`` row of a run: started or resumed, advanced page by page, finished or failed.

A run commits its cursor with every page it imports, in the page's own transaction, so a run
killed at any moment resumes after the last page that is really in the ledger: a page is either
entirely imported with its cursor, or not at all. Only one run per connection at a time: on
PostgreSQL a session-level advisory lock, which the server drops if the process dies.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from plugin.db import transaction, utcnow
from plugin.models.backfill import ABANDONED, FAILED, FINISHED, RUNNING, BackfillRun

UNFINISHED = (RUNNING, FAILED)


class BackfillBusy(RuntimeError):
    """Another backfill of the same connection is running right now."""


@contextmanager
def exclusive(engine: Engine, connection_id: uuid.UUID) -> Iterator[None]:
    if engine.dialect.name != "postgresql":
        yield  # SQLite: one writer at a time anyway
        return
    key = int.from_bytes(connection_id.bytes[:8], "big", signed=True)
    with engine.connect() as conn:
        locked = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
        conn.commit()
        if not locked:
            raise BackfillBusy(f"a backfill of connection {connection_id} is already running")
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            conn.commit()


def start(
    session: Session,
    *,
    workspace_id: uuid.UUID,
    connection_id: uuid.UUID,
    source: str,
    mode: str,
    days: int | None,
    file: str | None,
    restart: bool,
) -> tuple[BackfillRun, bool]:
    """The unfinished run of this connection and source to resume, or a new one. Returns it and
    whether it resumes. A different CSV file, or ``restart``, abandons the unfinished run."""
    run = session.execute(
        select(BackfillRun)
        .where(BackfillRun.connection_id == connection_id, BackfillRun.source == source,
               BackfillRun.status.in_(UNFINISHED))
        .order_by(BackfillRun.started_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if run is not None and (restart or run.file != file):
        run.status, run.finished_at = ABANDONED, utcnow()
        run = None
    if run is not None:
        run.status, run.mode, run.days, run.error = RUNNING, mode, days, None
        session.flush()
        return run, True
    run = BackfillRun(
        id=uuid.uuid4(), workspace_id=workspace_id, connection_id=connection_id, source=source, mode=mode,
        days=days, file=file, status=RUNNING, cursor={}, pages=0, counts={}, started_at=utcnow(),
    )
    session.add(run)
    session.flush()
    return run, False


def advance(session: Session, run_id: uuid.UUID, cursor: dict[str, Any], counts: dict[str, int]) -> None:
    """One more page is in: where to resume, and the running totals."""
    run = session.get(BackfillRun, run_id)
    assert run is not None
    run.cursor = cursor
    run.pages += 1
    run.counts = {**(run.counts or {}), **counts}


def imported(session: Session, run_id: uuid.UUID, counts: dict[str, int]) -> None:
    """Every page is in: a run interrupted after this resumes with the last step alone."""
    run = session.get(BackfillRun, run_id)
    assert run is not None
    run.cursor = {**(run.cursor or {}), "imported": True}
    run.counts = {**(run.counts or {}), **counts}


def finish(session: Session, run_id: uuid.UUID, counts: dict[str, Any]) -> None:
    run = session.get(BackfillRun, run_id)
    assert run is not None
    run.status, run.finished_at, run.error = FINISHED, utcnow(), None
    run.counts = {**(run.counts or {}), **counts}


def fail(sessions: sessionmaker[Session], run_id: uuid.UUID, error: BaseException) -> None:
    """Recorded in a transaction of its own: the one that failed has been rolled back."""
    with transaction(sessions) as session:
        run = session.get(BackfillRun, run_id)
        if run is not None:
            run.status = FAILED
            run.error = f"{type(error).__name__}: {error}"[:2000]
