"""The list of page blueprints nested in the console, in navigation order."""

from __future__ import annotations

from flask import Blueprint

BLUEPRINTS: list[Blueprint] = []
