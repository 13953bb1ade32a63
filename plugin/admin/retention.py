"""Retention lift against the holdout, and RHF's estimated retention value.

**Lift.** A definition has a holdout when ``Workspace.settings["holdout"]`` gives it a share:
:mod:`plugin.milestones.policies` marks that share of its milestones ``context.holdout`` and
rewards none of them. For the milestones achieved in the cohort period whose window has closed,
the repeat-purchase rate is the share whose customer placed a counted order within
``window_days`` after the milestone. Lift = recognised rate / held-out rate − 1, the relative
figure RHF's "+15%" reads as. The recognised group is every active milestone not held out
(intention to treat: a reward that failed still counts); a held-out milestone someone
celebrated by hand anyway is left out of both groups. Fewer than :data:`MIN_GROUP` in either
group is reported, but not judged against the target.

**Estimated retention value.** The customers recognised in the month, their average monthly
spend (lifetime spend over their months as customers), kept :data:`HORIZON_MONTHS` months at
the lift: the measured one when conclusive, else RHF's +15% target. The assumption is returned
in words with the figure.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Interval, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from plugin.admin.effect_words import money_text
from plugin.admin.milestones import held_out
from plugin.milestones.award import ACTIVE
from plugin.models import Customer, CustomerMetric, CustomerMilestone, MilestoneDefinition, Order, Workspace

LIFT_TARGET = Decimal("0.15")
DEFAULT_WINDOW_DAYS = 30
MIN_GROUP = 20
HORIZON_MONTHS = 12
DAYS_PER_MONTH = Decimal("30.4375")
FOUR = Decimal("0.0001")


@dataclass(frozen=True)
class Group:
    milestones: int = 0
    repeat: int = 0

    @property
    def rate(self) -> Decimal | None:
        return (Decimal(self.repeat) / Decimal(self.milestones)).quantize(FOUR) if self.milestones else None

    def __add__(self, other: Group) -> Group:
        return Group(self.milestones + other.milestones, self.repeat + other.repeat)

    def data(self) -> dict[str, Any]:
        rate = self.rate
        return {"milestones": self.milestones, "repeat": self.repeat, "rate": None if rate is None else str(rate)}


def compare(recognised: Group, control: Group) -> dict[str, Any]:
    """The two groups, the relative lift and the difference in points, and the verdict."""
    treated, base = recognised.rate, control.rate
    lift = (treated / base - 1).quantize(FOUR) if treated is not None and base else None
    difference = (treated - base).quantize(FOUR) if treated is not None and base is not None else None
    conclusive = recognised.milestones >= MIN_GROUP and control.milestones >= MIN_GROUP
    return {
        "recognised": recognised.data(),
        "held_out": control.data(),
        "lift": None if lift is None else str(lift),
        "difference": None if difference is None else str(difference),
        "conclusive": conclusive,
        "target": str(LIFT_TARGET),
        "met": lift >= LIFT_TARGET if conclusive and lift is not None else None,
    }


def lift(
    session: Session, workspace: Workspace, cohort_from: datetime, cohort_until: datetime, *,
    now: datetime, window_days: int = DEFAULT_WINDOW_DAYS,
) -> dict[str, Any]:
    """Lift per definition with a holdout, and over all of them, for milestones achieved in
    [cohort_from, cohort_until) whose ``window_days`` have passed by ``now``."""
    window = timedelta(days=window_days)
    closes = min(cohort_until, now - window)
    shares = {str(k): v for k, v in ((workspace.settings or {}).get("holdout") or {}).items() if v}
    repeat = exists().where(
        Order.customer_id == CustomerMilestone.customer_id,
        Order.counted.is_(True),
        Order.placed_at > CustomerMilestone.achieved_at,
        Order.placed_at <= CustomerMilestone.achieved_at + literal(window, Interval()),
    )
    flagged = held_out().label("held_out")
    rows = session.execute(
        select(MilestoneDefinition.id, flagged, CustomerMilestone.celebrated, func.count(),
               func.count().filter(repeat))
        .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
        .where(
            CustomerMilestone.workspace_id == workspace.id,
            CustomerMilestone.status == ACTIVE,
            CustomerMilestone.achieved_at >= cohort_from,
            CustomerMilestone.achieved_at < closes,
            or_(MilestoneDefinition.key.in_(list(shares)), held_out()),
        )
        .group_by(MilestoneDefinition.id, flagged, CustomerMilestone.celebrated)
    ).tuples().all()
    groups: dict[uuid.UUID, tuple[Group, Group]] = {}
    for definition_id, is_held_out, celebrated, count, repeated in rows:
        recognised, control = groups.get(definition_id, (Group(), Group()))
        if is_held_out and celebrated:
            continue  # celebrated by hand despite the holdout: neither a control nor a treatment
        if is_held_out:
            control += Group(int(count), int(repeated))
        else:
            recognised += Group(int(count), int(repeated))
        groups[definition_id] = (recognised, control)
    definitions = session.execute(
        select(MilestoneDefinition).where(
            MilestoneDefinition.workspace_id == workspace.id,
            or_(MilestoneDefinition.key.in_(list(shares)), MilestoneDefinition.id.in_(list(groups))),
        ).order_by(MilestoneDefinition.sort_order, MilestoneDefinition.key)
    ).scalars().all()
    per_definition = []
    everyone, everyone_held_out = Group(), Group()
    for definition in definitions:
        recognised, control = groups.get(definition.id, (Group(), Group()))
        everyone, everyone_held_out = everyone + recognised, everyone_held_out + control
        share = shares.get(definition.key)
        per_definition.append({"key": definition.key, "name": definition.name,
                               "holdout_percent": None if share is None else str(share),
                               **compare(recognised, control)})
    return {
        "window_days": window_days,
        "cohort_from": cohort_from.isoformat(),
        "cohort_until": max(closes, cohort_from).isoformat(),
        "definitions": per_definition,
        "overall": compare(everyone, everyone_held_out) if per_definition else None,
    }


def estimated_value(
    session: Session, workspace: Workspace, start: datetime, end: datetime, measured: dict[str, Any] | None, *,
    now: datetime, month_name: str,
) -> dict[str, Any]:
    """RHF's "Est. retention value" of the customers recognised in [start, end), with the
    assumption in words. ``measured`` is :func:`lift`'s ``overall``."""
    recognised = select(CustomerMilestone.customer_id).where(
        CustomerMilestone.workspace_id == workspace.id,
        CustomerMilestone.status == ACTIVE,
        CustomerMilestone.achieved_at >= start,
        CustomerMilestone.achieved_at < end,
        ~held_out(),
    ).distinct()
    rows = session.execute(
        select(Customer.id, Customer.customer_since, CustomerMetric.value)
        .outerjoin(CustomerMetric, (CustomerMetric.customer_id == Customer.id)
                   & (CustomerMetric.metric == "lifetime_spend"))
        .where(Customer.id.in_(recognised))
    ).tuples().all()
    monthly, unknown = Decimal(0), 0
    for _customer_id, since, spend in rows:
        if since is None:
            unknown += 1
            continue
        months = max(Decimal(1), Decimal((now - since).days) / DAYS_PER_MONTH)
        monthly += Decimal(spend or 0) / months
    monthly = monthly.quantize(Decimal("0.01"))
    use_measured = bool(measured and measured["conclusive"] and measured["lift"] is not None)
    rate = Decimal(measured["lift"]) if use_measured and measured else LIFT_TARGET
    amount = max(Decimal(0), monthly * HORIZON_MONTHS * rate).quantize(Decimal("0.01"))
    currency = workspace.currency
    return {
        "amounts": [{"currency": currency, "amount": f"{amount:.2f}"}],
        "customers": len(rows),
        "monthly_spend": f"{monthly:.2f}",
        "lift": str(rate),
        "lift_source": "measured" if use_measured else "target",
        "horizon_months": HORIZON_MONTHS,
        "assumption": _assumption(len(rows), unknown, monthly, rate, amount, use_measured, currency, month_name),
    }


