"""The errors an admin operation raises; the API and the settings page turn them into answers."""

from __future__ import annotations

from typing import Any


class AdminError(Exception):
    status = 400

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Invalid(AdminError):
    """The input is well-formed but not acceptable (a bad condition, a bad setting)."""

    status = 400


class NotFound(AdminError):
    """No such row in this workspace (another workspace's ids are not found either)."""

    status = 404


class Conflict(AdminError):
    """The row is not in a state that allows this (retrying an effect that is not dead)."""

    status = 409
