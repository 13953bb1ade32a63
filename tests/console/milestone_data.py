"""Data for the settings page's tests: half a year of a grocer's milestones.

:func:`half_year` writes what Red Hill Fresh's dashboard would hold after six months: a few
hundred milestones across the catalogue, their effects (credits issued, emails, alerts, tasks,
some failures), celebrations and responses, a holdout on the 10th and 25th orders with the
orders that followed, and reviews still waiting. It is seeded, and it keeps its own tally of
what it wrote (:class:`Tally`) so browser tests can check the page's numbers against it.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from plugin.demo.sample_data import FIRST_NAMES, LAST_NAMES, STAPLES, TREATS, VEG_BOX
from plugin.milestones.policies import in_holdout
from plugin.models import (
    Customer,
    CustomerMetric,
    CustomerMilestone,
    Effect,
    MilestoneDefinition,
    Order,
    Workspace,
)
from tests.api.support import Rows, credit

ZONE = "Australia/Melbourne"
HOLDOUT = {"order-10": 25, "order-25": 25}
WINDOW = timedelta(days=30)
MONTHS = 6
# How often each definition comes up among a week's milestones.
MIX = (
    ("order-1", 22), ("order-10", 20), ("order-25", 17), ("spend-500", 9), ("anniversary-1y", 9), ("order-50", 6),
    ("spend-1000", 6), ("anniversary-2y", 4), ("spend-2500", 3), ("order-100", 1), ("spend-5000", 1),
)
REPEAT_RATE = {False: 0.74, True: 0.56}  # recognised vs held out: the chance of ordering again within 30 days
DEAD_ERRORS = {
    "crm_note": "HubSpot answered 401: the private app token was revoked",
    "email": "Klaviyo rejected the profile: the email address bounced",
}
CAFES = ("Peninsula Pantry Café", "Merricks General Wine Store", "Flinders Bakehouse", "Main Ridge Dairy Kitchen",
         "Sorrento Larder", "Balnarring Beach Kiosk")




def add_order(rows: Rows, customer: Customer, connection_id: uuid.UUID, placed_at: datetime, total: str,
              items: list[tuple[str, int]]) -> Order:
    order = Order(
        workspace_id=rows.workspace_id, connection_id=connection_id, external_id=str(uuid.uuid4().int)[:12],
        customer_id=customer.id, currency="USD", total=Decimal(total), paid=True, counted=True, has_snapshot=True,
        placed_at=placed_at, line_items=[{"title": title, "quantity": quantity} for title, quantity in items],
    )
    rows.session.add(order)
    rows.session.flush()
    return order


@dataclass
class Tally:
    """What :func:`half_year` wrote, counted as it wrote it."""

    now: datetime
    zone: ZoneInfo
    milestones_per_month: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    credits_per_month: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    milestones_per_week: dict[date, int] = field(default_factory=lambda: defaultdict(int))
    # (held out?) -> [milestones, repeat] for the holdout definitions whose window has closed
    lift_groups: dict[bool, list[int]] = field(default_factory=lambda: {False: [0, 0], True: [0, 0]})
    pending_reviews: list[uuid.UUID] = field(default_factory=list)
    dead: int = 0

    def month(self, when: datetime) -> str:
        return f"{when.astimezone(self.zone):%Y-%m}"


def half_year(rows: Rows, connection_id: uuid.UUID, now: datetime, seed: int = 114) -> Tally:
    """Six months of milestones up to ``now``, in Melbourne, with a holdout; see the module doc.

    Rows are built as model objects and written in one flush (a few hundred customers with
    their orders, milestones and effects take a second, not a minute)."""
    rng = random.Random(seed)
    workspace = rows.session.get(Workspace, rows.workspace_id)
    assert workspace is not None
    workspace.timezone = ZONE
    workspace.settings = {**(workspace.settings or {}), "holdout": dict(HOLDOUT)}
    zone = ZoneInfo(ZONE)
    first = now.astimezone(zone).date().replace(day=1)
    for _ in range(MONTHS - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    writer = _Writer(rows, rng, Tally(now=now, zone=zone), connection_id, now,
                     datetime.combine(first, datetime.min.time(), zone))
    definitions = {d.key: d for d in rows.session.query(MilestoneDefinition).filter_by(workspace_id=rows.workspace_id)}
    keys, weights = zip(*MIX, strict=True)
    start = now - timedelta(weeks=27)
    day_count = (now - start).days
    for offset in range(day_count + 1):
        day = start + timedelta(days=offset)
        per_day = rng.choice((1, 1, 2, 2)) + (offset * 2) // day_count  # busier as the season goes on
        for _ in range(per_day):
            achieved = day.replace(hour=rng.randint(0, 23), minute=rng.randint(0, 59), second=0, microsecond=0)
            if achieved < now - timedelta(hours=2):
                writer.milestone(definitions[rng.choices(keys, weights)[0]], achieved)
    for days_ago, key in ((1, "order-100"), (3, "spend-5000"), (6, "anniversary-5y")):  # RHF's manual reviews
        writer.milestone(definitions[key], now - timedelta(days=days_ago, hours=rng.randint(1, 9)))
    for model in (Customer, CustomerMetric, Order, CustomerMilestone, Effect):  # parents before children
        rows.session.add_all([o for o in writer.objects if isinstance(o, model)])
        rows.session.flush()
    return writer.tally


class _Writer:
    def __init__(self, rows: Rows, rng: random.Random, tally: Tally, connection_id: uuid.UUID, now: datetime,
                 cohort_from: datetime) -> None:
        self.rows, self.rng, self.tally = rows, rng, tally
        self.connection_id, self.now, self.cohort_from = connection_id, now, cohort_from
        self.objects: list[Any] = []
        self.number = 0

    def new_id(self) -> uuid.UUID:
        """Ids from the seed too: the same customers land in the holdout on every run."""
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def milestone(self, definition: MilestoneDefinition, achieved: datetime) -> None:
        rng, tally, now = self.rng, self.tally, self.now
        self.number += 1
        customer = self._customer(definition.key, achieved)
        for back in range(rng.randint(1, 2)):  # a little order history before the milestone: favourites
            self._order(customer, achieved - timedelta(days=7 * (back + 1)), "64.90",
                        [(VEG_BOX.title, 1), (rng.choice(STAPLES).title, rng.randint(1, 2)), (rng.choice(TREATS).title, 1)])
        status = "pending_review" if definition.requires_review and now - achieved < timedelta(days=10) else "active"
        held_out = definition.key in HOLDOUT and in_holdout({"holdout": HOLDOUT}, definition.key, customer.id)
        milestone = CustomerMilestone(
            id=self.new_id(), workspace_id=self.rows.workspace_id, customer_id=customer.id, definition_id=definition.id,
            milestone_type=definition.type, milestone_name=definition.name, milestone_value=_value(definition),
            achieved_at=achieved, occurrence=1, status=status, celebrated=False, created_at=achieved,
            time_to_milestone=achieved - customer.customer_since if customer.customer_since else None,
            context={"holdout": True} if held_out else {},
        )
        self.objects.append(milestone)
        tally.milestones_per_month[tally.month(achieved)] += 1
        local_day = achieved.astimezone(tally.zone).date()
        tally.milestones_per_week[local_day - timedelta(days=local_day.weekday())] += 1
        if status == "pending_review":
            tally.pending_reviews.append(milestone.id)
        reached = self._effects(definition, milestone, held_out)
        if status == "active" and not held_out and rng.random() < (0.72 if definition.significant else 0.2):
            milestone.celebrated = True
            milestone.celebrated_at = min(achieved + timedelta(hours=rng.choice((1, 3, 5, 9, 20, 30, 52))),
                                          now - timedelta(minutes=5))
            milestone.celebration_type = rng.choice(("call", "email", "gift", "social"))
            reached = True
        if reached and rng.random() < 0.14:
            milestone.context = {**milestone.context, "response": {"at": now.isoformat(), "by": "maya@redhillfresh.example"}}
        if definition.key in HOLDOUT and status == "active":
            again = rng.random() < REPEAT_RATE[held_out]
            if again:
                self._order(customer, achieved + timedelta(days=rng.randint(3, 27)), "58.40",
                            [(VEG_BOX.title, 1), (rng.choice(STAPLES).title, 1)])
            if self.cohort_from <= achieved and achieved + WINDOW <= now:
                group = tally.lift_groups[held_out]
                group[0] += 1
                group[1] += int(again)

    def _customer(self, key: str, achieved: datetime) -> Customer:
        rng = self.rng
        first_name, last_name = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        wholesale = rng.random() < 0.15
        orders = _order_count(key, rng)
        local = last_name.lower().replace(" ", "").replace("'", "")
        customer = Customer(
            id=self.new_id(), workspace_id=self.rows.workspace_id, email=f"{first_name.lower()}.{local}{self.number}@example.com",
            first_name=first_name, last_name=last_name, customer_since=achieved - timedelta(days=_tenure_days(key, rng)),
            company_name=rng.choice(CAFES) if wholesale else None, properties={},
            arr=Decimal(rng.randrange(18_000, 140_000, 500)) if wholesale else None,
            health_score=rng.randint(35, 98) if wholesale else None,
            owner_email=rng.choice(("maya@redhillfresh.example", "tom@redhillfresh.example")) if wholesale else None,
        )
        self.objects.append(customer)
        for metric, value in (("order_count", orders), ("lifetime_spend", orders * rng.randint(48, 76))):
            self.objects.append(CustomerMetric(customer_id=customer.id, metric=metric, value=Decimal(value),
                                               updated_at=achieved))
        return customer

    def _order(self, customer: Customer, placed_at: datetime, total: str, items: list[tuple[str, int]]) -> None:
        self.objects.append(Order(
            workspace_id=self.rows.workspace_id, connection_id=self.connection_id, external_id=uuid.uuid4().hex[:16],
            customer_id=customer.id, currency="USD", total=Decimal(total), refunded=Decimal(0), refunds={},
            paid=True, cancelled=False, counted=True, has_snapshot=True, placed_at=placed_at,
            line_items=[{"title": title, "quantity": quantity} for title, quantity in items],
        ))

    def _effect(self, milestone: CustomerMilestone, kind: str, status: str, payload: dict[str, Any],
                **values: Any) -> None:
        self.objects.append(Effect(
            workspace_id=self.rows.workspace_id, milestone_id=milestone.id, kind=kind, status=status,
            idempotency_key=f"{milestone.id}:{kind}", payload=payload, attempts=values.pop("attempts", 1),
            next_attempt_at=milestone.achieved_at, created_at=milestone.achieved_at, **values,
        ))

    def _effects(self, definition: MilestoneDefinition, milestone: CustomerMilestone, held_out: bool) -> bool:
        """The milestone's effects as the runner would have left them; whether one reached the customer."""
        rng, tally, now, achieved = self.rng, self.tally, self.now, milestone.achieved_at
        reached = False
        for action in definition.recognition:
            kind = action["kind"]
            reward = kind not in ("crm_note", "slack_alert")
            done = achieved + timedelta(minutes=rng.randint(1, 20))
            if milestone.status == "pending_review" and reward:
                payload = credit(str(action["amount"])) if kind == "store_credit" else {"action": action}
                self._effect(milestone, kind, "held", payload, attempts=0)
            elif held_out and reward:
                self._effect(milestone, kind, "cancelled", {"action": action}, updated_at=done,
                             last_error="held out: recorded, not rewarded, to measure retention lift")
            elif kind in DEAD_ERRORS and rng.random() < 0.012:
                self._effect(milestone, kind, "dead", {"action": action}, attempts=8, last_error=DEAD_ERRORS[kind],
                             updated_at=done)
                tally.dead += 1
            elif kind == "store_credit":
                self._effect(milestone, kind, "succeeded", credit(str(action["amount"])), completed_at=done,
                             updated_at=done)
                tally.credits_per_month[tally.month(done)] += Decimal(str(action["amount"]))
                reached = True
            elif kind == "task":
                finished = now - achieved > timedelta(days=6) and rng.random() < 0.85
                self._effect(milestone, kind, "done_task" if finished else "open_task",
                             {"action": action, "title": action.get("title")},
                             completed_at=done if finished else None, updated_at=done)
                reached = reached or finished
            else:
                self._effect(milestone, kind, "succeeded", {"action": action}, completed_at=done, updated_at=done)
                reached = reached or kind in ("email", "customer_tag")
        return reached


