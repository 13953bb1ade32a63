"""Connections to platforms: settings with secrets masked, test, webhook registration; platforms' forms.

Saving a connection of a platform we register webhooks with (Shopify, WooCommerce) registers
them right after the commit, and the answer carries the per-topic outcome as ``webhooks``.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from connectors.registry import CONNECTORS
from plugin import connections as connection_cache
from plugin import webhook_subscriptions
from plugin.admin import connections as service
from plugin.models import Connection
from plugin.web.api.core import Resource, paginate, services, session, workspace_id
from plugin.web.api.schemas import PageArgs, page_of, text, when

blp = Resource("connections", __name__, description="Connected platforms: store, CRM, Slack, email, usage")
platforms_blp = Resource("platforms", __name__, description="Platforms and their settings forms")


class NewConnectionSchema(Schema):
    platform = fields.String(required=True, validate=validate.OneOf(sorted(CONNECTORS)))
    name = text(255, required=True)
    settings = fields.Dict(required=True, metadata={"description": "the platform's settings (GET /api/platforms)"})


class ConnectionChangesSchema(Schema):
    name = text(255)
    settings = fields.Dict(metadata={"description": "merged into the stored settings; a secret sent back "
                                                    "masked keeps the stored one"})


class WebhookStatusSchema(Schema):
    checked_at = fields.String()
    address = fields.String()
    topics = fields.Dict(keys=fields.String(), values=fields.String())


class ConnectionSchema(Schema):
    id = fields.UUID(required=True)
    platform = fields.String()
    name = fields.String()
    status = fields.String(metadata={"description": "active, or uninstalled by the platform"})
    webhook_url = fields.String(allow_none=True, metadata={"description": "where the platform must send to us"})
    settings = fields.Dict(metadata={"description": "secrets masked"})
    webhook_status = fields.Nested(WebhookStatusSchema, allow_none=True)
    webhooks = fields.Dict(keys=fields.String(), values=fields.String(),
                           metadata={"description": "per topic outcome of the registration this request made"})
    last_error = fields.String(allow_none=True)
    last_webhook_at = when(allow_none=True)
    created_at = when()
    updated_at = when()


class CheckSchema(Schema):
    ok = fields.Boolean(required=True)
    error = fields.String()


class TopicsSchema(Schema):
    webhook_url = fields.String(allow_none=True)
    topics = fields.Dict(keys=fields.String(), values=fields.String())


class FieldSchema(Schema):
    name = fields.String()
    type = fields.String(metadata={"description": "text, url, email, integer or boolean"})
    label = fields.String()
    help = fields.String(allow_none=True)
    secret = fields.Boolean()
    required = fields.Boolean()
    default = fields.Raw(allow_none=True)
    choices = fields.List(fields.Raw(), allow_none=True)


class PlatformSchema(Schema):
    platform = fields.String()
    kind = fields.String()
    capabilities = fields.List(fields.String())
    registers_webhooks = fields.Boolean()
    receives_webhooks = fields.Boolean()
    fields_ = fields.List(fields.Nested(FieldSchema), data_key="fields")


@platforms_blp.route("/platforms")
@platforms_blp.arguments(PageArgs, location="query")
@platforms_blp.response(200, page_of(PlatformSchema))
def list_platforms(args: dict[str, Any]) -> Any:
    every = [{**p, "fields_": p.pop("fields")} for p in service.platforms()]
    start = (args["page"] - 1) * args["per_page"]
    return {"items": every[start : start + args["per_page"]], "total": len(every), "page": args["page"],
            "per_page": args["per_page"]}


@blp.route("/connections")
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(ConnectionSchema))
def list_connections(args: dict[str, Any]) -> Any:
    query = (
        select(Connection)
        .where(Connection.workspace_id == workspace_id(), Connection.status != service.DISCONNECTED)
        .order_by(Connection.created_at, Connection.id)
    )
    return paginate(query, args, _describe)


@blp.route("/connections", methods=["POST"])
@blp.arguments(NewConnectionSchema)
@blp.response(201, ConnectionSchema)
def create_connection(body: dict[str, Any]) -> Any:
    db = session()
    row = service.create(db, services().secrets, workspace_id(), platform=body["platform"], name=body["name"],
                         settings=body["settings"])
    db.commit()
    connection_cache.forget()
    return _describe(row, webhooks=_register(row))


@blp.route("/connections/<uuid:connection_id>")
@blp.response(200, ConnectionSchema)
def get_connection(connection_id: uuid.UUID) -> Any:
    return _describe(service.get(session(), workspace_id(), connection_id))


@blp.route("/connections/<uuid:connection_id>", methods=["PATCH"])
@blp.arguments(ConnectionChangesSchema)
@blp.response(200, ConnectionSchema)
def update_connection(body: dict[str, Any], connection_id: uuid.UUID) -> Any:
    db = session()
    row = service.get(db, workspace_id(), connection_id)
    service.update(db, services().secrets, row, name=body.get("name"), settings=body.get("settings"))
    db.commit()
    connection_cache.forget()
    return _describe(row, webhooks=_register(row) if "settings" in body else None)


@blp.route("/connections/<uuid:connection_id>", methods=["DELETE"])
@blp.response(204)
def delete_connection(connection_id: uuid.UUID) -> Any:
    """Disconnect: webhooks to it are ignored from now on; its history stays."""
    db = session()
    service.disconnect(service.get(db, workspace_id(), connection_id))
    db.commit()
    connection_cache.forget()
    return Response(status=204)


@blp.route("/connections/<uuid:connection_id>/test", methods=["POST"])
@blp.response(200, CheckSchema)
def test_connection(connection_id: uuid.UUID) -> Any:
    """One authenticated call to the platform with the stored credentials."""
    ok, problem = service.check(service.get(session(), workspace_id(), connection_id), services().secrets)
    return {"ok": ok, "error": problem} if problem else {"ok": ok}


@blp.route("/connections/<uuid:connection_id>/webhooks", methods=["GET"])
@blp.response(200, TopicsSchema)
def check_webhooks(connection_id: uuid.UUID) -> Any:
    """Per topic, whether the platform still delivers it here (asks the platform)."""
    row = service.get(session(), workspace_id(), connection_id)
    session().commit()  # end the read: the check records its outcome in a transaction of its own
    return {"webhook_url": _url(row), "topics": webhook_subscriptions.check(services(), row.id)}


@blp.route("/connections/<uuid:connection_id>/webhooks", methods=["POST"])
@blp.response(200, TopicsSchema)
def register_webhooks(connection_id: uuid.UUID) -> Any:
    """Re-register: create whatever topic is missing or disabled."""
    row = service.get(session(), workspace_id(), connection_id)
    session().commit()
    return {"webhook_url": _url(row), "topics": _register(row) or {}}


def _register(row: Connection) -> dict[str, str] | None:
    if row.status != service.ACTIVE or not webhook_subscriptions.supports_registration(row.platform):
        return None
    return webhook_subscriptions.register(services(), row.id)


def _url(row: Connection) -> str | None:
    return service.webhook_url(services().settings.public_url, row.platform, row.id)


def _describe(row: Connection, webhooks: dict[str, str] | None = None) -> dict[str, Any]:
    if webhooks is not None:
        session().refresh(row)  # the registration recorded its outcome in a session of its own
    data: dict[str, Any] = {
        "id": row.id,
        "platform": row.platform,
        "name": row.name,
        "status": row.status,
        "webhook_url": _url(row),
        "settings": service.masked_settings(row, services().secrets),
        "webhook_status": row.webhook_status or None,
        "last_error": row.last_error,
        "last_webhook_at": row.last_webhook_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
    if webhooks is not None:
        data["webhooks"] = webhooks
    return data
