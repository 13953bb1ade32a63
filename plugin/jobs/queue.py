"""One way to hand work to workers, with RQ on ``REDIS_URL`` or inline without it.

Work is *nudged*, not enqueued per item: a job drains every pending row it can claim, so the
queue needs at most one waiting job per lane. A nudge sets a short-lived Redis flag with
``SET NX``; only the caller that set it enqueues, and the job clears the flag before it starts
claiming, so a row committed after that clear nudges a fresh job (no lost wake-up). If Redis
is down the nudge is skipped: the rows are safe in PostgreSQL and the sweeper nudges later.

With ``memo``, a process that saw the flag set (it set it, or found it set) skips the Redis
round trip for the next :data:`NUDGE_MEMO_SECONDS`: a job whose flag was set then has not started yet, or
started after that moment — and a job lingers that long, and looks once more, before it stops
(:func:`plugin.jobs.drain.drain_inbox`). So a row committed inside the window is still seen.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry

log = logging.getLogger(__name__)

NUDGE_TTL_SECONDS = 120
NUDGE_MEMO_SECONDS = 0.05
JOB_TIMEOUT_SECONDS = 600


class JobQueue:
    def __init__(self, redis: Redis | None, name: str = "milestones") -> None:
        self.redis = redis
        self.name = name
        self.rq = Queue(name, connection=redis) if redis is not None else None
        self._local = threading.local()  # lanes running inline on this thread
        self._flag_seen: dict[str, float] = {}  # lane → when this process last saw its flag set

    @property
    def inline(self) -> bool:
        return self.rq is None

    def _flag(self, lane: str) -> str:
        return f"{self.name}:nudge:{lane}"

    def nudge(self, func: Callable[..., Any], lane: str, job_suffix: str = "", *, memo: bool = False) -> bool:
        """Make sure a job ``func(lane)`` will run soon. True if this call enqueued it.

        ``memo`` allows skipping Redis for :data:`NUDGE_MEMO_SECONDS` after the flag was seen set;
        only for a lane whose job lingers that long before it stops (the inbox drain)."""
        if self.rq is None:
            self._run_inline(func, lane)
            return True
        now = time.monotonic()
        if memo and now - self._flag_seen.get(lane, -NUDGE_MEMO_SECONDS) < NUDGE_MEMO_SECONDS:
            return False
        try:
            if not self.redis.set(self._flag(lane), job_suffix or "1", nx=True, ex=NUDGE_TTL_SECONDS):  # type: ignore[union-attr]
                self._flag_seen[lane] = now
                return False
            self.rq.enqueue(
                func,
                lane,
                job_id=f"{lane}-{job_suffix}" if job_suffix else None,
                job_timeout=JOB_TIMEOUT_SECONDS,
                result_ttl=0,
                failure_ttl=86_400,
            )
            self._flag_seen[lane] = now
            return True
        except RedisError as exc:
            log.warning("could not nudge %s (%s); the sweeper will pick the work up", lane, exc)
            self._forget_flag(lane)
            return False

    def clear_nudge(self, lane: str) -> None:
        """Called by a job as it starts, so that new work arriving now nudges a new job."""
        if self.redis is not None:
            self._forget_flag(lane)

    def _forget_flag(self, lane: str) -> None:
        with contextlib.suppress(RedisError):
            self.redis.delete(self._flag(lane))  # type: ignore[union-attr]

    def enqueue(self, func: Callable[..., Any], *args: Any, retry: Retry | None = None) -> None:
        """Run ``func(*args)`` once in a worker (inline without Redis, or when Redis is down:
        the caller has already committed what the job needs, and must not lose the work)."""
        if self.rq is not None:
            try:
                self.rq.enqueue(func, *args, retry=retry, job_timeout=JOB_TIMEOUT_SECONDS, result_ttl=0,
                                failure_ttl=86_400)
                return
            except RedisError as exc:
                log.warning("could not enqueue %s (%s); running it here", getattr(func, "__name__", func), exc)
        func(*args)

    def enqueue_at(self, when: datetime, func: Callable[..., Any], lane: str) -> None:
        """Run ``func(lane)`` no sooner than ``when`` (a retry after backoff).

        Needs a worker started with the scheduler (``milestones worker`` does); inline, the
        due work waits for the next sweep.
        """
        if self.rq is None:
            return
        try:
            self.rq.enqueue_at(when, func, lane, job_timeout=JOB_TIMEOUT_SECONDS, result_ttl=0)
        except RedisError as exc:
            log.warning("could not schedule %s (%s); the sweeper will pick it up", lane, exc)

    def _run_inline(self, func: Callable[..., Any], lane: str) -> None:
        # A job that nudges its own lane while running inline would recurse; the running
        # job drains until empty anyway, so the nested nudge has nothing to add.
        running: set[str] = self._local.__dict__.setdefault("running", set())
        if lane in running:
            return
        running.add(lane)
        try:
            func(lane)
        finally:
            running.discard(lane)

    def depth(self) -> int | None:
        """Jobs waiting in the queue (None inline or when Redis does not answer)."""
        if self.rq is None:
            return None
        try:
            return self.rq.count
        except RedisError:
            return None
