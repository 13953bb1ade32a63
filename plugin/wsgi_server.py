"""gunicorn, embedded, serving :func:`plugin.app.create_app` (never Flask's dev server)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from plugin.app import create_app

        return create_app()


def run_gunicorn(*, bind: str, workers: int, threads: int, **extra: Any) -> None:
    options = {
        "bind": bind,
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "accesslog": None,
        "keepalive": 5,
        **extra,
    }
    _Gunicorn(options).run()
