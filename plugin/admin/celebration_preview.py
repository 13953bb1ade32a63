"""What a celebration would look like for a real customer: the email's context and PRD-114's alert.

The settings page previews templates against a customer of the workspace, so the admin sees
their real first name, order count, favourites and lifetime value. The milestone is the
customer's latest one under a definition that uses the template (its real rewards, as the
email would be written from them); a customer who has none gets a *hypothetical* milestone of
that definition, achieved now, whose rewards are the ones the definition would give — said so
on the page, since nothing was applied.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.payloads import MilestoneAlert
from connectors.slack import alert_blocks, alert_text
from plugin.admin.search import customer_matches
from plugin.celebrations.context import celebration_context, zone
from plugin.celebrations.templates import FALLBACK_KEY
from plugin.db import utcnow
from plugin.engine.conditions import (
    AllOf,
    AnyOf,
    Condition,
    Facts,
    InvalidCondition,
    MetricCondition,
    TenureCondition,
    crossed,
    parse_condition,
)
from plugin.engine.conditions import (
    to_json as condition_json,
)
from plugin.milestones.planning import milestone_alert
from plugin.models import (
    Customer,
    CustomerMetric,
    CustomerMilestone,
    Effect,
    MilestoneDefinition,
    Order,
    Workspace,
)
from plugin.models import effect as status

RECENT = 8
SAMPLE_METRICS = {"order_count": Decimal(10), "lifetime_spend": Decimal("412.50")}
SAMPLE_ORDERS = [[{"title": "Kale", "quantity": 2}, {"title": "Sourdough", "quantity": 1}],
                 [{"title": "Kale", "quantity": 1}, {"title": "Free-range eggs", "quantity": 1}]]


@dataclass(frozen=True)
class Subject:
    """Who and what a preview is about."""

    customer: Customer
    definition: MilestoneDefinition
    milestone: CustomerMilestone
    siblings: list[Effect]
    real: bool  # a milestone the customer reached, with the rewards it really got


def customer_choices(session: Session, workspace_id: uuid.UUID, query: str = "", limit: int = RECENT) -> list[Customer]:
    """Customers matching ``query`` (email, name or company); without one, those with the most
    recent milestones (then the newest customers, for a workspace with no milestone yet)."""
    base = select(Customer).where(Customer.workspace_id == workspace_id)
    query = query.strip()
    if query:
        matching = base.where(customer_matches(query))
        return list(session.execute(matching.order_by(Customer.email).limit(limit)).scalars())
    latest = (
        select(CustomerMilestone.customer_id, func.max(CustomerMilestone.achieved_at).label("latest"))
        .where(CustomerMilestone.workspace_id == workspace_id)
        .group_by(CustomerMilestone.customer_id)
        .subquery()
    )
    found = list(session.execute(
        base.join(latest, latest.c.customer_id == Customer.id).order_by(latest.c.latest.desc()).limit(limit)
    ).scalars())
    if len(found) < limit:
        seen = {c.id for c in found}
        newest = session.execute(base.order_by(Customer.created_at.desc()).limit(limit)).scalars()
        found += [c for c in newest if c.id not in seen][: limit - len(found)]
    return found


def customer_of(session: Session, workspace_id: uuid.UUID, customer_id: uuid.UUID | None) -> Customer | None:
    """The workspace's customer ``customer_id`` (None for another workspace's), else its first choice."""
    if customer_id is not None:
        found = session.get(Customer, customer_id)
        if found is not None and found.workspace_id == workspace_id:
            return found
        return None
    choices = customer_choices(session, workspace_id, limit=1)
    return choices[0] if choices else None


def uses_template(definition: MilestoneDefinition, key: str) -> bool:
    return any(
        a.get("kind") == "email" and (a.get("template") or FALLBACK_KEY) == key for a in definition.recognition or []
    )


def subject_for(session: Session, workspace: Workspace, customer: Customer, *, template: str | None = None,
                definition_id: uuid.UUID | None = None) -> Subject:
    """The milestone a preview shows for ``customer``: of ``definition_id``, or of a definition that
    sends ``template``; real when the customer reached one, else hypothetical (see the module)."""
    definitions = list(session.execute(
        select(MilestoneDefinition).where(MilestoneDefinition.workspace_id == workspace.id)
        .order_by(MilestoneDefinition.sort_order, MilestoneDefinition.key)
    ).scalars())
    if definition_id is not None:
        candidates = [d for d in definitions if d.id == definition_id]
    elif template is not None:
        candidates = [d for d in definitions if uses_template(d, template)]
    else:
        candidates = definitions
    by_id = {d.id: d for d in candidates}
    if by_id:
        milestone = session.execute(
            select(CustomerMilestone)
            .where(CustomerMilestone.customer_id == customer.id, CustomerMilestone.definition_id.in_(list(by_id)))
            .order_by(CustomerMilestone.achieved_at.desc()).limit(1)
        ).scalar_one_or_none()
        if milestone is not None:
            siblings = list(session.execute(select(Effect).where(Effect.milestone_id == milestone.id)).scalars())
            return Subject(customer, by_id[milestone.definition_id], milestone, siblings, real=True)
    definition = candidates[0] if candidates else definitions[0] if definitions else _placeholder_definition()
    return hypothetical(workspace, customer, definition, metrics_of_customer(session, customer.id))


def hypothetical(workspace: Workspace, customer: Customer, definition: MilestoneDefinition,
                 metrics: dict[str, Decimal]) -> Subject:
    """``customer`` reaching ``definition`` now, with the rewards the definition would give. The
    value is the highest occurrence the customer's ``metrics`` have passed, else the first one."""
    now = utcnow()
    value = "1"
    try:
        condition = parse_condition(definition.condition)
    except InvalidCondition:
        condition = None
    if condition is not None:
        tz = zone(customer.timezone or workspace.timezone)
        today = now.astimezone(tz).date()
        since = customer.customer_since.astimezone(tz) if customer.customer_since else None
        reached = crossed(condition, Facts({}, None, today), Facts(metrics, since, today))
        value = reached[-1].value if reached else first_value(condition)
    milestone = CustomerMilestone(
        milestone_name=definition.name, milestone_type=definition.type, milestone_value=value, achieved_at=now,
        occurrence=1, time_to_milestone=(now - customer.customer_since) if customer.customer_since else None,
        status="active", celebrated=False,
    )
    return Subject(customer, definition, milestone, simulated_rewards(definition.recognition or [], workspace.currency),
                   real=False)


