"""The effects a reversed milestone needs: cancelling what was not given, debiting what was, and
telling the CSM (:mod:`plugin.milestones.reversals` decides which; this module writes the rows).

A debit is keyed by the credit it takes back (``<credit's key>:clawback``), so a credit is never
debited twice. A credit still in flight when the milestone is reversed gets its debit ``held``
until it settles (``hold_reason`` settling, ``payload.waits_for``): the release step of
:mod:`plugin.milestones.holds` builds the debit once the credit succeeded, or cancels it if the
credit never went through. Likewise the claw-back notice waits for the debits and goes to the CSM
only when one of them could not take its credit back.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors.base import Capability
from connectors.payloads import CsmNotice, Money, StoreCreditDebit, to_json
from connectors.registry import CONNECTORS
from plugin.db import utcnow
from plugin.milestones.planning import KINDS
from plugin.milestones.policies import KILL_SWITCH_REASON, money_paused
from plugin.milestones.wording import format_money
from plugin.models import Connection, Customer, CustomerMilestone, Effect, Workspace
from plugin.models import effect as status
from plugin.upsert import upsert

if TYPE_CHECKING:
    from plugin.milestones.reversals import Reversal

DEBIT = "store_credit_debit"
NOTICE = "csm_notice"
UNPAID = (status.PENDING, status.HELD, status.OPEN_TASK)
REWARDS = sorted(kind for kind, spec in KINDS.items() if spec.is_reward)


def cancel_credit_hold(session: Session, milestone_id: uuid.UUID, why: str) -> str:
    """Money still waiting out its credit hold is not paid; what was cancelled, in words."""
    cancelled = _cancel(
        session,
        (Effect.milestone_id == milestone_id, Effect.status == status.HELD, Effect.hold_reason == status.CREDIT_HOLD),
        f"not paid: {why} during the credit hold",
    )
    return f"cancelled while on hold: {cancelled}" if cancelled else ""


def cancel_unpaid(session: Session, milestone_id: uuid.UUID, reason: str) -> str:
    """Rewards not given yet (pending, held, open tasks) are cancelled; in flight ones cannot be."""
    cancelled = _cancel(
        session,
        (Effect.milestone_id == milestone_id, Effect.kind.in_(REWARDS), Effect.status.in_(UNPAID)),
        reason,
    )
    return f"cancelled before they went out: {cancelled}" if cancelled else ""


def _cancel(session: Session, where: tuple[Any, ...], reason: str) -> str:
    rows = session.execute(
        update(Effect)
        .where(*where)
        .values(status=status.CANCELLED, hold_reason=None, last_error=reason[:2000], updated_at=utcnow())
        .returning(Effect.kind, Effect.payload)
    ).all()
    return ", ".join(what(kind, payload) for kind, payload in rows)


def plan_debits(session: Session, reversal: Reversal, workspace: Workspace) -> str:
    """One debit per store credit applied (or in flight), and the notice that waits for them."""
    milestone = reversal.milestone
    credits = session.execute(
        select(Effect)
        .where(Effect.milestone_id == milestone.id, Effect.kind == "store_credit",
               Effect.status.in_((status.SUCCEEDED, status.IN_FLIGHT)))
        .order_by(Effect.id)
    ).scalars().all()
    if not credits:
        return "no store credit had been applied"
    reason = f"{milestone.milestone_name} reversed: {reversal.why}"
    rows = [_debit_row(session, credit, reason, money_paused(workspace)) for credit in credits]
    _insert(session, rows)
    debit_ids = list(session.execute(
        select(Effect.id).where(Effect.idempotency_key.in_([r["idempotency_key"] for r in rows])).order_by(Effect.id)
    ).scalars())
    notice = _notice_row(session, reversal, "Store credit not taken back", f"{milestone.id}:clawback-notice")
    if notice["status"] == status.PENDING:
        notice.update(status=status.HELD, hold_reason=status.SETTLING,
                      last_error="waits for the debits, to tell the CSM about any that fails")
        notice["payload"]["waits_for"] = debit_ids
    _insert(session, [notice])
    return "taking back " + ", ".join(what("store_credit", c.payload) for c in credits)


def notify_revoked(session: Session, reversal: Reversal) -> str:
    """The CSM's Slack message for a revoked milestone: what happened, why, what was given."""
    given = session.execute(
        select(Effect.kind, Effect.payload)
        .where(Effect.milestone_id == reversal.milestone.id, Effect.kind.in_(REWARDS),
               Effect.status.in_((status.SUCCEEDED, status.IN_FLIGHT, status.DONE_TASK)))
        .order_by(Effect.id)
    ).all()
    lines = [f"Already given and kept: {what(kind, payload)}" for kind, payload in given]
    row = _notice_row(session, reversal, "Milestone revoked", f"{reversal.milestone.id}:revoked-notice", lines)
    if row["status"] == status.PENDING:
        row["payload"]["request"] = row["payload"].pop("notice")
    _insert(session, [row])
    return "the CSM is told on Slack" if row["status"] == status.PENDING else f"CSM not told: {row['last_error']}"


