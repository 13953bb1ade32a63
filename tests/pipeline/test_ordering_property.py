"""Arrival order does not change the outcome: a property test over generated order histories.

Each example generates a few customers with several orders each. Every order has a lifecycle,
sent as Shopify sends it: ``orders/create`` then ``orders/paid``; some orders are then partially
(or fully) refunded — ``refunds/create`` followed by an ``orders/updated`` whose ``refunds`` list
holds every refund so far; some are cancelled after payment (``orders/cancelled`` with
``financial_status`` refunded or voided and ``cancelled_at``); some are authorised and voided
without ever being paid; some are abandoned unpaid. ``updated_at`` increases along each order's
lifecycle. A customer's orders are a day apart and each lifecycle finishes within the hour, so
in the *natural stream* (every delivery in the order it happened) each order's deliveries form
one block, and a customer's blocks come in the order the orders were placed.

The same history is then replayed, each stream into its own fresh workspace (a new shop
domain), through the real endpoint and drain (PostgreSQL, inline jobs; the shuffled streams
drained as they arrive or in batches of a drawn size, the natural one in one batch). Besides
the default catalogue every workspace has two repeating definitions (every 2nd order, every
$150 spent), so occurrences are compared too, not just first crossings.

What is claimed:

(a) **Counters are order-free.** Any permutation of all the deliveries, with any of them
    duplicated (the same ``X-Shopify-Event-Id`` again, deduplicated by the inbox, or a fresh
    one, deduplicated by the ledger), ends with the same ``order_count`` and ``lifetime_spend``
    per customer as the natural stream — and those equal the ledger's rule computed directly
    (an order counts once if it was paid, is not cancelled and is not fully refunded; its spend
    is its total less its refunds).

(b) **Milestones are order-free within an order, not across orders.** Milestone detection uses
    an order's *peak* contribution (its full total) the first time it is seen paid, added to the
    customer's counters *as they are at that moment*. So milestones (definition key and
    occurrence, per customer) equal the natural stream's when each order's own deliveries are
    shuffled and duplicated among themselves — paid before create, cancelled before paid, a
    refund before its order — while a customer's orders keep their relative order (customers
    may interleave freely: their counters are independent).

    They are *not* claimed to be order-free across the orders of one customer, because they
    are not: moving a refund or cancellation of an earlier order to after a *later* order's
    payment raises the counters that later order is checked against (a $300 order refunded
    $150, then a $300 order: natural spend peaks at $450; with the refund late it peaks at
    $600 and crosses $500 — the last test shows it), and moving one earlier than it happened
    does the opposite. Whether a threshold was ever reached genuinely depends on when the
    undoing happened, and the natural stream is the reference for that.

(c) **Without refunds and cancellations, milestones are order-free, full stop.** Every paid
    order then contributes exactly +1 order and +its total, once, whenever it is first seen
    paid, so the counters pass through every threshold exactly once in any order: any
    permutation with duplicates awards the same milestones as the natural stream.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from plugin.db import transaction
from plugin.demo.shopify_payloads import SampleCustomer, SampleOrder, order_payload, signed_delivery
from plugin.jobs.drain import drain_inbox
from plugin.models import Customer, CustomerMetric, CustomerMilestone, InboxDelivery, MilestoneDefinition
from plugin.models import delivery as inbox_status
from plugin.services import Services
from plugin.workspaces import create_workspace
from tests.conftest import add_connection, services_of
from tests.support import SHOP_SECRET, T0, count

ZERO = Decimal("0.00")
CENT = Decimal("0.01")

# Lifecycles: what happens to an order after it is created.
PAID = "paid"  # create, paid
PAID_UPDATED = "paid+updated"  # create, paid, a later orders/updated (fulfilled, say)
REFUNDED = "refunded"  # create, paid, then one or two refunds (refunds/create + orders/updated)
CANCELLED = "cancelled"  # create, paid, orders/cancelled (financial_status refunded or voided)
VOIDED = "voided"  # create (authorized), orders/cancelled (voided): never paid
ABANDONED = "abandoned"  # create (pending), never paid
LIFECYCLES = (PAID, PAID_UPDATED, REFUNDED, CANCELLED, VOIDED, ABANDONED)
WITHOUT_UNDOING = (PAID, PAID_UPDATED, ABANDONED)

EXTRA_DEFINITIONS = (
    {"key": "every-2-orders", "type": "order", "name": "Every 2nd order",
     "condition": {"metric": "order_count", "gte": 2, "every": 2}},
    {"key": "every-150-spent", "type": "spend", "name": "Every $150 spent",
     "condition": {"metric": "lifetime_spend", "gte": 150, "every": 150}},
)


# --- generated histories --------------------------------------------------------------------


@dataclass(frozen=True)
class OrderPlan:
    total: Decimal
    lifecycle: str
    refund_fractions: tuple[Decimal, ...]  # for REFUNDED: each refund as a share of the total
    cancel_status: str  # for CANCELLED: "refunded" or "voided"

    def refund_amounts(self) -> list[Decimal]:
        if self.lifecycle != REFUNDED:
            return []
        amounts, left = [], self.total
        for fraction in self.refund_fractions:
            amount = min(left, (self.total * fraction).quantize(CENT))
            if amount > 0:
                amounts.append(amount)
                left -= amount
        return amounts

    @property
    def counts(self) -> bool:
        if self.lifecycle in (PAID, PAID_UPDATED):
            return True
        return self.lifecycle == REFUNDED and sum(self.refund_amounts(), ZERO) < self.total

    @property
    def net(self) -> Decimal:
        return self.total - sum(self.refund_amounts(), ZERO) if self.counts else ZERO


@dataclass(frozen=True)
class Delivery:
    customer: int
    order: int
    topic: str
    payload: dict[str, Any]
    event_id: str


def totals() -> st.SearchStrategy[Decimal]:
    return st.integers(min_value=1_000, max_value=40_000).map(lambda cents: (Decimal(cents) * CENT).quantize(CENT))


def order_plans(lifecycles: tuple[str, ...]) -> st.SearchStrategy[OrderPlan]:
    return st.builds(
        OrderPlan,
        total=totals(),
        lifecycle=st.sampled_from(lifecycles),
        refund_fractions=st.lists(
            st.sampled_from([Decimal("0.1"), Decimal("0.25"), Decimal("0.5"), Decimal("1")]), min_size=1, max_size=2
        ).map(tuple),
        cancel_status=st.sampled_from(["refunded", "voided"]),
    )


def histories(lifecycles: tuple[str, ...]) -> st.SearchStrategy[list[list[OrderPlan]]]:
    """Customers, each with their orders in the order they were placed."""
    return st.lists(st.lists(order_plans(lifecycles), min_size=1, max_size=4), min_size=1, max_size=3)


def customer_of(index: int) -> SampleCustomer:
    return SampleCustomer(
        id=8100 + index, email=f"shopper{index}@example.com", first_name=f"Shopper{index}", last_name="Test",
        created_at=T0 - timedelta(days=90),
    )


def lifecycle_deliveries(customer: int, number: int, plan: OrderPlan) -> list[Delivery]:
    """One order's deliveries in the order they happened, ``updated_at`` increasing."""
    placed = T0 + timedelta(days=number, hours=customer)
    sample = SampleOrder(
        id=700_000 + customer * 1_000 + number,
        customer=customer_of(customer),
        total=plan.total,
        created_at=placed,
        line_items=[(400 + number % 7, "Seasonal veg box", 1, plan.total)],
    )
    out: list[Delivery] = []

    def send(topic: str, payload: dict[str, Any]) -> None:
        out.append(Delivery(customer, number, topic, payload, f"evt-{uuid.uuid4()}"))

    def at(minutes: int) -> datetime:
        return placed + timedelta(minutes=minutes)

    first_status = {VOIDED: "authorized"}.get(plan.lifecycle, "pending")
    send("orders/create", order_payload(sample, financial_status=first_status, updated_at=at(0)))
    if plan.lifecycle in (VOIDED, ABANDONED):
        if plan.lifecycle == VOIDED:
            send("orders/cancelled", order_payload(
                sample, financial_status="voided", updated_at=at(30), cancelled_at=at(30)))
        return out
    send("orders/paid", order_payload(sample, financial_status="paid", updated_at=at(1)))
    if plan.lifecycle == PAID_UPDATED:
        send("orders/updated", order_payload(sample, financial_status="paid", updated_at=at(40)))
    elif plan.lifecycle == REFUNDED:
        refunds: list[tuple[int, Decimal, datetime]] = []
        for index, amount in enumerate(plan.refund_amounts()):
            refund = (sample.id * 10 + index, amount, at(10 * (index + 1)))
            refunds.append(refund)
            send("refunds/create", order_payload(sample, refunds=[refund])["refunds"][0])
            fully = sum((r[1] for r in refunds), ZERO) >= plan.total
            send("orders/updated", order_payload(
                sample, financial_status="refunded" if fully else "partially_refunded",
                updated_at=at(10 * (index + 1) + 1), refunds=list(refunds)))
    elif plan.lifecycle == CANCELLED:
        refunds = [(sample.id * 10 + 9, plan.total, at(30))] if plan.cancel_status == "refunded" else []
        send("orders/cancelled", order_payload(
            sample, financial_status=plan.cancel_status, updated_at=at(30), cancelled_at=at(30), refunds=refunds))
    return out


