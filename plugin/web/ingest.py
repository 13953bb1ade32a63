"""Inbound webhooks: verify, store in the inbox, nudge a drain job, answer 200 in milliseconds.

Nothing is parsed beyond what dedupe needs; the work happens in :mod:`plugin.pipeline.drain`.
The order of steps is the guarantee: the row is committed before we answer 200, so a 200
never loses an event; if Redis is down the row waits for the sweeper; if the database is down
we answer 503 and the platform retries.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from plugin import connections
from plugin.inbox import store_items
from plugin.jobs.drain import drain_inbox
from plugin.services import Services
from webhooks.base import MalformedDelivery
from webhooks.registry import source_for

log = logging.getLogger(__name__)

ingest = Blueprint("ingest", __name__)


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


@ingest.post("/webhooks/shopify")
def shopify() -> Any:
    return receive("shopify", None)


@ingest.post("/webhooks/<platform>/<connection_id>")
def by_connection(platform: str, connection_id: str) -> Any:
    return receive(platform, connection_id)


def receive(platform: str, connection_id: str | None) -> Any:
    services: Services = current_app.extensions["milestones"]
    source = source_for(platform)
    if source is None:
        return _error(404, f"no webhook source for platform '{platform}'")
    limit = services.settings.max_webhook_bytes
    if request.content_length is not None and request.content_length > limit:
        return _error(413, f"body over {limit} bytes")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        return _error(413, f"body over {limit} bytes")
    headers = cast(Mapping[str, str], request.headers)  # werkzeug Headers: case-insensitive

    reply = source.reply_without_storing(body, headers)
    if reply is not None:
        return Response(reply.body, status=reply.status)
    try:
        ref = source.connection_ref(headers, connection_id)
    except MalformedDelivery as exc:
        return _error(400, str(exc))

    try:
        with services.sessions() as session:
            connection = connections.find_inbound(
                session,
                services.secrets,
                platform,
                connection_id=ref.connection_id,
                lookup_key=ref.lookup_key,
            )
            if connection is None:
                return _error(404, f"no {platform} connection for this webhook")
            if connection.status == "disconnected":
                # Its secrets are gone, so nothing can be verified; nothing is stored either.
                return jsonify(status="ignored", reason="connection is disconnected"), 200
            url = services.settings.public_url + request.full_path.rstrip("?")
            verdict = source.verify(
                body, headers, connection.secret_values(source.secret_settings), url=url, method=request.method
            )
            if not verdict.ok:
                log.info("rejected %s webhook for %s: %s", platform, connection.id, verdict.reason)
                return _error(401, f"signature verification failed: {verdict.reason}")
            try:
                items = source.items(body, headers)
            except MalformedDelivery as exc:
                return _error(400, str(exc))
            if connection.status != "active":
                items = [i for i in items if i.topic in source.after_uninstall_topics]
                if not items:
                    return jsonify(status="ignored", reason=f"connection is {connection.status}"), 200
            new_ids = store_items(session, connection.workspace_id, connection.id, connection.platform, items)
            first_new = new_ids[0] if new_ids else None
            session.commit()
    except SQLAlchemyError:
        log.exception("database unavailable while storing a %s webhook", platform)
        return _error(503, "temporarily unavailable, retry later")

    if first_new is not None:
        services.queue.nudge(drain_inbox, "inbox", job_suffix=str(first_new))
    return jsonify(status="accepted" if first_new is not None else "duplicate"), 200
