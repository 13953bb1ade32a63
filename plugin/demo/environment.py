"""The demo's embedded environment: a fresh migrated database, inline jobs, one workspace, three connections.

Without ``DATABASE_URL`` the demo owns ``./instance/demo.sqlite3`` and starts it afresh every run;
with it, the demo uses that database as it is (it must not hold the demo shop already).
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from plugin.admins import create_admin
from plugin.app import create_app
from plugin.config import from_environment
from plugin.connections import create_connection
from plugin.db import transaction
from plugin.demo.pacing import relaxed_sqlite_sync
from plugin.demo.standins import HUBSPOT, SHOPIFY, SLACK, StandInServer
from plugin.models import AdminUser, Connection
from plugin.schema import upgrade
from plugin.services import Services
from plugin.workspaces import create_workspace

WORKSPACE_NAME = "Red Hill Fresh"
TIMEZONE = "Australia/Melbourne"
CURRENCY = "USD"
SHOP_DOMAIN = "red-hill-fresh.myshopify.com"
SLACK_CHANNEL = "C0CSMCELEB"  # #csm-celebrations
DEMO_DATABASE = "demo.sqlite3"
HUBSPOT_EMAIL_ID = 4_242_001
ADMIN_EMAIL = "admin@redhillfresh.example"


class DemoSetupError(RuntimeError):
    """The demo cannot start (its database already has the demo shop, a port is taken…)."""


@dataclass(frozen=True)
class DemoEnvironment:
    app: Flask
    services: Services
    workspace_id: uuid.UUID
    admin_token: str
    admin_email: str
    admin_password: str
    token_generated: bool
    database_url: str
    fresh_database: bool
    shop_secret: str
    standins: StandInServer


def choose_database(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> tuple[str, bool]:
    """``DATABASE_URL`` when set (used as is), else a fresh ``./instance/demo.sqlite3``. Returns (url, fresh)."""
    env = os.environ if env is None else env
    if env.get("DATABASE_URL"):
        return env["DATABASE_URL"], False
    path = (cwd or Path.cwd()) / "instance" / DEMO_DATABASE
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    return f"sqlite:///{path}", True


def prepare(standins: StandInServer, database_url: str | None = None) -> DemoEnvironment:
    """Migrate, build the app with inline jobs, create the workspace and connect the stand-ins."""
    base = from_environment()
    if database_url:
        url, fresh = database_url, False
    else:
        url, fresh = choose_database()
    upgrade(url)
    token = base.admin_token or secrets.token_urlsafe(24)
    app = create_app(base.with_overrides(database_url=url, redis_url=None, admin_token=token))
    services: Services = app.extensions["milestones"]
    relaxed_sqlite_sync(services.engine)
    shop_secret = "shpss_" + secrets.token_hex(16)
    password = secrets.token_urlsafe(12)
    try:
        workspace_id, token = _create(services, url, token, shop_secret, standins, password)
    except IntegrityError as exc:
        services.close()
        raise DemoSetupError(
            f"{safe_url(url)} already has a workspace with this admin token; unset MILESTONES_ADMIN_TOKEN "
            "or point DATABASE_URL at an empty database"
        ) from exc
    except BaseException:
        services.close()
        raise
    return DemoEnvironment(
        app=app,
        services=services,
        workspace_id=workspace_id,
        admin_token=token,
        admin_email=ADMIN_EMAIL,
        admin_password=password,
        token_generated=base.admin_token is None,
        database_url=url,
        fresh_database=fresh,
        shop_secret=shop_secret,
        standins=standins,
    )


def _create(
    services: Services, url: str, token: str, shop_secret: str, standins: StandInServer, password: str
) -> tuple[uuid.UUID, str]:
    """The workspace with the default catalogue, its admin, and three connections to the stand-ins."""
    with transaction(services.sessions) as session:
        taken = session.execute(
            select(Connection.id).where(Connection.platform == SHOPIFY, Connection.lookup_key == SHOP_DOMAIN)
        ).first()
        if taken is not None:
            raise DemoSetupError(
                f"{safe_url(url)} already has the demo shop {SHOP_DOMAIN} (from an earlier demo?). "
                "Point DATABASE_URL at an empty database, or unset it to use a fresh ./instance/demo.sqlite3."
            )
        workspace, token = create_workspace(
            session, WORKSPACE_NAME, admin_token=token, timezone=TIMEZONE, currency=CURRENCY
        )
        if session.scalar(select(AdminUser.id).where(AdminUser.email == ADMIN_EMAIL)) is not None:
            raise DemoSetupError(f"{safe_url(url)} already has the demo admin {ADMIN_EMAIL}; use an empty database")
        create_admin(session, workspace.id, ADMIN_EMAIL, password, name="Demo admin")
        connect: dict[str, tuple[str, dict[str, Any]]] = {
            SHOPIFY: ("Red Hill Fresh (Shopify)", {
                "shop_domain": SHOP_DOMAIN, "api_secret": shop_secret, "access_token": "shpat_demo_" + secrets.token_hex(8),
            }),
            HUBSPOT: ("Red Hill Fresh CRM (HubSpot)", {
                "access_token": "pat-demo-" + secrets.token_hex(8), "client_secret": secrets.token_hex(16),
                "email_templates": {"*": HUBSPOT_EMAIL_ID},  # one transactional email for every template
            }),
            SLACK: ("CSM celebrations (Slack)", {
                "bot_token": "xoxb-demo-" + secrets.token_hex(8), "signing_secret": secrets.token_hex(16),
                "channel": SLACK_CHANNEL,
            }),
        }
        for platform, (name, settings) in connect.items():
            create_connection(
                session, services.secrets, workspace_id=workspace.id, platform=platform, name=name,
                settings={**settings, "base_url": standins.base_url(platform)},
            )
        return workspace.id, token


def safe_url(url: str) -> str:
    """A database URL without its credentials, for messages."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://…@{rest.split('@', 1)[1]}"
