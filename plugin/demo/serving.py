"""Serving the demo's app after the replay: gunicorn, like ``milestones serve``, on the demo's database.

The worker builds its own app from the demo's settings (same database, inline jobs), so nothing
opened before the fork is used after it. The stand-ins keep running in this (the master) process,
so effects the served app runs — a retried effect, a new webhook — still reach them.
"""

from __future__ import annotations

import socket
from typing import Any

from gunicorn.app.base import BaseApplication

from plugin.config import Settings


class _DemoGunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from plugin.app import create_app

        return create_app(self.settings)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def serve(settings: Settings, port: int, host: str = "127.0.0.1") -> None:
    """Serve until Ctrl-C. gunicorn exits through ``SystemExit``; that ends serving, nothing more."""
    options = {
        "bind": f"{host}:{port}",
        "workers": 1,  # one SQLite writer; threads share it
        "threads": 4,
        "worker_class": "gthread",
        "accesslog": "-",
        "graceful_timeout": 5,
    }
    try:
        _DemoGunicorn(settings, options).run()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
