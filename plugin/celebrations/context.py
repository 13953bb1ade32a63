"""What a celebration email may say: RHF's personalisation data points and the rewards actually given.

RHF lists first name, order count, favourite products, lifetime value and time as customer;
PRD-114 adds ARR and health score for B2B accounts. Rewards come from the milestone's sibling
effects that *succeeded* — the amount that was credited, the code that was created, the tag
that was added — so an email never promises a reward that was not applied.

An email that covers several milestones crossed at once (:mod:`plugin.milestones.combined`)
is written for its first one (``milestone``, whose template it uses) and also gets every one of
them (``milestones``), the others (``also_reached``, ``also_reached_text``: "$500 Spent and
$1,000 Spent") and the rewards of them all.

The context holds plain values only (str, int, lists and dicts of them): nothing a sandboxed
template could use to reach the database.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.celebrations.render import ordinal
from plugin.celebrations.rewards import REWARD_KINDS, rewards_given
from plugin.engine.conditions import metrics_of, parse_condition, uses_tenure
from plugin.milestones import combined, wording
from plugin.milestones.wording import joined
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

FAVOURITES = 3


def favourite_products(line_items_per_order: Iterable[Iterable[Mapping[str, Any]]], limit: int = FAVOURITES) -> list[str]:
    """The ``limit`` titles bought in the largest quantities; ties go to the one bought first."""
    quantities: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for items in line_items_per_order:
        for item in items:
            title = " ".join(str(item.get("title") or "").split())
            if not title:
                continue
            first_seen.setdefault(title, len(first_seen))
            quantities[title] += _quantity(item)
    ranked = sorted(quantities, key=lambda t: (-quantities[t], first_seen[t]))
    return [t for t in ranked if quantities[t] > 0][:limit]


def items_count(line_items_per_order: Iterable[Iterable[Mapping[str, Any]]]) -> int:
    return sum(_quantity(item) for items in line_items_per_order for item in items)


def _quantity(item: Mapping[str, Any]) -> int:
    try:
        return max(0, int(item.get("quantity") or 0))
    except (TypeError, ValueError):
        return 0


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def celebration_context(
    *,
    workspace: Workspace,
    customer: Customer,
    milestone: CustomerMilestone,
    definition: MilestoneDefinition,
    metrics: Mapping[str, Decimal],
    line_items_per_order: list[list[dict[str, Any]]],
    siblings: Iterable[Effect],
    also: Sequence[tuple[CustomerMilestone, MilestoneDefinition]] = (),
) -> dict[str, Any]:
    """Everything a template may use, as plain values. ``also``: the other milestones of a
    combined email, after ``milestone``."""
    currency, tz = workspace.currency, zone(workspace.timezone)
    lead = _milestone(milestone, definition, currency, tz)
    others = [_milestone(m, d, currency, tz) for m, d in also]
    rewards = rewards_given(siblings, currency, tz)
    favourites = favourite_products(line_items_per_order)
    since = customer.customer_since
    tenure = max(milestone.achieved_at - since, timedelta(0)) if since else None
    return {
        "store_name": workspace.name,
        "first_name": customer.first_name or None,
        "last_name": customer.last_name or None,
        "full_name": " ".join(p for p in (customer.first_name, customer.last_name) if p) or None,
        "company_name": customer.company_name or None,
        "email": customer.email,
        "order_count": int(metrics.get("order_count") or 0),
        "items_count": items_count(line_items_per_order),
        "lifetime_value": wording.format_money(metrics.get("lifetime_spend") or Decimal(0), currency),
        "time_as_customer": wording.human_duration(tenure),
        "customer_since": wording.month_year(since.astimezone(tz)) if since else None,
        "favourite_products": favourites,
        "favourite_products_text": joined(favourites),
        "arr": wording.format_money(customer.arr, currency) if customer.arr is not None else None,
        "health_score": customer.health_score,
        "milestone": lead,
        "milestones": [lead, *others],
        "also_reached": others,
        "also_reached_text": joined([m["name"] for m in others]),
        "rewards": rewards,
        "credit": next((r for r in rewards if r["kind"] == "store_credit"), None),
        "discount": next((r for r in rewards if r["kind"] == "discount_code"), None),
        "tags": [r["tag"] for r in rewards if r["kind"] == "customer_tag"],
    }


def _milestone(milestone: CustomerMilestone, definition: MilestoneDefinition, currency: str, tz: ZoneInfo) -> dict[str, Any]:
    value = milestone.milestone_value or ""
    try:
        condition = parse_condition(definition.condition)
        metric = next(iter(sorted(metrics_of(condition))), None)
        tenure_only = uses_tenure(condition) and metric is None
    except Exception:  # a definition the engine no longer reads still gets its email
        metric, tenure_only = None, False
    return {
        "name": milestone.milestone_name,
        "key": definition.key,
        "type": milestone.milestone_type,
        "value": value,
        "ordinal": ordinal(value),
        "detail": f"{value} as a customer" if tenure_only else wording.detail_line(metric, value, currency),
        "achieved_on": wording.long_date(milestone.achieved_at.astimezone(tz)),
        "occurrence": milestone.occurrence,
        "time_to_milestone": wording.human_duration(milestone.time_to_milestone),
    }


def email_properties(context: Mapping[str, Any]) -> dict[str, str | int]:
    """The context flattened for platforms that render their own templates (HubSpot custom
    properties take no lists). The account's ARR and health score stay out of marketing tools."""
    milestone = context["milestone"]
    credit, discount = context.get("credit") or {}, context.get("discount") or {}
    lines = [r["line"] for r in context["rewards"]]
    flat: dict[str, Any] = {
        "store_name": context["store_name"],
        "first_name": context["first_name"],
        "last_name": context["last_name"],
        "company_name": context["company_name"],
        "order_count": context["order_count"],
        "items_count": context["items_count"],
        "lifetime_value": context["lifetime_value"],
        "time_as_customer": context["time_as_customer"],
        "customer_since": context["customer_since"],
        "favourite_products": context["favourite_products_text"],
        "milestone_key": milestone["key"],
        "milestone_name": milestone["name"],
        "milestone_type": milestone["type"],
        "milestone_value": milestone["value"],
        "milestone_detail": milestone["detail"],
        "achieved_on": milestone["achieved_on"],
        "milestone_count": len(context["milestones"]),
        "milestone_names": joined([m["name"] for m in context["milestones"]]),
        "also_reached": context["also_reached_text"],
        "credit_amount": credit.get("amount"),
        "credit_code": credit.get("code"),
        "discount_code": discount.get("code"),
        "discount_label": discount.get("label"),
        "discount_expires_on": discount.get("expires_on"),
        "tags": ", ".join(context["tags"]),
        "reward_lines": "\n".join(lines),
    }
    return {k: v for k, v in flat.items() if v not in (None, "")}


