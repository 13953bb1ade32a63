"""The benchmark's order stream: a few years of a grocery store replayed as signed Shopify webhooks.

Shape (deterministic for a seed):

* customers with a heavy-tailed order count (Zipf-like weights), so a few reach 100+ orders
  and every order/spend milestone of the default catalogue is crossed by someone;
* per order, 75 % a single ``orders/create`` already paid, 15 % ``orders/create`` pending then
  ``orders/paid``, 10 % ``orders/create`` paid then ``orders/updated`` — an order counts once
  however many deliveries mention it;
* deliveries in time order, plus ~10 % duplicate deliveries (same ``X-Shopify-Event-Id``, same
  body and HMAC, as a Shopify retry) placed a little later in the stream;
* a separate warm-up set of ``customers/create`` deliveries (processed too, no counters).

There are no cancellations or refunds: with two workers the interleaving of events of one
customer is not fixed, and with cancellations the *peak* a counter reached (hence which
milestones fire) would depend on it. Without them every counter only grows, so the expected
milestones follow from the final counters alone and the check below is exact.

:func:`expected_outcome` computes counters and milestones from the generated deliveries
independently of the code under test (no import of the pipeline).
"""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from plugin.demo.shopify_payloads import SampleCustomer, SampleOrder, order_payload
from webhooks.shopify import sign

ORDER_THRESHOLDS = {1: "order-1", 10: "order-10", 25: "order-25", 50: "order-50", 100: "order-100"}
SPEND_THRESHOLDS = {
    Decimal(500): "spend-500",
    Decimal(1000): "spend-1000",
    Decimal(2500): "spend-2500",
    Decimal(5000): "spend-5000",
}
# milestones whose recognition is store credit in the default catalogue (the bench reads the
# workspace's catalogue and passes the actual keys to expected_outcome)
CREDIT_KEYS = ("order-25", "order-50")