def natural_stream(history: list[list[OrderPlan]]) -> list[Delivery]:
    blocks = [
        (T0 + timedelta(days=number, hours=customer), lifecycle_deliveries(customer, number, plan))
        for customer, plans in enumerate(history)
        for number, plan in enumerate(plans, 1)
    ]
    return [d for _, block in sorted(blocks, key=lambda b: b[0]) for d in block]


def duplicated(deliveries: list[Delivery], rnd: random.Random) -> list[Delivery]:
    """The deliveries plus some duplicates: the same event id again, or a fresh one."""
    out = list(deliveries)
    for delivery in deliveries:
        roll = rnd.random()
        if roll < 0.2:
            out.append(delivery)
        elif roll < 0.4:
            out.append(replace(delivery, event_id=f"evt-{uuid.uuid4()}"))
    return out


def full_shuffle(natural: list[Delivery], rnd: random.Random) -> list[Delivery]:
    stream = duplicated(natural, rnd)
    rnd.shuffle(stream)
    return stream


def within_order_shuffle(natural: list[Delivery], rnd: random.Random) -> list[Delivery]:
    """Each order's deliveries shuffled and duplicated among themselves; a customer's orders
    keep their relative order; customers interleave at random."""
    per_customer: dict[int, list[Delivery]] = {}
    blocks: dict[tuple[int, int], list[Delivery]] = {}
    for delivery in natural:
        blocks.setdefault((delivery.customer, delivery.order), []).append(delivery)
    for (customer, _), block in blocks.items():  # dicts keep the natural order of first appearance
        shuffled = duplicated(block, rnd)
        rnd.shuffle(shuffled)
        per_customer.setdefault(customer, []).extend(shuffled)
    queues = [list(reversed(q)) for q in per_customer.values()]
    stream = []
    while queues:
        queue = rnd.choice(queues)
        stream.append(queue.pop())
        if not queue:
            queues.remove(queue)
    return stream