def debit_request(credit: Effect, reason: str) -> dict[str, Any] | None:
    """The :class:`StoreCreditDebit` that takes ``credit`` back, or None when its request is gone
    (the customer's data was redacted)."""
    payload = credit.payload or {}
    request, result = payload.get("request") or {}, payload.get("result") or {}
    amount = request.get("amount") or {}
    if not request.get("customer_external_id") or not amount.get("amount"):
        return None
    debit = StoreCreditDebit(
        idempotency_key=f"{credit.idempotency_key}:clawback",
        customer_external_id=str(request["customer_external_id"]),
        amount=Money(Decimal(str(amount["amount"])), str(amount["currency"])),
        reason=reason,
        credit_external_id=credit.external_id,
        credit_idempotency_key=str(request.get("idempotency_key") or ""),
        account_id=result.get("account_id"),
        coupon_code=result.get("code"),
    )
    return to_json(debit)


def settle_debit(effect: Effect, credit: Effect | None, paused: bool) -> None:
    """A debit whose credit finished: built and due (or held by the kill switch), or cancelled."""
    reason = str((effect.payload or {}).get("reason") or "milestone reversed")
    request = debit_request(credit, reason) if credit is not None and credit.status == status.SUCCEEDED else None
    if request is None:
        effect.status, effect.hold_reason = status.CANCELLED, None
        effect.last_error = "the store credit was never applied: nothing to take back"
        return
    effect.payload = {**(effect.payload or {}), "request": request}
    _due(effect, paused)


def settle_notice(effect: Effect, debits: list[Effect]) -> None:
    """The claw-back notice once its debits finished: sent if one failed, else not needed."""
    failed = [d for d in debits if d.status in (status.DEAD, status.NO_CONNECTION)]
    if not failed:
        effect.status, effect.hold_reason = status.CANCELLED, None
        effect.last_error = "every store credit was taken back: nothing to tell the CSM"
        return
    payload = dict(effect.payload or {})
    notice = dict(payload.pop("notice"))
    lines = list(notice.get("lines") or [])
    for debit in failed:
        code = ((debit.payload or {}).get("request") or {}).get("coupon_code")
        credit = what(DEBIT, debit.payload) + (f" (coupon {code})" if code else "")
        lines.append(f"Not taken back: {credit} — {debit.last_error}")
    notice["lines"] = lines
    effect.payload = {**payload, "request": notice}
    _due(effect, paused=False)


def _due(effect: Effect, paused: bool) -> None:
    if paused:
        effect.status, effect.hold_reason, effect.last_error = status.HELD, status.KILL_SWITCH, KILL_SWITCH_REASON
        return
    effect.status, effect.hold_reason, effect.last_error = status.PENDING, None, None
    effect.next_attempt_at, effect.attempts = utcnow(), 0


def what(kind: str, payload: dict[str, Any] | None) -> str:
    """An effect in a few words: "$10 store credit", "celebration email", "task “Welcome gift”"."""
    payload = payload or {}
    request, action = payload.get("request") or {}, payload.get("action") or {}
    amount = request.get("amount") or {}
    if kind in ("store_credit", DEBIT) and amount.get("amount"):
        return f"{format_money(amount['amount'], amount['currency'])} store credit"
    if kind == "discount_code":
        return f"discount code {request.get('code')}" if request.get("code") else "discount code"
    if kind == "customer_tag":
        return "tag " + ", ".join(request.get("tags") or [str(action.get("tag") or "")])
    if kind == "task":
        return f"task “{payload.get('title') or action.get('title') or 'for a person'}”"
    if kind == "email":
        return "celebration email"
    return kind.replace("_", " ")


