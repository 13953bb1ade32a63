"""The job behind the alert's buttons: do what was asked once, then show it on the message.

A button's value lists the milestones of its message: one, or several when the customer crossed
them at once (:mod:`plugin.milestones.combined`); a click acts on every one. Each click locks
those milestone rows (in id order), so two clicks (a double click, two CSMs) are applied one
after the other and the second finds the work done: *Mark Celebrated* sets ``celebrated`` only
while it is false, *Request Social Permission* records the first request, and *Send Celebration
Email* inserts an email effect whose idempotency key ``{milestone_id}:slack:send_celebration_email``
is unique — one email for the message's active milestones, and, as for every reward, an email
held for each milestone still waiting for review. Then the alert is redrawn from what the
database now says — every button's outcome as a context line under the original blocks — so
clicks handled out of order still show all.

A milestone id from another workspace (a forged or misrouted value) is ignored with a log line.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from rq import get_current_job
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.errors import ConnectorError
from connectors.slack import SlackConnector
from plugin import connections
from plugin.admin.milestones import NOT_CELEBRATED  # as on the settings page
from plugin.db import transaction, utcnow
from plugin.milestones import combined
from plugin.milestones.planning import plan_action
from plugin.milestones.policies import wants_public_celebration
from plugin.models import Connection, Customer, CustomerMilestone, Effect
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


def milestone_ids_of(value: str) -> list[uuid.UUID] | None:
    """The milestone ids a button's value lists (comma separated), or None when it is not that."""
    parts = [part.strip() for part in value.split(",")]
    if not parts or len(parts) > combined.MAX_COVERED:
        return None
    try:
        return list(dict.fromkeys(uuid.UUID(part) for part in parts))
    except ValueError:
        return None


def apply_click(session: Session, click: ButtonClick, workspace_id: uuid.UUID) -> Applied | None:
    """Record the click on every milestone of its message (locked), once. None when none of them
    is this workspace's."""
    ids = milestone_ids_of(click.milestone_id)
    if ids is None:
        log.warning("ignored Slack %s: %r is not a list of milestone ids", click.action_id, click.milestone_id[:64])
        return None
    locked = session.execute(
        select(CustomerMilestone)
        .where(CustomerMilestone.id.in_(ids), CustomerMilestone.workspace_id == workspace_id)
        .order_by(CustomerMilestone.id)
        .with_for_update()
    ).scalars().all()
    found = {m.id: m for m in locked}
    milestones = [found[i] for i in ids if i in found]  # in the message's order
    if len(milestones) < len(ids):
        log.warning(
            "ignored Slack %s by %s on milestones %s: not in workspace %s",
            click.action_id, click.user_id, ", ".join(str(i) for i in ids if i not in found), workspace_id,
        )
    if not milestones:
        return None
    now = utcnow()
    by = {"user_id": click.user_id, "user_name": click.user_name, "at": now.isoformat()}
    clicks = {m.id: dict((m.context or {}).get("slack_actions") or {}) for m in milestones}
    contexts = {m.id: dict(m.context or {}) for m in milestones}
    touched: set[uuid.UUID] = set()
    email_queued = False
    if click.action_id == "mark_celebrated":
        for m in milestones:
            if m.celebrated or m.status in NOT_CELEBRATED:
                continue
            m.celebrated, m.celebrated_at, m.celebration_type = True, now, CELEBRATION_TYPE
            note = f"Marked celebrated by @{click.user_name or click.user_id} in Slack"
            m.notes = f"{m.notes}\n{note}" if m.notes else note
            clicks[m.id]["mark_celebrated"] = by
            touched.add(m.id)
    elif click.action_id == "request_social_permission":
        private = _opted_out_of_public(session, milestones)
        for m in milestones:
            if "social_permission_requested_at" in contexts[m.id] or m.customer_id in private:
                continue
            contexts[m.id]["social_permission_requested_by"] = click.user_id
            contexts[m.id]["social_permission_requested_at"] = now.isoformat()
            clicks[m.id]["request_social_permission"] = by
            touched.add(m.id)
    elif click.action_id == "send_celebration_email":
        asking = [m for m in milestones if "send_celebration_email" not in clicks[m.id]]
        if asking:
            effect_ids, email_queued = _queue_celebration_emails(session, asking, click)
            for m in asking:
                clicks[m.id]["send_celebration_email"] = {**by, "effect_id": effect_ids[m.id]}
                touched.add(m.id)
    for m in milestones:
        if m.id in touched:
            m.context = {**contexts[m.id], "slack_actions": clicks[m.id]}
    if touched:
        session.flush()
    return Applied(changed=bool(touched), email_queued=email_queued, lines=status_lines(session, milestones))


def _queue_celebration_emails(
    session: Session, milestones: list[CustomerMilestone], click: ButtonClick
) -> tuple[dict[uuid.UUID, int | None], bool]:
    """The celebration email of each milestone: a live one that already covers it, else one new
    email for the active milestones together and one for each other (held during review,
    cancelled for a milestone that is history or was rejected), planned like every recognition
    (routed, ``no_connection`` when nothing can send email). The message is built when it runs.
    Returns the effect id per milestone, and whether the runner has new work."""
    effects = combined.effects_of(session, milestones)
    found: dict[uuid.UUID, int | None] = {}
    for m in milestones:
        live = [e for e in effects[m.id] if e.kind == "email" and e.status in LIVE_EMAIL
                and ((e.payload or {}).get("action") or {}).get("template") == EMAIL_ACTION["template"]]
        if live:
            found[m.id] = live[0].id
    todo = [m for m in milestones if m.id not in found]
    together = [m for m in todo if m.status == "active"]
    batches = ([together] if together else []) + [[m] for m in todo if m.status != "active"]
    queued = False
    for batch in batches:
        lead = batch[0]
        effect_id, planned = plan_action(
            session,
            lead,
            EMAIL_ACTION,
            f"{lead.id}:slack:send_celebration_email",
            note={"requested_by": {"slack_user_id": click.user_id}},
            covers=batch if len(batch) > 1 else None,
        )
        found.update((m.id, effect_id) for m in batch)
        queued = queued or planned == effect_status.PENDING
    return found, queued


def status_lines(session: Session, milestones: list[CustomerMilestone]) -> list[str]:
    """Who did what, from the database, for the context blocks under the alert (of every
    milestone of the message)."""
    clicks = [(m.context or {}).get("slack_actions") or {} for m in milestones]
    lines = []
    celebrable = [m for m in milestones if m.status not in NOT_CELEBRATED]
    if celebrable and all(m.celebrated for m in celebrable):
        who = next((c["mark_celebrated"] for c in clicks if c.get("mark_celebrated")), None)
        lines.append(f"✅ Marked celebrated by <@{who['user_id']}>" if who else "✅ Marked celebrated")
    social = next((c["request_social_permission"] for c in clicks if c.get("request_social_permission")), None)
    if social:
        lines.append(f"🐦 Social media permission requested by <@{social['user_id']}>")
    emails = [c["send_celebration_email"] for c in clicks if c.get("send_celebration_email")]
    shown: set[Any] = set()
    for email in emails:
        if email.get("effect_id") in shown:
            continue
        shown.add(email.get("effect_id"))
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


def _opted_out_of_public(session: Session, milestones: list[CustomerMilestone]) -> set[uuid.UUID]:
    """Customers of these milestones who asked not to be celebrated in public: no social request."""
    ids = {m.customer_id for m in milestones}
    customers = session.execute(select(Customer).where(Customer.id.in_(ids))).scalars()
    return {c.id for c in customers if not wants_public_celebration(c)}
