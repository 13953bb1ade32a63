"""Fixtures for the admin API tests: a row builder."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from plugin.db import transaction
from tests.api.support import Rows
from tests.conftest import services_of


@pytest.fixture
def build(app: Flask, workspace: Any) -> Callable[..., Any]:
    """``build(lambda rows: ...)`` runs the builder in one transaction and returns its result."""

    def run(builder: Callable[[Rows], Any], workspace_id: uuid.UUID | None = None) -> Any:
        with transaction(services_of(app).sessions) as session:
            return builder(Rows(session, workspace_id or workspace.id))

    return run