# --- replaying a stream into a fresh workspace ---------------------------------------------


@dataclass(frozen=True)
class Outcome:
    counters: dict[str, tuple[Decimal, Decimal]]  # email -> (order_count, lifetime_spend)
    milestones: dict[str, list[tuple[str, int]]]  # email -> sorted (key, occurrence)


def fresh_shop(app: Flask) -> tuple[uuid.UUID, str]:
    services = services_of(app)
    domain = f"prop-{uuid.uuid4().hex[:12]}.myshopify.com"
    with transaction(services.sessions) as session:
        workspace, _ = create_workspace(session, "Property", currency="USD")
        for spec in EXTRA_DEFINITIONS:
            session.add(MilestoneDefinition(workspace_id=workspace.id, enabled=True, recognition=[], sort_order=100,
                                            **spec))
    add_connection(app, workspace.id, "shopify", {
        "shop_domain": domain, "access_token": "shpat_test", "api_secret": SHOP_SECRET,
        # Nothing here reaches 25 orders, so no credit is ever called; a closed port just in case.
        "base_url": "http://127.0.0.1:9"})
    return workspace.id, domain


def note_reorderings(stream: list[Delivery]) -> None:
    """Tell Hypothesis's statistics which out-of-order arrivals a stream contains."""
    seen: dict[tuple[int, int], set[str]] = {}
    for delivery in stream:
        topics = seen.setdefault((delivery.customer, delivery.order), set())
        if delivery.topic == "orders/paid" and "orders/create" not in topics:
            event("paid before create")
        if delivery.topic == "orders/cancelled" and "orders/paid" not in topics:
            event("cancelled before paid/create")
        if delivery.topic == "refunds/create" and "orders/paid" not in topics:
            event("refund before its order is paid")
        topics.add(delivery.topic)


