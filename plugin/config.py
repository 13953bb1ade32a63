"""Configuration from the environment names of DESIGN.md, read once by :func:`create_app`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None = None
    admin_token: str | None = None
    secret_key: str = "dev-secret-key-change-me"
    encryption_key: str | None = None
    public_url: str = "http://localhost:8000"
    max_webhook_bytes: int = 1_048_576
    drain_batch_size: int = 500
    effect_batch_size: int = 50
    effect_max_attempts: int = 8
    queue_name: str = "milestones"
    testing: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def inline_jobs(self) -> bool:
        """No ``REDIS_URL`` means the embedded default: jobs run in-process after commit."""
        return not self.redis_url

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def default_database_url(instance_dir: Path | None = None) -> str:
    """SQLite under ``./instance`` of the directory the command runs in (the embedded default)."""
    return f"sqlite:///{(instance_dir or Path.cwd() / 'instance') / 'milestones.sqlite3'}"


def from_environment(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    return Settings(
        database_url=env.get("DATABASE_URL") or default_database_url(),
        redis_url=env.get("REDIS_URL") or None,
        admin_token=env.get("MILESTONES_ADMIN_TOKEN") or None,
        secret_key=env.get("MILESTONES_SECRET_KEY") or Settings.secret_key,
        encryption_key=env.get("MILESTONES_ENCRYPTION_KEY") or None,
        public_url=(env.get("MILESTONES_PUBLIC_URL") or Settings.public_url).rstrip("/"),
        max_webhook_bytes=int(env.get("MILESTONES_MAX_WEBHOOK_BYTES") or Settings.max_webhook_bytes),
        drain_batch_size=int(env.get("MILESTONES_DRAIN_BATCH_SIZE") or Settings.drain_batch_size),
    )


def build(config: Settings | dict[str, Any] | None) -> Settings:
    """Settings from the environment, with ``config`` (a Settings or a dict of fields) on top."""
    if isinstance(config, Settings):
        return config
    base = from_environment()
    return base.with_overrides(**(config or {}))
