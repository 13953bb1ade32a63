"""How the demo keeps a years-long replay quick on SQLite without changing what happens.

Inline (no Redis), every webhook runs the drain job right after its commit: a batch of one
delivery, tens of milliseconds each on SQLite. A real worker catches up in batches instead. While
the replay runs, :func:`jobs_in_batches` holds the inline jobs back and lets them run every few
hundred deliveries: the same jobs (``drain_inbox``, ``run_effects``) on the same rows, in arrival
order, with the same results, just fewer and larger batches.

:func:`relaxed_sqlite_sync` turns SQLite's per-commit fsync down to WAL's ``synchronous=NORMAL``
for the demo's own database: still crash-safe, without a disk flush on every commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, event, func, select

from plugin.db import utcnow
from plugin.jobs.queue import JobQueue
from plugin.jobs.sweeper import sweep
from plugin.models import Effect
from plugin.models import effect as effect_status
from plugin.services import Services


class HeldQueue(JobQueue):
    """An inline queue whose nudges wait until :meth:`release` (one run per lane)."""

    def __init__(self, name: str) -> None:
        super().__init__(None, name)
        self.holding = True
        self.held: dict[str, Callable[..., Any]] = {}
        self.releases = 0

    def nudge(self, func: Callable[..., Any], lane: str, job_suffix: str = "", *, memo: bool = False) -> bool:
        if self.holding:
            self.held.setdefault(lane, func)
            return True
        return super().nudge(func, lane, job_suffix, memo=memo)

    def release(self) -> None:
        """Run the held jobs now, inline; jobs they nudge run straight away too."""
        self.holding = False
        try:
            while self.held:
                lane = next(iter(self.held))
                func = self.held.pop(lane)
                super().nudge(func, lane)
        finally:
            self.holding = True
            self.releases += 1


@contextmanager
def jobs_in_batches(services: Services) -> Iterator[HeldQueue]:
    """Swap in a :class:`HeldQueue` for the block; release it at the end and put the inline queue back."""
    original = services.queue
    if not original.inline:
        raise RuntimeError("jobs_in_batches is for the inline (no Redis) mode")
    held = HeldQueue(original.name)
    services.queue = held
    try:
        yield held
        held.release()
    finally:
        services.queue = original


def sweep_until_settled(services: Services, patience: timedelta = timedelta(seconds=40)) -> dict[str, int]:
    """One sweep, as ``milestones scheduler`` would do it; then, if effects are due within
    ``patience`` (an email waiting a moment for its milestone's rewards), wait for them and sweep
    again. Returns what the first sweep found waiting."""
    found = sweep()
    for _ in range(3):
        with services.sessions() as session:
            due = session.scalar(
                select(func.min(Effect.next_attempt_at)).where(Effect.status == effect_status.PENDING)
            )
        if due is None or due - utcnow() > patience:
            break
        time.sleep(max(0.0, (due - utcnow()).total_seconds()) + 0.1)
        sweep()
    return found


def relaxed_sqlite_sync(engine: Engine) -> None:
    """``PRAGMA synchronous=NORMAL`` on every new connection of a SQLite engine (no-op elsewhere)."""
    if engine.dialect.name != "sqlite":
        return

    def _normal_sync(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(engine, "connect", _normal_sync)
    engine.dispose()  # connections opened before the listener get replaced