PRODUCTS = [
    (1001, "Organic bananas"), (1002, "Sourdough loaf"), (1003, "Free-range eggs"), (1004, "Whole milk 2L"),
    (1005, "Greek yoghurt"), (1006, "Baby spinach"), (1007, "Cheddar 500g"), (1008, "Olive oil 1L"),
    (1009, "Coffee beans"), (1010, "Avocados x4"), (1011, "Chicken thighs"), (1012, "Salmon fillet"),
    (1013, "Pasta 1kg"), (1014, "Tomatoes on the vine"), (1015, "Apples 1kg"), (1016, "Dark chocolate"),
]
FIRST = ["Ana", "Ben", "Chloe", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jun", "Kemi", "Liam", "Mia"]
LAST = ["Nguyen", "Smith", "Okafor", "Garcia", "Kowalski", "Tanaka", "Brown", "Rossi", "Haddad", "Silva"]


@dataclass(frozen=True)
class Delivery:
    topic: str
    event_id: str
    webhook_id: str
    body: bytes
    hmac: str
    customer_id: int | None  # Shopify customer id
    order_id: int | None
    paid: bool
    total: Decimal
    duplicate: bool = False

    @property
    def delivery_key(self) -> str:  # what webhooks.shopify stores; used only to map inbox rows back
        return f"{self.topic}:event:{self.event_id}"

    def headers(self, shop_domain: str) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": self.topic,
            "X-Shopify-Hmac-Sha256": self.hmac,
            "X-Shopify-Shop-Domain": shop_domain,
            "X-Shopify-Webhook-Id": self.webhook_id,
            "X-Shopify-Event-Id": self.event_id,
            "X-Shopify-API-Version": "2025-07",
        }

    def http_request(self, shop_domain: str, host: str, path: str = "/webhooks/shopify") -> bytes:
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(self.body)}"]
        lines += [f"{k}: {v}" for k, v in self.headers(shop_domain).items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class Stream:
    deliveries: list[Delivery]  # timed ingest set, duplicates included, in send order
    warmup: list[Delivery]  # customers/create, sent before the timed set
    customers: list[SampleCustomer]

    @property
    def unique(self) -> int:
        return sum(1 for d in self.deliveries if not d.duplicate)


def _delivery(topic: str, payload: dict, secret: str, rng: random.Random, **facts) -> Delivery:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Delivery(
        topic=topic,
        event_id=str(uuid.UUID(int=rng.getrandbits(128))),
        webhook_id=str(uuid.UUID(int=rng.getrandbits(128))),
        body=body,
        hmac=sign(body, secret),
        **facts,
    )


def generate(n: int, *, secret: str, seed: int = 7, dup_fraction: float = 0.10, warmup: int = 300,
             years: int = 3) -> Stream:
    rng = random.Random(seed)
    unique_target = n - int(round(n * dup_fraction))
    orders_estimate = int(unique_target / 1.25) + 1
    n_customers = max(20, orders_estimate // 10)
    end = datetime(2026, 6, 30, tzinfo=UTC)
    start = end - timedelta(days=365 * years)
    customers = [
        SampleCustomer(
            id=7_000_000_000 + i,
            email=f"shopper{i}@example.net",
            first_name=rng.choice(FIRST),
            last_name=rng.choice(LAST),
            created_at=start + timedelta(days=rng.uniform(-200, 365 * years * 0.5)),
        )
        for i in range(n_customers)
    ]
    cumulative, acc = [], 0.0
    for k in range(n_customers):
        acc += 1.0 / (k + 20)  # Zipf-like: a few customers with 100+ orders, a long tail with 1-5
        cumulative.append(acc)

    timed: list[tuple[datetime, int, Delivery]] = []
    order_id = 5_000_000_000
    seq = 0
    while len(timed) < unique_target:
        customer = rng.choices(customers, cum_weights=cumulative)[0]
        order_id += 1
        placed = start + timedelta(seconds=rng.uniform(0, (end - start).total_seconds()))
        items = []
        for _ in range(rng.randint(1, 4)):
            pid, title = rng.choice(PRODUCTS)
            items.append((pid, title, rng.randint(1, 3), Decimal(rng.randint(150, 2400)) / 100))
        total = sum((q * p for _, _, q, p in items), Decimal(0))
        order = SampleOrder(id=order_id, customer=customer, total=total, created_at=placed, line_items=items)
        shape = rng.random()
        facts = {"customer_id": customer.id, "order_id": order_id, "total": total}
        if shape < 0.75:
            steps = [("orders/create", "paid", placed)]
        elif shape < 0.90:
            steps = [("orders/create", "pending", placed), ("orders/paid", "paid", placed + timedelta(minutes=3))]
        else:
            steps = [("orders/create", "paid", placed), ("orders/updated", "paid", placed + timedelta(hours=2))]
        for topic, status, when in steps:
            payload = order_payload(order, financial_status=status, updated_at=when)
            seq += 1
            timed.append((when, seq, _delivery(topic, payload, secret, rng, paid=status == "paid", **facts)))
    timed.sort(key=lambda t: (t[0], t[1]))
    unique = [d for _, _, d in timed[:unique_target]]

    # duplicates: Shopify retries of an earlier delivery, a little later in the stream
    stream: list[Delivery | None] = list(unique)
    extra: dict[int, list[Delivery]] = defaultdict(list)
    for original_index in rng.sample(range(len(unique)), n - unique_target):
        d = unique[original_index]
        later = min(len(unique), original_index + rng.randint(1, 500))
        extra[later].append(Delivery(**{**d.__dict__, "duplicate": True}))
    ordered: list[Delivery] = []
    for i, d in enumerate(stream + [None]):
        ordered.extend(extra.get(i, ()))
        if d is not None:
            ordered.append(d)

    warm = []
    for c in customers[:warmup]:
        payload = {
            "id": c.id, "email": c.email, "first_name": c.first_name, "last_name": c.last_name,
            "created_at": c.created_at.isoformat(), "updated_at": c.created_at.isoformat(),
            "state": "enabled", "verified_email": True, "currency": "USD", "tags": "",
        }
        warm.append(_delivery("customers/create", payload, secret, rng, customer_id=c.id, order_id=None,
                              paid=False, total=Decimal(0)))
    return Stream(deliveries=ordered, warmup=warm, customers=customers)


@dataclass
class Expected:
    order_count: dict[int, int]  # Shopify customer id -> counted orders
    spend: dict[int, Decimal]
    milestones: dict[int, set[str]]  # Shopify customer id -> milestone keys
    customers: set[int]  # every customer some delivery names
    credit_keys: tuple[str, ...] = CREDIT_KEYS

    @property
    def credits(self) -> int:
        return sum(1 for keys in self.milestones.values() for k in keys if k in self.credit_keys)

    @property
    def milestone_count(self) -> int:
        return sum(len(keys) for keys in self.milestones.values())


def expected_outcome(deliveries: list[Delivery], credit_keys: tuple[str, ...] = CREDIT_KEYS) -> Expected:
    """Counters and milestones the deliveries must produce, whatever their order and repeats."""
    paid_orders: dict[int, dict[int, Decimal]] = defaultdict(dict)
    customers: set[int] = set()
    for d in deliveries:
        if d.customer_id is not None:
            customers.add(d.customer_id)
        if d.order_id is not None and d.paid:
            paid_orders[d.customer_id][d.order_id] = d.total
    counts = {c: len(paid_orders.get(c, {})) for c in customers}
    spend = {c: sum(paid_orders.get(c, {}).values(), Decimal(0)) for c in customers}
    milestones = {
        c: {k for t, k in ORDER_THRESHOLDS.items() if counts[c] >= t}
        | {k for t, k in SPEND_THRESHOLDS.items() if spend[c] >= t}
        for c in customers
    }
    return Expected(counts, spend, milestones, customers, tuple(credit_keys))
