"""``POST /slack/interactions/<connection_id>``: the alert's buttons, answered inside 3 seconds.

Slack posts ``application/x-www-form-urlencoded`` with one field, ``payload``, holding the
interaction as JSON (https://docs.slack.dev/interactivity/handling-user-interaction,
https://docs.slack.dev/reference/interaction-payloads/block_actions-payload). We verify the
signature on the raw body, read the clicks, hand each to a job and answer 200 with an empty
body; Slack shows the user an error if the answer takes longer than 3 seconds. Bad signature or
stale timestamp 401, unknown connection 404, malformed body 400 — never a 500.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs

from flask import Blueprint, Response, current_app, jsonify, request
from rq import Retry
from sqlalchemy.exc import SQLAlchemyError

from plugin import connections
from plugin.services import Services
from plugin.slack import signature

log = logging.getLogger(__name__)

slack = Blueprint("slack", __name__)

# The buttons of connectors.slack.alert_blocks; their value is the milestone id.
ACTIONS = frozenset({"send_celebration_email", "request_social_permission", "mark_celebrated"})
USER_ID = re.compile(r"[A-Z0-9]{2,32}\Z")
JOB_TIMEOUT_SECONDS = 60
JOB_RETRY = Retry(max=3, interval=[5, 30, 120])


class MalformedInteraction(ValueError):
    """Not what Slack sends: answered 400."""


@dataclass(frozen=True)
class ButtonClick:
    """One click on one of the alert's buttons, as plain data (it travels to the job as a dict)."""

    connection_id: str
    action_id: str
    milestone_id: str
    user_id: str
    user_name: str | None = None
    team_id: str | None = None
    channel: str | None = None
    message_ts: str | None = None
    message_text: str | None = None
    message_blocks: list[dict[str, Any]] | None = field(default=None)


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


@slack.post("/slack/interactions/<connection_id>")
def interactions(connection_id: str) -> Any:
    services: Services = current_app.extensions["milestones"]
    limit = services.settings.max_webhook_bytes
    if request.content_length is not None and request.content_length > limit:
        return _error(413, f"body over {limit} bytes")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        return _error(413, f"body over {limit} bytes")
    try:
        connection = connections.find_inbound(
            services.sessions, services.secrets, "slack", connection_id=connection_id, lookup_key=None
        )
    except SQLAlchemyError:
        log.exception("database unavailable while answering a Slack interaction")
        return _error(503, "temporarily unavailable, retry later")
    if connection is None:
        return _error(404, "no slack connection for this interaction")
    headers = cast(dict[str, str], request.headers)  # werkzeug Headers: case-insensitive
    verdict = signature.verify(body, headers, connection.settings.get("signing_secret"), now=time.time())
    if not verdict.ok:
        log.info("rejected Slack interaction for %s: %s", connection.id, verdict.reason)
        return _error(401, f"signature verification failed: {verdict.reason}")
    try:
        clicks = parse(body, str(connection.id))
    except MalformedInteraction as exc:
        return _error(400, str(exc))
    if connection.status != "active":
        log.info("ignored Slack interaction for %s connection %s", connection.status, connection.id)
        clicks = []
    for click in clicks:
        dispatch(services, click)
    return Response(status=200)


def dispatch(services: Services, click: ButtonClick) -> None:
    """Run :func:`plugin.slack.actions.handle_click` in a worker, or here when there is no Redis.

    A click that cannot be enqueued (Redis down) is handled now rather than lost. Inline, a
    failure is logged, never answered 500: Slack would only show the user a warning.
    """
    from plugin.slack.actions import handle_click

    try:
        services.queue.enqueue(handle_click, asdict(click), retry=JOB_RETRY)
    except Exception:  # inline only: a worker records its own failures
        log.exception("Slack %s on milestone %s failed", click.action_id, click.milestone_id)


# --- reading the payload -----------------------------------------------------------------------


def parse(body: bytes, connection_id: str) -> list[ButtonClick]:
    """The clicks on our buttons in a ``block_actions`` payload; [] for other interactions."""
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedInteraction("body is not a form") from exc
    payloads = form.get("payload") or []
    if len(payloads) != 1:
        raise MalformedInteraction("body needs exactly one payload field")
    try:
        data = json.loads(payloads[0])
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise MalformedInteraction("payload is not valid JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise MalformedInteraction("payload is not an interaction (no type)")
    if data["type"] != "block_actions":
        log.info("ignored a Slack %s interaction", data["type"])
        return []
    user = _object(data, "user")
    user_id = _text(user.get("id"))
    if user_id is None or not USER_ID.match(user_id):
        raise MalformedInteraction("payload.user.id is missing or not a Slack user id")
    actions = data.get("actions")
    if not isinstance(actions, list) or not actions:
        raise MalformedInteraction("payload.actions is missing")
    container, message = _object(data, "container"), _object(data, "message")
    blocks = message.get("blocks")
    clicks = []
    for index, action in enumerate(actions):
        if not isinstance(action, dict):
            raise MalformedInteraction(f"payload.actions[{index}] is not an object")
        if action.get("action_id") not in ACTIONS:
            log.info("ignored Slack action %r", action.get("action_id"))
            continue
        value = _text(action.get("value"))
        if value is None:
            raise MalformedInteraction(f"payload.actions[{index}].value is missing")
        clicks.append(
            ButtonClick(
                connection_id=connection_id,
                action_id=str(action["action_id"]),
                milestone_id=value,
                user_id=user_id,
                user_name=_text(user.get("username")) or _text(user.get("name")),
                team_id=_text(_object(data, "team").get("id")) or _text(user.get("team_id")),
                channel=_text(container.get("channel_id")) or _text(_object(data, "channel").get("id")),
                message_ts=_text(container.get("message_ts")) or _text(message.get("ts")),
                message_text=_text(message.get("text")),
                message_blocks=[b for b in blocks if isinstance(b, dict)] if isinstance(blocks, list) else None,
            )
        )
    return clicks


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None
