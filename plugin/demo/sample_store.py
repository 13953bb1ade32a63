"""A deterministic sample grocery store: shoppers, their habits, their orders and what went wrong.

Everything comes from one ``random.Random(seed)`` and the day the history ends, so the same
arguments always give the same store. Shoppers sign up across ``years``; each has a habit
(weekly, fortnightly, monthly, occasional), a few favourite products, holidays and sometimes
stops shopping. A small share of orders is cancelled (before or after payment) or refunded in
part (a missing item) or in full (a spoiled delivery).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from plugin.demo.sample_data import (
    EMAIL_DOMAINS,
    FIRST_NAMES,
    FRUIT_BOX,
    LAST_NAMES,
    SEASONAL,
    STAPLES,
    TREATS,
    VEG_BOX,
    Product,
)
from plugin.demo.shopify_payloads import SampleCustomer, SampleOrder

CUSTOMER_ID_BASE = 7_400_000_000_000
ORDER_ID_BASE = 5_600_000_000_000
REFUND_ID_BASE = 9_100_000_000


@dataclass(frozen=True)
class Habit:
    name: str
    share: float  # of shoppers
    gap_days: float  # mean days between orders
    gap_spread: float
    lapse: float  # chance, after each order, of never ordering again
    staples: tuple[int, int]  # how many staples in a basket (min, max)
    treats: tuple[int, int]
    box_chance: float  # of a veg box in the basket


HABITS = (
    Habit("weekly", 0.045, 7, 1.2, 0.002, (3, 7), (0, 2), 0.9),
    Habit("fortnightly", 0.08, 14, 2.5, 0.01, (3, 6), (0, 2), 0.7),
    Habit("monthly", 0.21, 30, 7, 0.04, (2, 5), (0, 2), 0.5),
    Habit("occasional", 0.665, 60, 25, 0.25, (2, 5), (0, 1), 0.3),
)


@dataclass(frozen=True)
class StoreOrder:
    """One order and its fate: paid (or not), cancelled, refunded."""

    order: SampleOrder
    paid_at: datetime | None
    cancelled_at: datetime | None = None
    refunds: tuple[tuple[int, Decimal, datetime], ...] = ()

    @property
    def refunded(self) -> Decimal:
        return sum((amount for _, amount, _ in self.refunds), Decimal("0"))

    @property
    def counts(self) -> bool:
        """Whether the order should count towards the shopper's milestones once all is said and done."""
        return self.paid_at is not None and self.cancelled_at is None and self.refunded < self.order.total


@dataclass(frozen=True)
class SampleStore:
    customers: tuple[SampleCustomer, ...]
    habits: dict[int, str]  # customer id -> habit name
    orders: tuple[StoreOrder, ...]  # oldest first
    currency: str
    ends: datetime

    def summary(self) -> dict[str, int]:
        return {
            "orders": len(self.orders),
            "cancelled": sum(1 for o in self.orders if o.cancelled_at is not None),
            "refunded_in_full": sum(1 for o in self.orders if o.cancelled_at is None and o.refunds and not o.counts),
            "refunded_in_part": sum(1 for o in self.orders if o.refunds and o.counts),
            "counted": sum(1 for o in self.orders if o.counts),
        }


def generate(
    customers: int = 300,
    years: int = 3,
    seed: int = 7,
    *,
    today: date | None = None,
    currency: str = "USD",
    timezone: str = "Australia/Melbourne",
) -> SampleStore:
    """The store for these arguments; the history ends at the start of ``today`` (local time)."""
    if customers < 1 or years < 1:
        raise ValueError("a sample store needs at least one customer and one year")
    rng = random.Random(seed)
    zone = ZoneInfo(timezone)
    ends = datetime.combine(today or datetime.now(zone).date(), time(0), tzinfo=zone)
    starts = ends - timedelta(days=round(365.25 * years))
    refund_ids = iter(range(REFUND_ID_BASE, REFUND_ID_BASE + 10**8))
    people: list[SampleCustomer] = []
    habits: dict[int, str] = {}
    drafts: list[tuple[datetime, SampleCustomer, list[tuple[int, str, int, Decimal]]]] = []
    emails: set[str] = set()
    for index in range(customers):
        habit = rng.choices(HABITS, weights=[h.share for h in HABITS])[0]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        # Regulars tend to be long-standing customers: their sign-ups lean towards the start.
        lean = rng.random() ** (2.0 if habit.name == "weekly" else 1.0)
        signed_up = starts + timedelta(seconds=lean * ((ends - starts).total_seconds() - 86_400))
        person = SampleCustomer(
            id=CUSTOMER_ID_BASE + index * 1000 + rng.randrange(1000),
            email=_email(rng, first, last, emails),
            first_name=first,
            last_name=last,
            created_at=signed_up.astimezone(UTC),
        )
        people.append(person)
        habits[person.id] = habit.name
        favourites = rng.sample(STAPLES, k=rng.randint(4, 7))
        usual_treats = rng.sample(TREATS, k=2)
        when = _shopping_time(rng, signed_up + timedelta(days=rng.uniform(0, 10)), zone)
        while when < ends:
            drafts.append((when, person, _basket(rng, habit, favourites, usual_treats, when.month)))
            if rng.random() < habit.lapse:
                break
            gap = max(1.0, rng.gauss(habit.gap_days, habit.gap_spread))
            if rng.random() < 0.04:  # a holiday
                gap += rng.uniform(10, 30)
            when = _shopping_time(rng, when + timedelta(days=gap), zone)
    drafts.sort(key=lambda d: (d[0], d[1].id))
    orders = []
    for position, (when, person, items) in enumerate(drafts):
        order = SampleOrder(
            id=ORDER_ID_BASE + position,
            customer=person,
            total=sum((price * quantity for _, _, quantity, price in items), Decimal("0")),
            created_at=when.astimezone(UTC),
            currency=currency,
            line_items=items,
        )
        orders.append(_fate(rng, order, refund_ids, ends.astimezone(UTC)))
    return SampleStore(tuple(people), habits, tuple(orders), currency, ends.astimezone(UTC))


