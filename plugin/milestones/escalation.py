"""Escalation to the team lead (RHF: "Escalate to Team Lead if: exceptional milestone (100th,
5yr), celebrity/influencer customer, media opportunity, error in recognition").

Each escalation is an ``escalation`` effect (outbox, idempotent) that posts a short message to
the team lead's Slack channel — the Slack connection's ``escalation_channel`` setting — with
the reason, the milestones, the customer, the next step and a link to the admin page where it
is taken. Without Slack, or without that channel, the effect is ``no_connection``: visible in
Operations, never dropped. The rules:

1. **Exceptional milestone** — its definition is marked ``escalate`` (the default catalogue
   marks the 100th order and the 5-year anniversary).
2. **VIP customer** — every milestone a VIP reaches. A customer is a VIP when any of these
   holds (workspace settings, all optional):

   * a recognition gave them the VIP tag: a ``customer_tag`` effect with the tag named by
     ``vip_tag`` (default ``VIP``, any case) succeeded — RHF's "VIP upgrade" at the 100th order;
   * their CRM flags them: their ``vip`` metric is true — map a CRM checkbox to ``metric:vip``
     in the HubSpot connection's property mapping (RHF's celebrity or influencer customer);
   * their ARR is at least ``vip_arr`` (e.g. ``"50000"``; unset, ARR alone never makes a VIP).

3. **Error in a recognition** — an effect that goes dead (a permanent error, or out of attempts)
   escalates once, with its error: the key is ``<the effect's key>:escalation``, so a retry that
   dies again adds nothing. An escalation that dies is not escalated again.

Rules 1 and 2 are checked as milestones are awarded: one message for the milestones a customer
crossed at once (a group of :mod:`plugin.milestones.combined`; key ``<first milestone
id>:escalation``), with every reason that applies. Escalations are not
rewards: a milestone waiting for review escalates at once (the team lead may be the reviewer).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import Capability, as_utc
from connectors.payloads import Escalation, to_json
from connectors.registry import CONNECTORS
from plugin.milestones import combined, planning, wording
from plugin.milestones.definitions import ActiveDefinition
from plugin.milestones.tenure import local_zone
from plugin.models import Connection, Customer, CustomerMilestone, Effect, MilestoneDefinition, Workspace
from plugin.models import effect as status
from plugin.upsert import upsert

if TYPE_CHECKING:
    from plugin.milestones.award import Crossing

KIND = planning.ESCALATION
USE = "escalation"  # the settings field metadata ``enables`` that routes escalations (SlackSettings)
DEFAULT_VIP_TAG = "VIP"
VIP_METRIC = "vip"
REVIEW_PATH = "/admin/reviews"
DEAD_EFFECTS_PATH = "/admin/operations/effects?status=dead"


# --- who is a VIP --------------------------------------------------------------------------------


def vip_tag(settings: dict[str, Any] | None) -> str:
    return str((settings or {}).get("vip_tag") or DEFAULT_VIP_TAG).strip()


def vip_reason(
    customer: Customer, settings: dict[str, Any] | None, metrics: dict[str, Any], tagged: bool, currency: str
) -> str | None:
    """Why this customer is a VIP (the module's rule), or None when they are not."""
    if tagged:
        return f"tagged {vip_tag(settings)} by an earlier recognition"
    if _truthy(metrics.get(VIP_METRIC)):
        return "flagged VIP in the CRM"
    threshold = _decimal((settings or {}).get("vip_arr"))
    if threshold is not None and customer.arr is not None and customer.arr >= threshold:
        return f"ARR {wording.format_money(customer.arr, currency)} (VIP from {wording.format_money(threshold, currency)})"
    return None


def tagged_vip(session: Session, tags: dict[uuid.UUID, str]) -> set[uuid.UUID]:
    """Of the customers in ``tags`` (customer id → their workspace's VIP tag), those a succeeded
    ``customer_tag`` effect gave that tag."""
    ids = list(tags)
    if not ids:
        return set()
    found = set()
    for customer_id, payload in session.execute(
        select(CustomerMilestone.customer_id, Effect.payload)
        .join(CustomerMilestone, CustomerMilestone.id == Effect.milestone_id)
        .where(CustomerMilestone.customer_id.in_(ids), Effect.kind == "customer_tag",
               Effect.status == status.SUCCEEDED)
    ).tuples():
        given = ((payload or {}).get("request") or {}).get("tags") or ()
        wanted = tags[customer_id].casefold()
        if any(str(tag).strip().casefold() == wanted for tag in given):
            found.add(customer_id)
    return found


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    number = _decimal(value)
    return number is not None and number != 0


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


# --- rules 1 and 2: as milestones are awarded ---------------------------------------------------


def on_award(session: Session, context: Any, awarded: Sequence[tuple[dict[str, Any], Crossing]]) -> list[dict[str, Any]]:
    """The escalation rows for an award pass: one per group (the milestones a customer crossed
    at once) with an exceptional milestone or of a VIP. ``context`` is the planner's
    (workspaces, customers, connections)."""
    if not awarded:
        return []
    customers: dict[uuid.UUID, Customer] = context.customers
    workspaces: dict[uuid.UUID, Workspace] = context.workspaces
    tags = {c.customer_id: vip_tag(workspaces[c.workspace_id].settings) for _, c in awarded}
    tagged = tagged_vip(session, tags)
    by_id = {milestone["id"]: (milestone, crossing) for milestone, crossing in awarded}
    rows = []
    for group in combined.groups(awarded):
        members = [by_id[i] for i in group]
        crossing = members[0][1]
        workspace, customer = workspaces[crossing.workspace_id], customers[crossing.customer_id]
        metrics = dict(crossing.metrics)
        vip = vip_reason(customer, workspace.settings, metrics, customer.id in tagged, workspace.currency)
        exceptional = [(m, c) for m, c in members if c.definition.escalate]
        if not exceptional and vip is None:
            continue
        reasons = []
        if exceptional:
            reasons.append("Exceptional milestone: " + wording.joined([c.definition.name for _, c in exceptional]))
        if vip is not None:
            reasons.append(f"VIP customer: {vip}")
        concerned = members if vip is not None else exceptional
        review = any(m.get("status") == "pending_review" for m, _ in concerned)
        lines = [_line(c.definition.name, planning.milestone_detail(c.definition, c.value, workspace.currency),
                       c.achieved_at, m.get("status"), workspace) for m, c in concerned]
        escalation = Escalation(
            idempotency_key=f"{concerned[0][0]['id']}:escalation",
            milestone_id=str(concerned[0][0]["id"]),
            customer_name=customer.display_name,
            customer_email=customer.email,
            reasons=tuple(reasons),
            milestones=tuple(lines),
            customer_context=customer_lines(customer, metrics, workspace),
            next_step=(
                "Approve or reject the held rewards in the review queue, and decide on a personal touch."
                if review
                else "Reach out personally: a call, a handwritten note or a gift (RHF's custom touches)."
            ),
            link=admin_link(REVIEW_PATH if review else f"/admin/milestones/customers/{customer.id}"),
        )
        ids = [m["id"] for m, _ in concerned]
        rows.append(_row(context.connections[workspace.id], workspace.id, ids, escalation))
    return rows


# --- rule 3: an effect that went dead -----------------------------------------------------------


def on_dead(session: Session, effect_id: int) -> bool:
    """Plan the escalation of a dead effect (once per effect). True when a new one was planned."""
    effect = session.get(Effect, effect_id)
    if effect is None or effect.kind == KIND or effect.status != status.DEAD:
        return False
    ids = combined.covered_by(effect.milestone_id, effect.payload)
    milestones = {
        m.id: m for m in session.execute(select(CustomerMilestone).where(CustomerMilestone.id.in_(ids))).scalars()
    }
    lead = milestones.get(effect.milestone_id) or next(iter(milestones.values()), None)
    workspace = session.get(Workspace, effect.workspace_id)
    if lead is None or workspace is None:
        return False
    customer = session.get(Customer, lead.customer_id)
    if customer is None:
        return False
    definitions = {
        d.id: d for d in session.execute(
            select(MilestoneDefinition).where(MilestoneDefinition.id.in_({m.definition_id for m in milestones.values()}))
        ).scalars()
    }
    lines = [
        _line(m.milestone_name, _stored_detail(definitions.get(m.definition_id), m, workspace.currency),
              m.achieved_at, m.status, workspace)
        for m in (milestones[i] for i in ids if i in milestones)
    ]
    what = wording.EFFECT_NAMES.get(effect.kind, effect.kind.replace("_", " "))
    escalation = Escalation(
        idempotency_key=f"{effect.idempotency_key}:escalation",
        milestone_id=str(lead.id),
        customer_name=customer.display_name,
        customer_email=customer.email,
        reasons=(f"Error in a recognition: the {what} failed for good — {effect.last_error or 'no error recorded'}",),
        milestones=tuple(lines),
        customer_context=customer_lines(customer, (lead.context or {}).get("metrics") or {}, workspace),
        next_step=f"Fix the cause, then retry the {what} in Operations (effect {effect.id}); until then the "
        "customer has not received it.",
        link=admin_link(DEAD_EFFECTS_PATH),
    )
    connections = list(session.execute(
        select(Connection).where(Connection.workspace_id == workspace.id, Connection.status == "active")
        .order_by(Connection.created_at)
    ).scalars())
    row = _row(connections, workspace.id, [lead.id], escalation)
    inserted = session.execute(
        upsert(session, Effect.__table__, conflict=["idempotency_key"], returning=["id"]), row
    ).scalar_one_or_none()
    return inserted is not None


def _stored_detail(definition: MilestoneDefinition | None, milestone: CustomerMilestone, currency: str) -> str:
    value = milestone.milestone_value or ""
    if definition is None:
        return value
    try:
        return planning.milestone_detail(ActiveDefinition.of(definition), value, currency)
    except Exception:  # a definition the engine no longer reads still gets its escalation
        return value


# --- the message and its row ------------------------------------------------------------------------


def route(connections: Iterable[Connection]) -> Connection | None:
    """The first connection that can post an escalation: it alerts, and its schema's escalation
    setting (``enables: escalation``) is filled in."""
    for connection in connections:
        cls = CONNECTORS.get(connection.platform)
        if cls is None or Capability.POST_ALERT not in cls.capabilities:
            continue
        declares = any(f.metadata.get("enables") == USE for f in cls.settings_schema._declared_fields.values())
        if declares and planning.configured(connection, USE):
            return connection
    return None


def _row(connections: Iterable[Connection], workspace_id: uuid.UUID, milestone_ids: list[uuid.UUID],
         escalation: Escalation) -> dict[str, Any]:
    payload: dict[str, Any] = {"action": {"kind": KIND}, "request": to_json(escalation)}
    if len(milestone_ids) > 1:
        payload[combined.COVERS] = [str(i) for i in milestone_ids]
    row = planning.effect_row(workspace_id, milestone_ids[0], KIND, escalation.idempotency_key, payload)
    connection = route(connections)
    if connection is None:
        row.update(status=status.NO_CONNECTION,
                   last_error="no Slack connection has a team lead channel (escalation_channel) to escalate to")
    else:
        row["connection_id"] = connection.id
    return row


def _line(name: str, detail: str, achieved_at: datetime, milestone_status: str | None, workspace: Workspace) -> str:
    line = f"{name} — {detail} ({wording.long_date(as_utc(achieved_at).astimezone(local_zone(None, workspace.timezone)))})"
    return line + (" · waits for review" if milestone_status == "pending_review" else "")


def customer_lines(customer: Customer, metrics: dict[str, Any], workspace: Workspace) -> tuple[str, ...]:
    """What the team lead needs to know about the customer at a glance."""
    currency, zone = workspace.currency, local_zone(None, workspace.timezone)
    lines = []
    if customer.customer_since is not None:
        lines.append(f"Customer since {wording.month_year(as_utc(customer.customer_since).astimezone(zone))}")
    orders = _decimal(metrics.get("order_count"))
    if orders:
        lines.append(f"Orders: {wording.format_number(str(orders))}")
    spend = _decimal(metrics.get("lifetime_spend"))
    if spend:
        lines.append(f"Lifetime spend: {wording.format_money(spend, currency)}")
    if customer.arr is not None:
        lines.append(f"ARR: {wording.format_money(customer.arr, currency)}")
    if customer.health_score is not None:
        lines.append(f"Health score: {customer.health_score}")
    return tuple(lines)


def admin_link(path: str) -> str | None:
    """``MILESTONES_PUBLIC_URL`` + ``path``, or None outside an app (nothing to link to)."""
    from plugin.services import current

    try:
        base = current().settings.public_url
    except RuntimeError:
        return None
    return f"{base.rstrip('/')}{path}"