def _debit_row(session: Session, credit: Effect, reason: str, paused: bool) -> dict[str, Any]:
    row = _row(credit.workspace_id, credit.milestone_id, DEBIT, f"{credit.idempotency_key}:clawback",
               {"reason": reason, "credit_effect_id": credit.id})
    row["connection_id"] = credit.connection_id
    connection = session.get(Connection, credit.connection_id) if credit.connection_id else None
    if connection is None or Capability.DEBIT_STORE_CREDIT not in CONNECTORS[connection.platform].capabilities:
        platform = connection.platform if connection else "the credit's connection"
        return {**row, "status": status.NO_CONNECTION, "last_error": f"{platform} cannot take store credit back"}
    if credit.status == status.IN_FLIGHT:
        row["payload"]["waits_for"] = [credit.id]
        return {**row, "status": status.HELD, "hold_reason": status.SETTLING,
                "last_error": "waits for the store credit it takes back to finish"}
    request = debit_request(credit, reason)
    if request is None:
        return {**row, "status": status.CANCELLED, "last_error": "the credit's details were redacted: take it back by hand"}
    row["payload"]["request"] = request
    if paused:
        return {**row, "status": status.HELD, "hold_reason": status.KILL_SWITCH, "last_error": KILL_SWITCH_REASON}
    return row


def _notice_row(session: Session, reversal: Reversal, headline: str, key: str,
                extra: list[str] | None = None) -> dict[str, Any]:
    """A CSM notice for the workspace's Slack (the channel the milestone's alert used, if any)."""
    milestone, customer = reversal.milestone, reversal.customer
    row = _row(milestone.workspace_id, milestone.id, NOTICE, key, {})
    slack = _slack_connection(session, milestone.workspace_id)
    if slack is None:
        return {**row, "status": status.NO_CONNECTION,
                "last_error": f"no connected platform can {Capability.POST_ALERT.value} to tell the CSM"}
    notice = CsmNotice(
        idempotency_key=key,
        milestone_id=str(milestone.id),
        customer_name=_name(customer),
        headline=f"{headline}: {milestone.milestone_name}",
        lines=(f"Why: {reversal.why}", f"Now: {reversal.standing}", *(extra or [])),
        channel=_alert_channel(session, milestone),
        owner_email=customer.owner_email,
    )
    row["connection_id"] = slack.id
    row["payload"]["notice"] = to_json(notice)
    return row


def _name(customer: Customer) -> str:
    return customer.display_name + (f" ({customer.email})" if customer.email and customer.first_name else "")


def _alert_channel(session: Session, milestone: CustomerMilestone) -> str | None:
    for payload in session.execute(
        select(Effect.payload).where(Effect.milestone_id == milestone.id, Effect.kind == "slack_alert")
    ).scalars():
        channel = ((payload or {}).get("request") or {}).get("channel")
        if channel:
            return str(channel)
    return None


def _slack_connection(session: Session, workspace_id: uuid.UUID) -> Connection | None:
    for connection in session.execute(
        select(Connection)
        .where(Connection.workspace_id == workspace_id, Connection.status == "active")
        .order_by(Connection.created_at)
    ).scalars():
        connector = CONNECTORS.get(connection.platform)
        if connector is not None and Capability.POST_ALERT in connector.capabilities:
            return connection
    return None


def _row(workspace_id: uuid.UUID, milestone_id: uuid.UUID, kind: str, key: str, payload: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    return {
        "workspace_id": workspace_id, "milestone_id": milestone_id, "kind": kind, "connection_id": None,
        "idempotency_key": key, "payload": payload, "status": status.PENDING, "hold_reason": None,
        "last_error": None, "attempts": 0, "next_attempt_at": now, "created_at": now, "updated_at": now,
    }


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(
            upsert(session, Effect.__table__, conflict=["idempotency_key"]),
            rows,
        )