def _tenure_days(key: str, rng: random.Random) -> int:
    years = {"anniversary-1y": 1, "anniversary-2y": 2, "anniversary-5y": 5}.get(key)
    if years:
        return years * 365 + rng.randint(0, 1)
    return {"order-1": 0, "order-10": 90, "order-25": 220, "order-50": 420, "order-100": 800}.get(key, 300) + rng.randint(0, 60)


def _order_count(key: str, rng: random.Random) -> int:
    if key.startswith("order-"):
        return int(key.split("-")[1])
    return rng.randint(8, 90)


def _value(definition: MilestoneDefinition) -> str:
    condition = definition.condition or {}
    if "gte" in condition:
        return str(condition["gte"])
    years = (condition.get("tenure") or {}).get("years")
    return f"{years} year{'s' if years != 1 else ''}" if years else ""


# --- a review waiting with a real held credit ---------------------------------------------------

SHOPIFY_GRAPHQL = "https://shop.test/admin/api/2025-07/graphql.json"


def credited(amount: str) -> dict[str, Any]:
    """Shopify's answer to storeCreditAccountCredit (admin-graphql 2025-07), for ``responses``."""
    return {"data": {"storeCreditAccountCredit": {
        "storeCreditAccountTransaction": {
            "id": "gid://shopify/StoreCreditAccountCreditTransaction/91",
            "amount": {"amount": amount, "currencyCode": "USD"},
            "createdAt": "2026-03-15T12:00:00Z",
            "account": {"id": "gid://shopify/StoreCreditAccount/5", "balance": {"amount": amount, "currencyCode": "USD"}},
        },
        "userErrors": [],
    }}}


