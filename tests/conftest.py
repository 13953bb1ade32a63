"""Fixtures: a real PostgreSQL database migrated by Alembic, real Redis, the app and a shop.

Tests talk to the services DESIGN.md names: ``TEST_DATABASE_URL`` (default a database
``milestones_test`` on 127.0.0.1:5432, created here) and ``TEST_REDIS_URL`` (default db 15).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import text

from plugin import connections
from plugin.app import create_app
from plugin.config import Settings
from plugin.db import make_engine, transaction
from plugin.models import Base
from plugin.schema import upgrade
from plugin.services import Services
from plugin.workspaces import create_workspace
from tests.support import OTHER_TOKEN, SHOP_DOMAIN, SHOP_SECRET

ADMIN_SERVER = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/milestones_test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ADMIN_TOKEN = "test-admin-token"


def _recreate_database() -> None:
    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_SERVER, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


@pytest.fixture(scope="session")
def database_url() -> str:
    _recreate_database()
    upgrade(DATABASE_URL)
    return DATABASE_URL


@pytest.fixture
def clean_database(database_url: str) -> Iterator[str]:
    engine = make_engine(database_url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    connections.forget()
    yield database_url


@pytest.fixture
def redis_client() -> Iterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        testing=True,
        secret_key="test-secret",
        public_url="https://milestones.test",
        **overrides,
    )


@pytest.fixture
def app(clean_database: str) -> Iterator[Flask]:
    """The embedded mode: no Redis, jobs run inline after commit."""
    application = create_app(make_settings(clean_database))
    yield application
    application.extensions["milestones"].close()


@pytest.fixture
def rq_app(clean_database: str, redis_client: Redis) -> Iterator[Flask]:
    """The production mode: jobs go to real RQ on Redis."""
    application = create_app(make_settings(clean_database, redis_url=REDIS_URL))
    yield application
    application.extensions["milestones"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def services_of(app: Flask) -> Services:
    return app.extensions["milestones"]


@pytest.fixture
def workspace(app_under_test: Flask) -> Any:
    with transaction(services_of(app_under_test).sessions) as session:
        ws, _ = create_workspace(session, "Red Hill Fresh", admin_token=ADMIN_TOKEN, currency="USD")
    return ws


@pytest.fixture
def other_workspace(app: Flask) -> Any:
    """A second business on the same database: nothing of it may show in ``workspace``."""
    with transaction(services_of(app).sessions) as session:
        ws, _ = create_workspace(session, "Someone Else's Shop", admin_token=OTHER_TOKEN)
    return ws


@pytest.fixture
def app_under_test(request: pytest.FixtureRequest) -> Flask:
    """``rq_app`` when the test asked for it, else the inline ``app``."""
    if "rq_app" in request.fixturenames:
        return request.getfixturevalue("rq_app")
    return request.getfixturevalue("app")


def add_connection(app: Flask, workspace_id: Any, platform: str, settings: dict[str, Any], name: str = "") -> Any:
    services = services_of(app)
    with transaction(services.sessions) as session:
        return connections.create_connection(
            session, services.secrets, workspace_id=workspace_id, platform=platform,
            name=name or platform.title(), settings=settings,
        )


@pytest.fixture
def shop(app_under_test: Flask, workspace: Any) -> Any:
    return add_connection(
        app_under_test,
        workspace.id,
        "shopify",
        {"shop_domain": SHOP_DOMAIN, "access_token": "shpat_test", "api_secret": SHOP_SECRET,
         "base_url": "https://shop.test"},
    )


@pytest.fixture
def hubspot(app_under_test: Flask, workspace: Any) -> Any:
    return add_connection(
        app_under_test, workspace.id, "hubspot",
        {"access_token": "pat-test", "client_secret": "hs-secret", "base_url": "https://hubspot.test"},
    )


@pytest.fixture
def slack(app_under_test: Flask, workspace: Any) -> Any:
    return add_connection(
        app_under_test, workspace.id, "slack",
        {"bot_token": "xoxb-test", "signing_secret": "slack-secret", "channel": "C0CSM01",
         "base_url": "https://slack.test/api"},
    )


@pytest.fixture
def build(app: Flask, workspace: Any) -> Any:
    """``build(lambda rows: ...)`` runs the builder in one transaction (in the test's workspace, or
    ``workspace_id``) and returns its result."""
    from tests.api.support import build as build_rows

    def run(builder: Any, workspace_id: Any = None) -> Any:
        return build_rows(app, workspace_id or workspace.id, builder)

    return run
