"""The job behind the alert's buttons: do what was asked once, then show it on the message.

Each click locks its milestone row, so two clicks (a double click, two CSMs) are applied one
after the other and the second finds the work done: *Mark Celebrated* sets ``celebrated`` only
while it is false, *Request Social Permission* records the first request, and *Send Celebration
Email* inserts an email effect whose idempotency key ``{milestone_id}:slack:send_celebration_email``
is unique. Then the alert is redrawn from what the database now says — every button's outcome
as a context line under the original blocks — so clicks handled out of order still show all.

A milestone id from another workspace (a forged or misrouted value) is ignored with a log line.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rq import get_current_job
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.errors import ConnectorError
from connectors.slack import SlackConnector
from plugin import connections
from plugin.db import transaction, utcnow
from plugin.milestones.planning import plan_action
from plugin.models import Connection, CustomerMilestone, Effect
from plugin.models import effect as effect_status
from plugin.services import current
from plugin.slack.interactions import ButtonClick

log = logging.getLogger(__name__)

CELEBRATION_TYPE = "slack"
EMAIL_ACTION = {"kind": "email", "template": "celebration"}
STATUS_BLOCK_PREFIX = "milestone_status_"
# An email in one of these states needs no second one.
LIVE_EMAIL = (effect_status.PENDING, effect_status.HELD, effect_status.IN_FLIGHT, effect_status.SUCCEEDED)
NOT_REWARDED = frozenset({"historical", "rejected"})


@dataclass(frozen=True)
class Applied:
    changed: bool
    email_queued: bool
    lines: list[str]


def handle_click(data: dict[str, Any]) -> None:
    """RQ job: apply one button click, then update the alert message it came from."""
    click = ButtonClick(**data)
    services = current()
    with transaction(services.sessions) as session:
        row = session.get(Connection, uuid.UUID(click.connection_id))
        if row is None or row.platform != "slack":
            log.warning("Slack click for connection %s, which no longer exists", click.connection_id)
            return
        view = connections.view_of(row, services.secrets)
        applied = apply_click(session, click, view.workspace_id)
    if applied is None:
        return
    if applied.email_queued:
        from plugin.jobs.effects import run_effects

        services.queue.nudge(run_effects, "effects")
    _update_message(SlackConnector(view.settings), click, applied.lines)


def apply_click(session: Session, click: ButtonClick, workspace_id: uuid.UUID) -> Applied | None:
    """Record the click on its milestone (locked), once. None when it is not this workspace's."""
    try:
        milestone_id = uuid.UUID(click.milestone_id)
    except ValueError:
        log.warning("ignored Slack %s: %r is not a milestone id", click.action_id, click.milestone_id[:64])
        return None
    milestone = session.execute(
        select(CustomerMilestone)
        .where(CustomerMilestone.id == milestone_id, CustomerMilestone.workspace_id == workspace_id)
        .with_for_update()
    ).scalar_one_or_none()
    if milestone is None:
        log.warning(
            "ignored Slack %s by %s: milestone %s is not in workspace %s",
            click.action_id, click.user_id, milestone_id, workspace_id,
        )
        return None
    now = utcnow()
    context = dict(milestone.context or {})
    clicks = dict(context.get("slack_actions") or {})
    by = {"user_id": click.user_id, "user_name": click.user_name, "at": now.isoformat()}
    changed = email_queued = False
    if click.action_id == "mark_celebrated" and not milestone.celebrated:
        milestone.celebrated = True
        milestone.celebrated_at = now
        milestone.celebration_type = CELEBRATION_TYPE
        note = f"Marked celebrated by @{click.user_name or click.user_id} in Slack"
        milestone.notes = f"{milestone.notes}\n{note}" if milestone.notes else note
        clicks["mark_celebrated"] = by
        changed = True
    elif click.action_id == "request_social_permission" and "social_permission_requested_at" not in context:
        context["social_permission_requested_by"] = click.user_id
        context["social_permission_requested_at"] = now.isoformat()
        clicks["request_social_permission"] = by
        changed = True
    elif click.action_id == "send_celebration_email" and "send_celebration_email" not in clicks:
        effect_id, email_queued = _queue_celebration_email(session, milestone, click, now)
        clicks["send_celebration_email"] = {**by, "effect_id": effect_id}
        changed = True
    if changed:
        milestone.context = {**context, "slack_actions": clicks}
        session.flush()
    return Applied(changed=changed, email_queued=email_queued, lines=status_lines(session, milestone))