def waiting_review(rows: Rows, shop_id: uuid.UUID, email: str, first_name: str, *, amount: str = "25.00",
                   key: str = "order-100", achieved_at: datetime | None = None, external_id: str = "7001") -> uuid.UUID:
    """A customer known to the shop whose milestone waits for review: a store credit of ``amount``
    (routed to the shop, as planning writes it) and a gift task held, the CRM note already done."""
    from connectors.payloads import Money, StoreCredit, to_json
    from plugin.models import CustomerIdentity

    customer = rows.customer(email, {"order_count": "100", "lifetime_spend": "5240.00"}, first_name=first_name,
                             last_name="Nguyen", customer_since=datetime(2023, 2, 1, tzinfo=ZoneInfo("UTC")),
                             arr=Decimal("65000"), health_score=85, owner_email="maya@redhillfresh.example")
    rows.session.add(CustomerIdentity(workspace_id=rows.workspace_id, connection_id=shop_id, external_id=external_id,
                                      customer_id=customer.id))
    milestone = rows.milestone(customer, key, status="pending_review",
                               **({"achieved_at": achieved_at} if achieved_at else {}))
    request = to_json(StoreCredit(idempotency_key=str(milestone.id), customer_external_id=external_id,
                                  amount=Money(Decimal(amount), "USD"), reason=f"{milestone.milestone_name} (100)",
                                  customer_email=email))
    rows.effect(milestone, "store_credit", "held", {"action": {"kind": "store_credit", "amount": amount},
                                                    "request": request}, connection_id=shop_id)
    rows.effect(milestone, "task", "held", {"action": {"kind": "task", "title": "Send a VIP hamper"},
                                            "title": "Send a VIP hamper"})
    rows.effect(milestone, "crm_note", "succeeded")
    return milestone.id