def replay(app: Flask, stream: list[Delivery], batch_size: int | None) -> Outcome:
    """Send the stream through the endpoint. ``batch_size`` None: each delivery drained as it
    arrives (inline); else all stored first, then drained in batches of that size."""
    services = services_of(app)
    workspace_id, domain = fresh_shop(app)
    client = app.test_client()
    queue = services.queue
    with _nudges_suppressed(queue, batch_size is not None):
        for delivery in stream:
            body, headers = signed_delivery(
                delivery.payload, topic=delivery.topic, shop_domain=domain, secret=SHOP_SECRET,
                event_id=delivery.event_id,
            )
            response = client.post("/webhooks/shopify", data=body, headers=headers)
            assert response.status_code == 200, response.get_json()
        if batch_size is not None:
            drain_inbox(batch_size=batch_size)
    assert count(services, InboxDelivery, InboxDelivery.workspace_id == workspace_id,
                 InboxDelivery.status != inbox_status.PROCESSED) == 0
    return outcome(services, workspace_id)


class _nudges_suppressed:
    def __init__(self, queue: Any, active: bool) -> None:
        self.queue, self.active = queue, active

    def __enter__(self) -> None:
        if self.active:
            self.queue.nudge = lambda *args, **kwargs: False

    def __exit__(self, *exc: object) -> None:
        self.queue.__dict__.pop("nudge", None)


def outcome(services: Services, workspace_id: uuid.UUID) -> Outcome:
    with services.sessions() as session:
        customers = dict(session.execute(
            select(Customer.id, Customer.email).where(Customer.workspace_id == workspace_id)).all())
        metrics: dict[str, dict[str, Decimal]] = {email: {} for email in customers.values()}
        for customer_id, name, value in session.execute(
            select(CustomerMetric.customer_id, CustomerMetric.metric, CustomerMetric.value)
            .where(CustomerMetric.customer_id.in_(customers))
        ):
            metrics[customers[customer_id]][name] = value
        milestones: dict[str, list[tuple[str, int]]] = {email: [] for email in customers.values()}
        for customer_id, key, occurrence in session.execute(
            select(CustomerMilestone.customer_id, MilestoneDefinition.key, CustomerMilestone.occurrence)
            .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
            .where(CustomerMilestone.workspace_id == workspace_id)
        ):
            milestones[customers[customer_id]].append((key, occurrence))
    return Outcome(
        counters={
            email: (Decimal(m.get("order_count", 0)), Decimal(m.get("lifetime_spend", 0)).quantize(CENT))
            for email, m in metrics.items()
        },
        milestones={email: sorted(keys) for email, keys in milestones.items()},
    )


def expected_counters(history: list[list[OrderPlan]]) -> dict[str, tuple[Decimal, Decimal]]:
    return {
        customer_of(index).email: (
            Decimal(sum(1 for plan in plans if plan.counts)),
            sum((plan.net for plan in plans), ZERO).quantize(CENT),
        )
        for index, plans in enumerate(history)
    }


