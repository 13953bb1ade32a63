"""The process's long-lived resources, built once by :func:`plugin.app.create_app`.

Job functions run in RQ workers and take ids, not objects; they reach the database and the
queue through :func:`current`. Nothing here is created at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from plugin.config import Settings
from plugin.db import ThreadConnections, make_engine, make_session_factory
from plugin.group_commit import GroupCommit
from plugin.inbox import Rows, group_writer
from plugin.jobs.queue import JobQueue
from plugin.secrets import SecretBox


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    # Each statement commits on its own: for the webhook path (its connection look-ups, and its
    # one INSERT on SQLite) this saves the BEGIN and COMMIT round trips. A pool of its own,
    # created in autocommit, so no checkout pays for switching modes.
    autocommit_sessions: sessionmaker[Session]
    queue: JobQueue
    secrets: SecretBox
    redis: Redis | None
    # PostgreSQL only: the webhook path's INSERTs, grouped, on the server threads' own connections.
    thread_connections: ThreadConnections | None = None
    webhook_inbox: GroupCommit[Rows, list[int]] | None = None

    @classmethod
    def create(cls, settings: Settings) -> Services:
        engine = make_engine(settings.database_url)
        # Nothing to roll back when an autocommit connection goes back to the pool: no reset.
        autocommit_engine = make_engine(settings.database_url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None)
        redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        threads = ThreadConnections(autocommit_engine) if engine.dialect.name == "postgresql" else None
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            autocommit_sessions=make_session_factory(autocommit_engine),
            queue=JobQueue(redis, settings.queue_name),
            secrets=SecretBox.from_key(settings.encryption_key, fallback_seed=settings.secret_key),
            redis=redis,
            thread_connections=threads,
            webhook_inbox=group_writer(threads) if threads is not None else None,
        )

    @property
    def autocommit_engine(self) -> Engine:
        return self.autocommit_sessions.kw["bind"]  # type: ignore[no-any-return]

    def close(self) -> None:
        self.engine.dispose()
        self.autocommit_engine.dispose()
        if self.thread_connections is not None:
            self.thread_connections.close()
        if self.redis is not None:
            self.redis.close()


_current: Services | None = None


def activate(services: Services) -> None:
    global _current
    _current = services


def current() -> Services:
    if _current is None:
        raise RuntimeError("no services: call plugin.create_app() in this process first")
    return _current