def _assumption(customers: int, unknown: int, monthly: Decimal, rate: Decimal, amount: Decimal, measured: bool,
                currency: str, month_name: str) -> str:
    if not customers:
        return f"No customer was recognised in {month_name}, so there is no retention value to estimate."
    who = "customer" if customers == 1 else "customers"
    if customers == unknown:
        return (f"The {customers} {who} recognised in {month_name} {'has' if customers == 1 else 'have'} no known "
                f"start date to average their spend over, so no retention value is estimated.")
    percent = f"{rate * 100:.0f}%"
    if rate <= 0:
        return (f"The holdout shows no lift from recognition yet ({percent}), so no retention value is claimed "
                f"for the {customers} {who} recognised in {month_name}.")
    source = ("the lift measured against the holdout (repeat purchases after the milestone)" if measured
              else "RHF's +15% retention-lift target, since no holdout has measured a conclusive lift yet")
    left_out = (f" ({unknown} without a known start date {'is' if unknown == 1 else 'are'} left out)"
                if unknown else "")
    return (f"Assumes recognition keeps the {customers} {who} recognised in {month_name} spending {percent} more "
            f"for the next {HORIZON_MONTHS} months — {source}. Together they spend about "
            f"{money_text(monthly, currency)} a month{left_out}: {money_text(monthly, currency)} × {HORIZON_MONTHS} "
            f"× {percent} = {money_text(amount, currency)}.")
