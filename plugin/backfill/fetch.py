"""Calling a platform page by page: transient failures wait and try again, permanent ones stop.

A backfill reads thousands of pages; a throttled or briefly failing call should not end it. The
connector's :class:`~connectors.errors.ConnectorError` already says which failures are worth
another try and how long the platform asked us to wait (``Retry-After``, Shopify's cost bucket).
Whatever is still failing after the last attempt stops the run, which resumes from its cursor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from connectors.errors import ConnectorError

T = TypeVar("T")

ATTEMPTS = 5
MAX_WAIT = 60.0


def with_retries(call: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep, attempts: int = ATTEMPTS) -> T:
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except ConnectorError as exc:
            if exc.permanent or attempt == attempts:
                raise
            sleep(min(MAX_WAIT, exc.retry_after if exc.retry_after is not None else 2.0**attempt))
    raise AssertionError("unreachable")