def first_value(condition: Condition) -> str:
    """What reaching ``condition`` for the first time reads as ("10", "1 year")."""
    if isinstance(condition, MetricCondition):
        value = condition_json(condition)[condition.op]
        return ("true" if value else "false") if isinstance(value, bool) else str(value)
    if isinstance(condition, TenureCondition):
        return f"{condition.amount} {condition.unit if condition.amount != 1 else condition.unit[:-1]}"
    return "all conditions met" if isinstance(condition, AllOf) else "any condition met" if isinstance(condition, AnyOf) else ""


def metrics_of_customer(session: Session, customer_id: uuid.UUID) -> dict[str, Decimal]:
    return dict(session.execute(
        select(CustomerMetric.metric, CustomerMetric.value).where(CustomerMetric.customer_id == customer_id)
    ).tuples().all())


def simulated_rewards(recognition: list[dict[str, Any]], currency: str) -> list[Effect]:
    """Succeeded reward effects as the planner would request them, never saved: what an email
    of a hypothetical milestone would mention."""
    now = utcnow()
    effects: list[Effect] = []
    for action in recognition:
        kind = action.get("kind")
        request: dict[str, Any]
        if kind == "store_credit":
            days = action.get("expires_in_days")
            request = {"amount": {"amount": str(action.get("amount")), "currency": action.get("currency") or currency},
                       "expires_at": (now + timedelta(days=int(days))).isoformat() if days else None}
        elif kind == "discount_code":
            days = action.get("valid_days")
            amount = action.get("amount")
            request = {
                "code": f"{str(action.get('code_prefix') or 'THANKS').upper()}-PREVIEW",
                "percentage": None if action.get("percentage") is None else str(action["percentage"]),
                "amount": None if amount is None else {"amount": str(amount), "currency": action.get("currency") or currency},
                "starts_at": now.isoformat(),
                "ends_at": (now + timedelta(days=int(days))).isoformat() if days else None,
            }
        elif kind == "customer_tag":
            request = {"tags": list(action.get("tags") or [action.get("tag")])}
        else:
            continue
        effects.append(Effect(kind=kind, status=status.SUCCEEDED, payload={"action": action, "request": request}))
    return effects


