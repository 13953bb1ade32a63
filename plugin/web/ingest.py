"""Inbound webhooks: verify, store in the inbox, nudge a drain job, answer 200 in milliseconds.

Nothing is parsed beyond what dedupe needs; the work happens in :mod:`plugin.jobs.drain`.
The order of steps is the guarantee: the row is committed before we answer 200, so a 200
never loses an event; if Redis is down the row waits for the sweeper; if the database is down
we answer 503 and the platform retries.

This is the one hot path of the service (every platform event crosses it, in bursts), so it is
a plain WSGI application mounted in front of Flask by :func:`mount` rather than a Flask view:
headers are read once from the WSGI environ, the one INSERT runs through the driver on an
autocommit connection (:func:`plugin.inbox.receive`: no BEGIN/COMMIT round trips, no ORM) and
answers are pre-encoded JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from sqlalchemy.exc import SQLAlchemyError

from plugin import connections, inbox
from plugin.jobs.drain import drain_inbox
from plugin.services import Services
from webhooks.base import MalformedDelivery
from webhooks.reading import RequestHeaders
from webhooks.registry import source_for

log = logging.getLogger(__name__)

PREFIX = "/webhooks/"
# The routes this endpoint answers (the manifest lists them; tests check it).
ROUTES = ("/webhooks/shopify", "/webhooks/<platform>/<connection_id>")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
JSON_HEADERS = [("Content-Type", "application/json")]
ACCEPTED = b'{"status":"accepted"}'
DUPLICATE = b'{"status":"duplicate"}'
REASONS = {200: "OK", 400: "BAD REQUEST", 401: "UNAUTHORIZED", 404: "NOT FOUND", 405: "METHOD NOT ALLOWED",
           413: "REQUEST ENTITY TOO LARGE", 503: "SERVICE UNAVAILABLE"}

Answer = tuple[int, bytes, str]  # status, body, content type


def mount(flask_wsgi: WSGIApp, services: Services) -> WSGIApp:
    """``flask_wsgi`` with every path under ``/webhooks/`` answered by :class:`WebhookEndpoint`."""
    endpoint = WebhookEndpoint(services)

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(PREFIX):
            return endpoint(environ, start_response)
        return flask_wsgi(environ, start_response)

    return dispatch


class WebhookEndpoint:
    def __init__(self, services: Services) -> None:
        self.services = services

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        status, body, content_type = self.answer(environ)
        start_response(f"{status} {REASONS.get(status, 'OK')}",
                       [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    def answer(self, environ: dict[str, Any]) -> Answer:
        parts = environ.get("PATH_INFO", "")[len(PREFIX):].split("/")
        if parts == ["shopify"]:
            platform, connection_id = "shopify", None
        elif len(parts) == 2 and all(parts):
            platform, connection_id = parts[0], parts[1]
        else:
            return _error(404, "no such webhook endpoint")
        if environ.get("REQUEST_METHOD") != "POST":
            return _error(405, "webhooks are POSTed")
        return self.receive(platform, connection_id, environ)

    def receive(self, platform: str, connection_id: str | None, environ: dict[str, Any]) -> Answer:
        services = self.services
        source = source_for(platform)
        if source is None:
            return _error(404, f"no webhook source for platform '{platform}'")
        limit = services.settings.max_webhook_bytes
        length = _content_length(environ)
        if length is not None and length > limit:
            return _error(413, f"body over {limit} bytes")
        body = _read_body(environ, length, limit)
        if len(body) > limit:
            return _error(413, f"body over {limit} bytes")
        headers = RequestHeaders(environ)

        reply = source.reply_without_storing(body, headers)
        if reply is not None:
            return reply.status, reply.body.encode(), "text/plain; charset=utf-8"
        try:
            ref = source.connection_ref(headers, connection_id)
        except MalformedDelivery as exc:
            return _error(400, str(exc))

        try:
            connection = connections.find_inbound(
                services.autocommit_sessions, services.secrets, platform,
                connection_id=ref.connection_id, lookup_key=ref.lookup_key,
            )
        except SQLAlchemyError:
            return self._unavailable(platform)
        if connection is None:
            return _error(404, f"no {platform} connection for this webhook")
        if connection.status == "disconnected":
            # Its secrets are gone, so nothing can be verified; nothing is stored either.
            return _json(200, {"status": "ignored", "reason": "connection is disconnected"})
        verdict = source.verify(
            body, headers, connection.secret_values(source.secret_settings),
            url=services.settings.public_url + _full_path(environ), method="POST",
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
                return _json(200, {"status": "ignored", "reason": f"connection is {connection.status}"})
        try:
            new_ids = inbox.receive(services, connection, items)  # committed when it returns
        except (SQLAlchemyError, psycopg.Error):
            return self._unavailable(platform)

        if not new_ids:
            return 200, DUPLICATE, "application/json"
        services.queue.nudge(drain_inbox, "inbox", job_suffix=str(new_ids[0]), memo=True)
        return 200, ACCEPTED, "application/json"

    @staticmethod
    def _unavailable(platform: str) -> Answer:
        log.exception("database unavailable while storing a %s webhook", platform)
        return _error(503, "temporarily unavailable, retry later")


def _content_length(environ: dict[str, Any]) -> int | None:
    try:
        return int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def _read_body(environ: dict[str, Any], length: int | None, limit: int) -> bytes:
    stream = environ["wsgi.input"]
    if length is not None:
        return stream.read(length) if length else b""
    return stream.read(limit + 1)  # type: ignore[no-any-return]  # chunked: one byte over tells


def _full_path(environ: dict[str, Any]) -> str:
    path = environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def _json(status: int, document: dict[str, Any]) -> Answer:
    return status, json.dumps(document).encode(), "application/json"


def _error(status: int, message: str) -> Answer:
    return _json(status, {"error": message})