def _queue_celebration_email(
    session: Session, milestone: CustomerMilestone, click: ButtonClick, now: datetime
) -> tuple[int | None, bool]:
    """The celebration email effect for the milestone: an existing live one, or a new one
    planned like every recognition (routed, held during review, ``no_connection`` when nothing
    can send email). The message itself is built when the effect runs."""
    existing = session.execute(
        select(Effect).where(
            Effect.milestone_id == milestone.id, Effect.kind == "email", Effect.status.in_(LIVE_EMAIL)
        )
    ).scalars()
    for effect in existing:
        if ((effect.payload or {}).get("action") or {}).get("template") == EMAIL_ACTION["template"]:
            return effect.id, False
    effect_id, planned = plan_action(
        session,
        milestone,
        EMAIL_ACTION,
        f"{milestone.id}:slack:send_celebration_email",
        note={"requested_by": {"slack_user_id": click.user_id}},
    )
    return effect_id, planned == effect_status.PENDING


def status_lines(session: Session, milestone: CustomerMilestone) -> list[str]:
    """Who did what, from the database, for the context blocks under the alert."""
    clicks = (milestone.context or {}).get("slack_actions") or {}
    lines = []
    if milestone.celebrated:
        who = clicks.get("mark_celebrated")
        lines.append(f"✅ Marked celebrated by <@{who['user_id']}>" if who else "✅ Marked celebrated")
    social = clicks.get("request_social_permission")
    if social:
        lines.append(f"🐦 Social media permission requested by <@{social['user_id']}>")
    email = clicks.get("send_celebration_email")
    if email:
        status = session.execute(select(Effect.status).where(Effect.id == email.get("effect_id"))).scalar_one_or_none()
        lines.append(_email_line(status, email["user_id"]))
    return lines


def _email_line(status: str | None, user_id: str) -> str:
    if status == effect_status.SUCCEEDED:
        return f"📧 Celebration email sent (asked by <@{user_id}>)"
    if status == effect_status.HELD:
        return f"📧 Celebration email queued by <@{user_id}>; it goes out once the milestone is approved"
    if status == effect_status.NO_CONNECTION:
        return f"⚠️ <@{user_id}> asked for the celebration email, but no email platform is connected"
    if status in (effect_status.DEAD, effect_status.CANCELLED, None):
        return f"⚠️ The celebration email <@{user_id}> asked for was not sent; see the admin's effects"
    return f"📧 Celebration email queued by <@{user_id}>"


def _update_message(connector: SlackConnector, click: ButtonClick, lines: list[str]) -> None:
    """Redraw the alert: its own blocks, then one context block per outcome (chat.update)."""
    if not click.channel or not click.message_ts or click.message_blocks is None:
        log.info("Slack %s on milestone %s came without its message; nothing to update", click.action_id,
                 click.milestone_id)
        return
    blocks = [b for b in click.message_blocks if not str(b.get("block_id", "")).startswith(STATUS_BLOCK_PREFIX)]
    blocks += [
        {"type": "context", "block_id": f"{STATUS_BLOCK_PREFIX}{n}", "elements": [{"type": "mrkdwn", "text": line}]}
        for n, line in enumerate(lines, 1)
    ]
    text = click.message_text or "Customer milestone"
    try:
        connector.update_message(click.channel, click.message_ts, blocks, text)
    except ConnectorError as exc:
        if not exc.permanent and get_current_job() is not None:
            raise  # a worker retries the job (JOB_RETRY); the click itself is already recorded
        log.warning("could not update the Slack alert %s:%s: %s", click.channel, click.message_ts, exc.message)
