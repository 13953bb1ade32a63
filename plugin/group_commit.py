"""Many threads' writes in one database round trip ("group commit").

A server process answers webhooks on several threads, and each answer waits for its row to be
committed. Each commit is a round trip to PostgreSQL, and on a small machine the wake-ups of
that round trip (the backend on one CPU, the server thread on the other) cost more than the
INSERT itself. :class:`GroupCommit` lets whichever thread arrives first write what every
waiting thread has brought, in one statement; the others sleep until it is done and then get
their own part of the result — still only after it was committed, so nothing is answered early.

No thread waits for a timer: a batch is simply everything that arrived while the previous one
was being written, so a lone request goes straight through.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Waiter(Generic[Item, Result]):
    __slots__ = ("item", "woken", "done", "result", "error")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.woken = threading.Event()
        self.done = False
        self.result: Result | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[Item, Result]):
    """``submit(item)`` from any thread returns ``flush([…, item, …])``'s result for ``item``.

    ``flush`` gets the items of a batch in arrival order and returns one result per item, in the
    same order; if it raises, every item of that batch raises the same error.
    """

    def __init__(self, flush: Callable[[list[Item]], list[Result]]) -> None:
        self._flush = flush
        self._lock = threading.Lock()
        self._pending: list[_Waiter[Item, Result]] = []
        self._writing = False  # a thread is writing a batch: newcomers wait for the next one

    def submit(self, item: Item) -> Result:
        me: _Waiter[Item, Result] = _Waiter(item)
        with self._lock:
            self._pending.append(me)
            lead = not self._writing
            self._writing = True
        if not lead:
            me.woken.wait()
        if not me.done:  # first, or handed the next batch by the thread that wrote the last one
            self._write_batch()
        if me.error is not None:
            raise me.error
        return me.result  # type: ignore[return-value]

    def _write_batch(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        try:
            results = self._flush([w.item for w in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"flush returned {len(results)} results for {len(batch)} items")
            for waiter, result in zip(batch, results, strict=True):
                waiter.result = result
        except BaseException as exc:  # noqa: BLE001 — every waiter must learn of it, not just this thread
            for waiter in batch:
                waiter.error = exc
        finally:
            with self._lock:
                following = self._pending[0] if self._pending else None
                self._writing = following is not None
            for waiter in batch:
                waiter.done = True
                waiter.woken.set()
            if following is not None:
                following.woken.set()  # not done: it writes the batch that gathered meanwhile