def load_context(session: Session, effect: Effect) -> tuple[Customer, dict[str, Any]]:
    """The customer and the template context of an email effect, read now (rewards settled):
    for every milestone the email covers, with the rewards of them all."""
    ids = combined.covered_by(effect.milestone_id, effect.payload)
    found = {m.id: m for m in session.scalars(select(CustomerMilestone).where(CustomerMilestone.id.in_(ids)))}
    covered = [found[i] for i in ids if i in found]
    if not covered:
        raise LookupError(f"milestone {effect.milestone_id} is gone")
    milestone = covered[0]
    customer = session.get(Customer, milestone.customer_id)
    workspace = session.get(Workspace, milestone.workspace_id)
    definitions = {
        d.id: d for d in session.scalars(
            select(MilestoneDefinition).where(MilestoneDefinition.id.in_({m.definition_id for m in covered}))
        )
    }
    definition = definitions.get(milestone.definition_id)
    if customer is None or workspace is None or definition is None:
        raise LookupError(f"milestone {milestone.id} lost its customer, workspace or definition")
    metrics = dict(
        session.execute(
            select(CustomerMetric.metric, CustomerMetric.value).where(CustomerMetric.customer_id == customer.id)
        ).tuples().all()
    )
    line_items = [
        list(items or [])
        for items in session.scalars(
            select(Order.line_items)
            .where(Order.customer_id == customer.id, Order.counted.is_(True))
            .order_by(Order.placed_at, Order.id)
        )
    ]
    siblings = session.scalars(
        select(Effect).where(Effect.milestone_id.in_([m.id for m in covered]), Effect.id != effect.id)
    ).all()
    context = celebration_context(
        workspace=workspace,
        customer=customer,
        milestone=milestone,
        definition=definition,
        metrics=metrics,
        line_items_per_order=line_items,
        siblings=siblings,
        also=[(m, definitions[m.definition_id]) for m in covered[1:] if m.definition_id in definitions],
    )
    return customer, context


def unsettled_rewards(session: Session, milestone_id: uuid.UUID, effect_id: int) -> list[Effect]:
    """The reward effects that may still succeed (pending, in flight, held) of the milestone — of
    every milestone the email ``effect_id`` covers, when it covers several."""
    email = session.get(Effect, effect_id)
    ids = combined.covered_by(milestone_id, email.payload if email is not None else None)
    return list(
        session.scalars(
            select(Effect).where(
                Effect.milestone_id.in_(ids),
                Effect.id != effect_id,
                Effect.kind.in_(REWARD_KINDS),
                Effect.status.in_((status.PENDING, status.IN_FLIGHT, status.HELD)),
            )
        )
    )
