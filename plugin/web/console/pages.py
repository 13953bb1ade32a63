"""The list of page blueprints nested in the console, in navigation order."""

from __future__ import annotations

from flask import Blueprint

from plugin.web.console.catalogue import bp as catalogue
from plugin.web.console.connections import connections
from plugin.web.console.dashboard import bp as dashboard
from plugin.web.console.milestones import bp as milestones
from plugin.web.console.operations import operations
from plugin.web.console.reviews import bp as reviews
from plugin.web.console.templates_page import bp as templates

BLUEPRINTS: list[Blueprint] = []
BLUEPRINTS += [connections, operations]
BLUEPRINTS += [catalogue, templates]
BLUEPRINTS += [dashboard, milestones, reviews]