def _email(rng: random.Random, first: str, last: str, taken: set[str]) -> str:
    first_part, last_part = (re.sub(r"[^a-z]", "", n.lower()) for n in (first, last))
    local = rng.choice(
        (f"{first_part}.{last_part}", f"{first_part}{last_part}", f"{first_part[0]}{last_part}", f"{first_part}_{last_part}")
    )
    if rng.random() < 0.25:
        local += str(rng.randint(1, 99))
    domain = rng.choice(EMAIL_DOMAINS)
    email, extra = f"{local}@{domain}", 2
    while email in taken:
        email, extra = f"{local}{extra}@{domain}", extra + 1
    taken.add(email)
    return email


def _shopping_time(rng: random.Random, around: datetime, zone: ZoneInfo) -> datetime:
    """A plausible local time to place an order on the day of ``around``: mostly mornings and evenings."""
    day = around.astimezone(zone).date()
    hour = rng.choices((7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21),
                       weights=(3, 5, 6, 5, 4, 4, 3, 3, 3, 3, 4, 5, 6, 6, 4))[0]
    return datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)), tzinfo=zone)


def _basket(
    rng: random.Random, habit: Habit, favourites: list[Product], treats: list[Product], month: int
) -> list[tuple[int, str, int, Decimal]]:
    chosen: dict[int, tuple[Product, int]] = {}

    def add(product: Product) -> None:
        if product.id not in chosen:
            chosen[product.id] = (product, rng.randint(1, product.max_quantity))

    if rng.random() < habit.box_chance:
        add(VEG_BOX)
    if rng.random() < habit.box_chance * 0.3:
        add(FRUIT_BOX)
    for _ in range(rng.randint(*habit.staples)):
        add(rng.choice(favourites) if rng.random() < 0.75 else rng.choice(STAPLES))
    for _ in range(rng.randint(*habit.treats)):
        add(rng.choice(treats) if rng.random() < 0.6 else rng.choice(TREATS))
    if month in SEASONAL and rng.random() < 0.5:
        add(rng.choice(SEASONAL[month]))
    return [(p.id, p.title, quantity, p.price) for p, quantity in chosen.values()]


def _fate(rng: random.Random, order: SampleOrder, ids: Iterator[int], ends: datetime) -> StoreOrder:
    """Most orders are simply paid; about 1 in 20 is cancelled or refunded."""
    placed = order.created_at
    paid_at = placed + timedelta(minutes=rng.uniform(5, 90))
    roll = rng.random()
    if roll < 0.010:  # changed their mind before payment was captured
        return StoreOrder(order, paid_at=None, cancelled_at=placed + timedelta(hours=rng.uniform(0.2, 6)))
    if roll < 0.016:  # paid, then cancelled by the store (out of delivery slots) and refunded in full
        cancelled = paid_at + timedelta(hours=rng.uniform(1, 20))
        return StoreOrder(order, paid_at, cancelled, ((next(ids), order.total, cancelled),))
    refund_at = min(paid_at + timedelta(days=rng.uniform(1, 3)), ends)
    if roll < 0.046:  # a missing or damaged item (a basket of one item is simply kept)
        if len(order.line_items) < 2:
            return StoreOrder(order, paid_at)
        _, _, quantity, price = rng.choice(order.line_items)
        return StoreOrder(order, paid_at, refunds=((next(ids), price * quantity, refund_at),))
    if roll < 0.050:  # the whole delivery spoiled in the heat
        return StoreOrder(order, paid_at, refunds=((next(ids), order.total, refund_at),))
    return StoreOrder(order, paid_at)
