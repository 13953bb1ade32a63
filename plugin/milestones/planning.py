"""Turning a definition's recognition into effect rows (the outbox), in the award's transaction.

Each recognition action names a kind; the kind needs a connector capability; the workspace's
connections that have it are the candidates. An action no connected platform can perform is
recorded as ``no_connection`` — visible in the admin, never silently dropped. A task for a
person (gift, call) is an ``open_task``. Rewards of a milestone that needs review are ``held``.

After each milestone is planned on its own, the message effects of a customer who crossed
several milestones at once become one (:mod:`plugin.milestones.combined`), and escalations to
the team lead are added (:mod:`plugin.milestones.escalation`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors.base import Capability
from connectors.payloads import (
    CustomerTag,
    DiscountCode,
    MilestoneAlert,
    Money,
    StoreCredit,
    TimelineNote,
    to_json,
)
from connectors.registry import CONNECTORS
from plugin.db import utcnow
from plugin.milestones import combined, policies, wording
from plugin.milestones.credit_hold import hold_money
from plugin.milestones.definitions import ActiveDefinition
from plugin.models import (
    Connection,
    Customer,
    CustomerIdentity,
    CustomerMilestone,
    Effect,
    MilestoneDefinition,
    Workspace,
)
from plugin.models import effect as status
from plugin.upsert import upsert

if TYPE_CHECKING:
    from plugin.milestones.award import Crossing


@dataclass(frozen=True)
class Kind:
    capability: Capability | None
    is_reward: bool  # held while the milestone waits for review
    in_customers_store: bool = False  # must go to a store the customer has an account on


KINDS: dict[str, Kind] = {
    "crm_note": Kind(Capability.ADD_TIMELINE_NOTE, False),
    "slack_alert": Kind(Capability.POST_ALERT, False),
    "store_credit": Kind(Capability.APPLY_STORE_CREDIT, True, in_customers_store=True),
    "email": Kind(Capability.SEND_EMAIL, True),
    "customer_tag": Kind(Capability.ADD_CUSTOMER_TAG, True, in_customers_store=True),
    "discount_code": Kind(Capability.CREATE_DISCOUNT_CODE, True, in_customers_store=True),
    "task": Kind(None, True),
}
# Effects the planner adds on its own; never an action of a definition's recognition.
ESCALATION = "escalation"
INTERNAL_KINDS: dict[str, Kind] = {ESCALATION: Kind(Capability.POST_ALERT, False)}

PRD_CELEBRATION_IDEAS = (
    "Send congratulations email",
    "Social media shoutout (with permission)",
    "Consider milestone gift",
    "Invite to case study participation",
)


class _Context:
    """Everything the payload builders need, loaded once for all the milestones of a batch."""

    def __init__(self, session: Session, awarded: list[tuple[dict[str, Any], Crossing]]) -> None:
        workspace_ids = {c.workspace_id for _, c in awarded}
        customer_ids = {c.customer_id for _, c in awarded}
        self.workspaces = {
            w.id: w for w in session.execute(select(Workspace).where(Workspace.id.in_(workspace_ids))).scalars()
        }
        self.connections: dict[uuid.UUID, list[Connection]] = defaultdict(list)
        for connection in session.execute(
            select(Connection)
            .where(Connection.workspace_id.in_(workspace_ids), Connection.status == "active")
            .order_by(Connection.created_at)
        ).scalars():
            self.connections[connection.workspace_id].append(connection)
        self.customers = {
            c.id: c for c in session.execute(select(Customer).where(Customer.id.in_(customer_ids))).scalars()
        }
        self.identities: dict[uuid.UUID, dict[uuid.UUID, str]] = defaultdict(dict)
        for identity in session.execute(
            select(CustomerIdentity).where(CustomerIdentity.customer_id.in_(customer_ids))
        ).scalars():
            self.identities[identity.customer_id][identity.connection_id] = identity.external_id

    def capable(self, workspace_id: uuid.UUID, capability: Capability) -> list[Connection]:
        return [
            c
            for c in self.connections[workspace_id]
            if c.platform in CONNECTORS and capability in CONNECTORS[c.platform].capabilities
        ]


def plan_effects(session: Session, awarded: list[tuple[dict[str, Any], Crossing]]) -> None:
    if not awarded:
        return
    context = _Context(session, awarded)
    ledger = policies.CreditLedger(session, set(context.workspaces), set(context.customers))
    rows: list[dict[str, Any]] = []
    to_review: set[uuid.UUID] = set()
    for milestone, crossing in awarded:
        for index, action in enumerate(crossing.definition.recognition):
            row = _plan_one(context, milestone, crossing, index, action)
            if _apply_policies(context, ledger, milestone, crossing, row):
                to_review.add(milestone["id"])
            hold_money(row, crossing)
            rows.append(row)
    from plugin.milestones import escalation  # it builds on this module

    rows = combined.combine(rows, awarded)
    rows += escalation.on_award(session, context, awarded)
    if to_review:
        session.execute(
            update(CustomerMilestone)
            .where(CustomerMilestone.id.in_(to_review), CustomerMilestone.status == "active")
            .values(status="pending_review")
        )
    if rows:
        session.execute(
            upsert(session, Effect.__table__, conflict=["idempotency_key"]),
            rows,
        )


def _apply_policies(
    context: _Context, ledger: policies.CreditLedger, milestone: dict[str, Any], crossing: Crossing, row: dict[str, Any]
) -> bool:
    """Let the workspace's money rules and the customer's opt-outs hold or cancel ``row``.
    True when the milestone must now wait for review (a budget or cap was reached)."""
    kind = KINDS.get(row["kind"])
    if kind is None or row["status"] not in (status.PENDING, status.HELD, status.OPEN_TASK):
        return False
    verdict = policies.judge(
        ledger,
        context.workspaces[crossing.workspace_id],
        context.customers[crossing.customer_id],
        row["kind"],
        kind.is_reward,
        milestone.get("context") or {},
        (row.get("payload") or {}).get("request"),
        utcnow(),
    )
    if verdict is None:
        return False
    row["status"], row["last_error"], row["hold_reason"] = verdict.status, verdict.reason, verdict.hold
    return verdict.needs_review


def plan_action(
    session: Session,
    milestone: CustomerMilestone,
    action: dict[str, Any],
    idempotency_key: str,
    note: dict[str, Any] | None = None,
    covers: Sequence[CustomerMilestone] | None = None,
) -> tuple[int | None, str | None]:
    """Plan one more recognition for a milestone that already exists (a CSM's Slack button, an
    admin's action), routed and held exactly like the ones planned when it was awarded.
    ``covers``: the milestones, ``milestone`` first, of one message about them all (an email
    asked for from a combined alert).

    Returns the effect's id and its status, or the existing effect's id and None when this
    idempotency key was planned before.
    """
    from plugin.milestones.award import Crossing

    definition_row = session.get(MilestoneDefinition, milestone.definition_id)
    if definition_row is None:
        raise LookupError(f"milestone {milestone.id} has no definition")
    crossing = Crossing(
        workspace_id=milestone.workspace_id,
        customer_id=milestone.customer_id,
        definition=ActiveDefinition.of(definition_row),
        occurrence=milestone.occurrence,
        value=milestone.milestone_value or "",
        achieved_at=milestone.achieved_at,
        customer_since=None,
        metrics=dict((milestone.context or {}).get("metrics") or {}),
        source="requested later",
    )
    facts = {"id": milestone.id, "status": milestone.status, "time_to_milestone": milestone.time_to_milestone}
    row = _plan_one(_Context(session, [(facts, crossing)]), facts, crossing, 0, action)
    row["idempotency_key"] = idempotency_key
    if note:
        row["payload"] = {**row["payload"], **note}
    if covers:
        row["payload"] = {**row["payload"], combined.COVERS: [str(m.id) for m in covers]}
    if milestone.status in ("historical", "rejected", "revoked"):
        row.update(status=status.CANCELLED, last_error=f"the milestone is {milestone.status}: nothing to celebrate")
    table = Effect.__table__
    new_id = session.execute(
        upsert(session, table, conflict=["idempotency_key"], returning=["id"]), row
    ).scalar_one_or_none()
    if new_id is None:
        return session.scalar(select(Effect.id).where(Effect.idempotency_key == idempotency_key)), None
    return new_id, str(row["status"])


def _plan_one(
    context: _Context, milestone: dict[str, Any], crossing: Crossing, index: int, action: dict[str, Any]
) -> dict[str, Any]:
    kind_name = str(action.get("kind"))
    row = effect_row(crossing.workspace_id, milestone["id"], kind_name, f"{milestone['id']}:{index}:{kind_name}",
                     {"action": action})
    kind = KINDS.get(kind_name)
    if kind is None:
        return {**row, "status": status.DEAD, "last_error": f"unknown recognition kind {kind_name!r}"}
    held = kind.is_reward and milestone["status"] == "pending_review"
    if kind.capability is None:
        title = str(action.get("title") or crossing.definition.name)
        return {**row, "status": status.HELD if held else status.OPEN_TASK, "payload": {"action": action, "title": title}}
    candidates = context.capable(crossing.workspace_id, kind.capability)
    if kind.in_customers_store:
        # Rewards go to the store the customer shops at: a connection they have an id on.
        known = context.identities[crossing.customer_id]
        candidates = [c for c in candidates if c.id in known]
    if kind_name == "email":
        candidates = _email_senders(candidates)
    if not candidates:
        return {
            **row,
            "status": status.NO_CONNECTION,
            "last_error": f"no connected platform can {kind.capability.value} for this customer",
        }
    connection = candidates[0]
    if kind_name == "email":  # written when it runs, from the rewards actually given (plugin.celebrations)
        return {**row, "connection_id": connection.id, "status": status.HELD if held else status.PENDING}
    try:
        payload = _payload(context, milestone, crossing, action, kind_name, connection)
    except ValueError as exc:
        return {**row, "connection_id": connection.id, "status": status.DEAD, "last_error": str(exc)}
    return {
        **row,
        "connection_id": connection.id,
        "payload": {"action": action, "request": payload},
        "status": status.HELD if held else status.PENDING,
    }


def effect_row(
    workspace_id: uuid.UUID, milestone_id: uuid.UUID, kind: str, idempotency_key: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """A new outbox row, pending now, as every planner inserts it."""
    now = utcnow()
    return {
        "workspace_id": workspace_id,
        "milestone_id": milestone_id,
        "kind": kind,
        "connection_id": None,
        "idempotency_key": idempotency_key,
        "payload": payload,
        "status": status.PENDING,
        "last_error": None,
        "hold_reason": None,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def milestone_detail(definition: ActiveDefinition, value: str, currency: str) -> str:
    """"Order count reached 25", "$1,000 spent"…, "1 year as a customer"."""
    metric = next(iter(sorted(definition.metrics)), None)
    return wording.milestone_detail(metric, definition.uses_tenure and not definition.metrics, value, currency)


def _payload(
    context: _Context,
    milestone: dict[str, Any],
    crossing: Crossing,
    action: dict[str, Any],
    kind: str,
    connection: Connection,
) -> dict[str, Any]:
    customer = context.customers[crossing.customer_id]
    workspace = context.workspaces[crossing.workspace_id]
    key = milestone["id"]
    definition = crossing.definition
    detail = milestone_detail(definition, crossing.value, workspace.currency)
    if kind == "crm_note":
        if not customer.email:
            raise ValueError("the customer has no email to find their CRM record by")
        achieved = crossing.achieved_at.date().isoformat()
        body = f"<p>🏆 <strong>{_escape(definition.name)}</strong> — {achieved}</p><p>{_escape(detail)}</p>"
        note = TimelineNote(
            idempotency_key=str(key),
            customer_email=customer.email,
            customer_first_name=customer.first_name,
            customer_last_name=customer.last_name,
            body_html=body,
            occurred_at=crossing.achieved_at,
        )
        return to_json(note)
    if kind == "slack_alert":
        return to_json(milestone_alert(
            str(key), customer, workspace, definition.name, detail, crossing.achieved_at,
            milestone.get("time_to_milestone"), action,
        ))
    if kind == "store_credit":
        try:
            amount = Decimal(str(action["amount"]))
        except (KeyError, InvalidOperation) as exc:
            raise ValueError(f"store credit needs a decimal 'amount', got {action.get('amount')!r}") from exc
        expires_days = action.get("expires_in_days")
        credit = StoreCredit(
            idempotency_key=str(key),
            customer_external_id=context.identities[crossing.customer_id][connection.id],
            amount=Money(amount, str(action.get("currency") or workspace.currency)),
            reason=f"{definition.name} ({crossing.value})",
            expires_at=crossing.achieved_at + timedelta(days=int(expires_days)) if expires_days else None,
            notify=bool(action.get("notify", True)),
            customer_email=customer.email,
        )
        return to_json(credit)
    if kind == "customer_tag":
        tags = action.get("tags") or [action.get("tag")]
        if not all(isinstance(t, str) and t.strip() for t in tags):
            raise ValueError(f"a customer tag recognition needs 'tag' text, got {action!r}")
        return to_json(
            CustomerTag(
                idempotency_key=str(key),
                customer_external_id=context.identities[crossing.customer_id][connection.id],
                customer_email=customer.email,
                tags=tuple(t.strip() for t in tags),
            )
        )
    if kind == "discount_code":
        return to_json(_discount(context, milestone, crossing, action, connection, customer.email))
    return {"customer_id": str(customer.id), "milestone": definition.name, "value": crossing.value}


def milestone_alert(key: str, customer: Customer, workspace: Workspace, name: str, detail: str,
                    achieved_at: datetime, time_to: timedelta | None, action: dict[str, Any]) -> MilestoneAlert:
    """PRD-114's alert for one milestone (also what the settings page previews)."""
    return MilestoneAlert(
        idempotency_key=key,
        milestone_id=key,
        customer_name=customer.display_name,
        customer_email=customer.email,
        milestone_name=name,
        headline=f"{name}!",
        detail=detail,
        achieved_on=achieved_at.date(),
        time_to_milestone=wording.human_duration(time_to),
        customer_since=customer.customer_since.date() if customer.customer_since else None,
        arr=Money(customer.arr, workspace.currency) if customer.arr is not None else None,
        health_score=customer.health_score,
        celebration_ideas=_ideas_for(customer, action),
        channel=action.get("channel"),
        owner_email=customer.owner_email,
    )


PUBLIC_IDEAS = ("social", "shoutout", "shout-out", "case study", "linkedin", "twitter", "testimonial")


def _ideas_for(customer: Customer, action: dict[str, Any]) -> tuple[str, ...]:
    """The alert's celebration ideas, without the public ones for a customer who opted out."""
    ideas = tuple(action.get("ideas") or PRD_CELEBRATION_IDEAS)
    if policies.wants_public_celebration(customer):
        return ideas
    private = tuple(i for i in ideas if not any(word in i.lower() for word in PUBLIC_IDEAS))
    return (*private, "No public celebration: the customer opted out")


def _email_senders(candidates: list[Connection]) -> list[Connection]:
    """Dedicated email platforms (Klaviyo, SMTP) before a CRM that can also send (HubSpot), and a
    connection only once the settings its schema marks ``enables: send_email`` are filled in, so
    a HubSpot connected for notes alone is not picked to send mail."""

    return sorted(
        (c for c in candidates if configured(c, Capability.SEND_EMAIL.value)),
        key=lambda c: CONNECTORS[c.platform].kind != "email",
    )


def configured(connection: Connection, use: str) -> bool:
    """Whether the settings its schema marks ``enables: <use>`` are filled in (every one)."""
    fields = CONNECTORS[connection.platform].settings_schema._declared_fields
    needed = [n for n, f in fields.items() if f.metadata.get("enables") == use]
    return all((connection.settings or {}).get(n) for n in needed)


def _discount(
    context: _Context,
    milestone: dict[str, Any],
    crossing: Crossing,
    action: dict[str, Any],
    connection: Connection,
    email: str | None,
) -> DiscountCode:
    """A code unique to this milestone (derived from its id, so a retry reuses it)."""
    percentage = action.get("percentage")
    amount = action.get("amount")
    if (percentage is None) == (amount is None):
        raise ValueError("a discount code recognition needs exactly one of 'percentage' or 'amount'")
    prefix = str(action.get("code_prefix") or "THANKS").upper()
    suffix = uuid.UUID(str(milestone["id"])).hex[:10].upper()
    starts = utcnow()
    valid_days = action.get("valid_days")
    workspace = context.workspaces[crossing.workspace_id]
    return DiscountCode(
        idempotency_key=str(milestone["id"]),
        customer_external_id=context.identities[crossing.customer_id][connection.id],
        customer_email=email,
        code=f"{prefix}-{suffix}",
        title=f"{crossing.definition.name} — thank you",
        starts_at=starts,
        ends_at=starts + timedelta(days=int(valid_days)) if valid_days else None,
        percentage=Decimal(str(percentage)) if percentage is not None else None,
        amount=Money(Decimal(str(amount)), str(action.get("currency") or workspace.currency))
        if amount is not None
        else None,
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