def context_of(session: Session, workspace: Workspace, subject: Subject) -> dict[str, Any]:
    """The celebration email's context for ``subject``, from the customer's real data."""
    line_items = [
        list(items or [])
        for items in session.scalars(
            select(Order.line_items)
            .where(Order.customer_id == subject.customer.id, Order.counted.is_(True))
            .order_by(Order.placed_at, Order.id)
        )
    ]
    return celebration_context(
        workspace=workspace, customer=subject.customer, milestone=subject.milestone, definition=subject.definition,
        metrics=metrics_of_customer(session, subject.customer.id), line_items_per_order=line_items,
        siblings=subject.siblings,
    )


def alert_of(workspace: Workspace, subject: Subject, context: dict[str, Any]) -> MilestoneAlert:
    """PRD-114's Slack alert for ``subject``, built as the planner builds it."""
    action = next((a for a in subject.definition.recognition or [] if a.get("kind") == "slack_alert"), {})
    key = str(subject.milestone.id or "preview")
    return milestone_alert(key, subject.customer, workspace, subject.definition.name, context["milestone"]["detail"],
                           subject.milestone.achieved_at, subject.milestone.time_to_milestone, action)


@dataclass(frozen=True)
class AlertPreview:
    blocks: list[dict[str, Any]]  # exactly what chat.postMessage would get
    text: str  # the notification fallback
    subject: Subject
    alert: MilestoneAlert


def alert_preview(session: Session, workspace: Workspace, customer: Customer | None,
                  definition_id: uuid.UUID | None = None) -> AlertPreview:
    """PRD-114's alert for ``customer`` reaching ``definition_id`` (the sample customer if None)."""
    if customer is None:
        definition = session.get(MilestoneDefinition, definition_id) if definition_id else None
        subject = sample_subject()
        if definition is not None and definition.workspace_id == workspace.id:
            subject = hypothetical(workspace, subject.customer, definition, SAMPLE_METRICS)
        context = sample_context(workspace, subject)
    else:
        subject = subject_for(session, workspace, customer, definition_id=definition_id)
        context = context_of(session, workspace, subject)
    alert = alert_of(workspace, subject, context)
    return AlertPreview(alert_blocks(alert), alert_text(alert), subject, alert)


@cache
def sample_subject() -> Subject:
    """A customer who has everything a template may show, reaching a 10th order with every reward."""
    since = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    achieved = since + timedelta(days=380)
    customer = Customer(first_name="Alex", last_name="Rivera", company_name="Rivera & Co", email="alex@example.com",
                        customer_since=since, arr=Decimal("65000"), health_score=82, timezone="UTC")
    definition = MilestoneDefinition(key="order-10", name="10th Order", type="order",
                                     condition={"metric": "order_count", "gte": 10}, recognition=[])
    milestone = CustomerMilestone(milestone_name="10th Order", milestone_type="order", milestone_value="10",
                                  achieved_at=achieved, occurrence=1, time_to_milestone=achieved - since)
    rewards = simulated_rewards([
        {"kind": "store_credit", "amount": "5.00", "expires_in_days": 90},
        {"kind": "discount_code", "percentage": "20", "valid_days": 7, "code_prefix": "YEAR1"},
        {"kind": "customer_tag", "tag": "VIP"},
    ], "USD")
    return Subject(customer, definition, milestone, rewards, real=False)


def sample_context(workspace: Workspace | None = None, subject: Subject | None = None) -> dict[str, Any]:
    """A context with every variable set (for checking templates, and a workspace without customers):
    the sample customer's 10th order with every reward, reached with their $500 spent."""
    also = [] if subject else [_sample_also()]
    subject = subject or sample_subject()
    return celebration_context(
        workspace=workspace or Workspace(name="Red Hill Fresh", currency="USD", timezone="UTC", settings={}),
        customer=subject.customer, milestone=subject.milestone, definition=subject.definition,
        metrics=SAMPLE_METRICS, line_items_per_order=SAMPLE_ORDERS, siblings=subject.siblings, also=also,
    )


@cache
def _sample_also() -> tuple[CustomerMilestone, MilestoneDefinition]:
    lead = sample_subject().milestone
    definition = MilestoneDefinition(key="spend-500", name="$500 Spent", type="spend",
                                     condition={"metric": "lifetime_spend", "gte": 500}, recognition=[])
    return CustomerMilestone(milestone_name="$500 Spent", milestone_type="spend", milestone_value="500",
                             achieved_at=lead.achieved_at, occurrence=1,
                             time_to_milestone=lead.time_to_milestone), definition


def _placeholder_definition() -> MilestoneDefinition:
    """For a workspace without a single definition: a 10th order, never saved."""
    return MilestoneDefinition(key="order-10", name="10th Order", type="order",
                               condition={"metric": "order_count", "gte": 10}, recognition=[])
