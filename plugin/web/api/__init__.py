"""The admin API under ``/api/``: JSON, a bearer token scoped to one workspace, OpenAPI-described.

One module per resource; each is a blueprint nested in :data:`api`, which ``plugin.app``
registers like any other. The business operations live in :mod:`plugin.admin`, shared with the
settings page; these modules only parse, call and answer. ``/api/openapi.json`` is generated
from the schemas when the blueprint is registered.
"""

from __future__ import annotations

from plugin.web.api import connections, customers, dashboard, definitions, milestones, operations, reviews
from plugin.web.api.core import AdminApi, install

api = AdminApi("api", __name__, url_prefix="/api", description="Customer Milestones admin API")
install(api)
for resource in (
    connections.blp,
    connections.platforms_blp,
    definitions.blp,
    milestones.blp,
    reviews.blp,
    dashboard.blp,
    customers.blp,
    operations.effects,
    operations.inbox,
    operations.tasks,
):
    api.register_blueprint(resource)

__all__ = ["api"]
