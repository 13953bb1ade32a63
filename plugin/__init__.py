"""Customer Milestones: the core (app factory, models, milestone engine, jobs, admin, CLI).

``plugin`` speaks only in canonical events (:mod:`plugin.events`) and effects; how a platform
talks to us lives in ``webhooks/`` and how we talk to it in ``connectors/``.
"""

from plugin.app import create_app

__all__ = ["create_app"]
