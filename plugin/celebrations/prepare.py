"""The effect runner's run-time hook: requests that can only be built when the effect runs.

A celebration email is planned with the milestone but written when it is sent, after the
milestone's rewards have settled, so that it tells the customer what they actually got. Until
then it waits (:class:`Wait`), without using one of its attempts.

``PREPARE`` maps an effect kind to its preparer. A preparer gets the in-flight effect row and
returns the request JSON its connector method takes, or ``Wait``; it raises
:class:`~connectors.errors.ConnectorError` (permanent) when the effect can never be performed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from connectors.errors import ConnectorError
from connectors.payloads import EmailMessage, to_json
from plugin.celebrations.context import email_properties, load_context, unsettled_rewards
from plugin.celebrations.render import render
from plugin.celebrations.templates import TemplateProblem, template_for
from plugin.db import utcnow
from plugin.models import Effect, Workspace
from plugin.models import effect as status

SETTLE_POLL = timedelta(seconds=30)


@dataclass(frozen=True)
class Wait:
    """Not yet: look again at ``until``; ``reason`` tells the admin what it waits for."""

    until: datetime
    reason: str


Prepare = Callable[[Session, Effect], "dict[str, Any] | Wait"]


def prepare_email(session: Session, effect: Effect) -> dict[str, Any] | Wait:
    """The :class:`EmailMessage` of a celebration email, rendered from the rewards actually given."""
    waiting = unsettled_rewards(session, effect.milestone_id, effect.id)
    if waiting:
        now = utcnow()
        # Pending rewards are due at their next attempt, a credit hold at its end (days away).
        due = [w.next_attempt_at for w in waiting if w.status == status.PENDING or w.hold_reason == status.CREDIT_HOLD]
        until = max(now + SETTLE_POLL, min(due)) if due else now + SETTLE_POLL
        what = ", ".join(sorted({f"{w.kind} ({w.status})" for w in waiting}))
        return Wait(until, f"waiting for {what} before writing the email")
    try:
        customer, context = load_context(session, effect)
    except LookupError as exc:
        raise ConnectorError(str(exc), permanent=True) from exc
    if not customer.email:
        raise ConnectorError("the customer has no email address to send the celebration to", permanent=True)
    workspace = session.get(Workspace, effect.workspace_id)
    action = (effect.payload or {}).get("action") or {}
    try:
        template = template_for(action.get("template"), workspace.settings if workspace else None)
        rendered = render(template, context)
    except TemplateProblem as exc:
        raise ConnectorError(str(exc), permanent=True) from exc
    message = EmailMessage(
        idempotency_key=effect.idempotency_key,
        to_email=customer.email,
        to_name=context["full_name"] or context["company_name"],
        template=template.key,
        subject=rendered.subject,
        html_body=rendered.html,
        text_body=rendered.text,
        properties=email_properties(context),
    )
    return to_json(message)


PREPARE: dict[str, Prepare] = {"email": prepare_email}
