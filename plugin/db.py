"""Engine, session factory and the column types shared by every model.

PostgreSQL is the production database; SQLite is the embedded default of ``milestones demo``.
The types here make both behave the same for what we rely on: aware UTC datetimes, JSON, exact
decimals.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, Numeric, and_, create_engine, event, false, or_
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on PostgreSQL (timestamptz) and SQLite (text) alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store aware UTC datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
Money = Numeric(18, 2, asdecimal=True)
MetricValue = Numeric(30, 6, asdecimal=True)


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping (a round trip per checkout on the webhook path); stale connections are
    # recycled, and one that died anyway fails its request into the 503 path.
    kwargs.setdefault("pool_recycle", 1800)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL's recommended durability: a commit survives an application crash, fsync at checkpoints.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


class ThreadConnections:
    """One autocommit driver connection per thread, kept for the thread's life.

    For the webhook path's one INSERT, whose SQLAlchemy execution and pool checkout cost more
    CPU than the database's work of storing the row. A server thread handles one request at a
    time, so a connection of its own needs no pool: no checkout, no check-in, no lock. It is made
    with exactly the arguments the engine's pool would use. A connection that raised is closed
    and replaced on the thread's next use (it may be dead: a restarted server, a killed backend),
    and one older than ``recycle`` seconds too, as the engine's pool recycles its own.
    """

    def __init__(self, engine: Engine, recycle: float = 1800.0) -> None:
        self._connect = engine.dialect.loaded_dbapi.connect  # the driver the engine uses (psycopg)
        self._args, self._kwargs = engine.dialect.create_connect_args(engine.url)
        self._kwargs = {**self._kwargs, "autocommit": True}
        self._recycle = recycle
        self._local = threading.local()
        self._open: set[Any] = set()  # every thread's, so close() reaches them all
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        local = self._local
        driver = getattr(local, "driver", None)
        if driver is None or driver.closed or time.monotonic() - local.opened > self._recycle:
            self._discard(driver)
            driver = self._connect(*self._args, **self._kwargs)
            local.driver, local.opened = driver, time.monotonic()
            with self._lock:
                self._open.add(driver)
        try:
            yield driver
        except BaseException:
            self._discard(driver)
            local.driver = None
            raise

    def _discard(self, driver: Any) -> None:
        if driver is None:
            return
        with self._lock:
            self._open.discard(driver)
        driver.close()

    def close(self) -> None:
        with self._lock:
            drivers, self._open = list(self._open), set()
        for driver in drivers:
            driver.close()


def upsert_statement(session: Session, table: Any) -> Any:
    """``INSERT`` of the session's dialect, which has ``on_conflict_do_nothing``/``do_update``."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def pairs_in(first: Any, second: Any, pairs: Iterable[tuple[Any, Any]]) -> Any:
    """``(first, second) IN pairs`` written as ``first = a AND second IN (…)`` per distinct ``a``.

    A row-value ``IN`` list is planned by PostgreSQL as an index scan on ``first`` alone, then
    a filter comparing every row of that ``first`` with every pair — with one connection per
    batch that grew with the whole ledger (100+ ms per batch of 500 at 8,000 orders). Grouped,
    each branch is an index scan on the composite unique key.
    """
    grouped: dict[Any, list[Any]] = {}
    for a, b in pairs:
        grouped.setdefault(a, []).append(b)
    if not grouped:
        return false()
    return or_(*(and_(first == a, second.in_(bs)) for a, bs in grouped.items()))
