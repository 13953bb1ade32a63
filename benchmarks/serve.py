"""gunicorn exactly as ``milestones serve`` runs it, serving the real app or the bare HMAC endpoint.

``python serve.py ingest|bare --bind H:P --workers W --threads T`` calls
:func:`plugin.wsgi_server.run_gunicorn` for both, so the two endpoints share every gunicorn
setting; for ``bare`` the app factory it loads is swapped for :data:`bare_app.app`.
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("app", choices=["ingest", "bare"])
    parser.add_argument("--bind", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    if args.app == "bare":
        from bare_app import app

        import plugin.app

        plugin.app.create_app = lambda config=None: app  # what run_gunicorn's loader calls
    from plugin.wsgi_server import run_gunicorn

    run_gunicorn(bind=args.bind, workers=args.workers, threads=args.threads)


if __name__ == "__main__":
    main()