# --- the properties -------------------------------------------------------------------------

# None: each delivery drained inline as it arrives; a number: stored first, drained in batches.
BATCH_SIZES = st.sampled_from([None, 1, 3, 500])
BATCHED = st.sampled_from([2, 7, 500])  # cheaper than one transaction per delivery
NATURAL_BATCH = 500  # the reference in one batch: crossing detection does not depend on batching
PROPERTY_SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=False, print_blob=True,
)


@pytest.fixture
def replayer(app: Flask) -> Iterator[Callable[[list[Delivery], int | None], Outcome]]:
    yield lambda stream, batch_size: replay(app, stream, batch_size)


@PROPERTY_SETTINGS
@given(
    history=histories(LIFECYCLES),
    rnd=st.randoms(use_true_random=False),
    full_batch=BATCH_SIZES,
    order_batch=BATCHED,
)
def test_shuffled_and_duplicated_streams_give_the_natural_counters_and_within_order_shuffles_the_same_milestones(
    replayer: Callable[[list[Delivery], int | None], Outcome],
    history: list[list[OrderPlan]],
    rnd: random.Random,
    full_batch: int | None,
    order_batch: int | None,
) -> None:
    natural = natural_stream(history)
    reference = replayer(natural, NATURAL_BATCH)
    assert reference.counters == expected_counters(history)

    # (a) any permutation, with duplicates: the same counters.
    stream = full_shuffle(natural, rnd)
    note_reorderings(stream)
    shuffled = replayer(stream, full_batch)
    assert shuffled.counters == reference.counters

    # (b) each order's deliveries shuffled among themselves, orders in their relative order:
    # the same counters and the same milestones.
    stream = within_order_shuffle(natural, rnd)
    note_reorderings(stream)
    within = replayer(stream, order_batch)
    assert within.counters == reference.counters
    assert within.milestones == reference.milestones


@PROPERTY_SETTINGS
@given(
    history=histories(WITHOUT_UNDOING),
    rnd=st.randoms(use_true_random=False),
    batch_size=BATCH_SIZES,
)
def test_without_refunds_or_cancellations_any_shuffle_gives_the_natural_milestones(
    replayer: Callable[[list[Delivery], int | None], Outcome],
    history: list[list[OrderPlan]],
    rnd: random.Random,
    batch_size: int | None,
) -> None:
    natural = natural_stream(history)
    reference = replayer(natural, NATURAL_BATCH)
    assert reference.counters == expected_counters(history)

    stream = full_shuffle(natural, rnd)
    note_reorderings(stream)
    shuffled = replayer(stream, batch_size)
    assert shuffled.counters == reference.counters
    assert shuffled.milestones == reference.milestones


def test_a_refund_moved_past_a_later_order_of_the_same_customer_changes_the_milestones(
    replayer: Callable[[list[Delivery], int | None], Outcome],
) -> None:
    """Why (b) keeps a customer's orders in their relative order: the docstring's example.

    A $300 order refunded $150, then a second $300 order. In the natural stream the refund comes
    first and spend peaks at $450; delivered after the second order's payment, the same refund
    lets spend reach $600 and cross $500. Both outcomes are right for their stream.
    """
    first, second = (OrderPlan(Decimal("300.00"), lifecycle, (Decimal("0.5"),), "refunded")
                     for lifecycle in (REFUNDED, PAID))
    natural = natural_stream([[first, second]])
    refund_late = [d for d in natural if d.order == 1 and d.topic in ("orders/create", "orders/paid")] + [
        d for d in natural if d.order == 2] + [d for d in natural if d.order == 1 and d.topic in (
            "refunds/create", "orders/updated")]
    assert sorted(map(id, refund_late)) == sorted(map(id, natural))

    in_time, late = replayer(natural, None), replayer(refund_late, None)

    email = customer_of(0).email
    assert in_time.counters == late.counters == {email: (Decimal(2), Decimal("450.00"))}
    assert ("spend-500", 1) not in in_time.milestones[email]
    assert ("spend-500", 1) in late.milestones[email]
