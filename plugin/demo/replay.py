"""Replaying the sample store through ``POST /webhooks/shopify``, signed, as a shop would.

Every order is delivered as ``orders/create`` then ``orders/paid``; cancelled ones add
``orders/cancelled`` and refunded ones ``refunds/create``. Like Shopify, the replay sometimes
delivers the same event twice (a retry after a slow answer) and sometimes out of order (paid
before create, a refund before its cancellation). Deliveries go out in the order their events
happened, interleaved across shoppers.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TextIO

from flask.testing import FlaskClient

from plugin.demo.sample_store import SampleStore, StoreOrder
from plugin.demo.shopify_payloads import order_payload, refund_payload, signed_delivery

DUPLICATE_SHARE = 0.015  # deliveries Shopify sends again
OUT_OF_ORDER_SHARE = 0.02  # orders whose paid arrives before their create

CREATE, PAID, CANCELLED, REFUND = "orders/create", "orders/paid", "orders/cancelled", "refunds/create"


@dataclass(frozen=True, order=True)
class PlannedDelivery:
    at: datetime  # when the shop sends it
    sequence: int
    topic: str = field(compare=False)
    order_index: int = field(compare=False)
    event_id: str = field(compare=False)
    refund_index: int = field(default=0, compare=False)
    resend: bool = field(default=False, compare=False)


@dataclass
class ReplayResult:
    sent: int = 0
    by_answer: Counter[str] = field(default_factory=Counter)  # accepted, duplicate, http 4xx/5xx
    by_topic: Counter[str] = field(default_factory=Counter)
    resent_on_purpose: int = 0
    out_of_order: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.by_answer["accepted"]

    @property
    def duplicates(self) -> int:
        return self.by_answer["duplicate"]

    @property
    def rejected(self) -> int:
        return self.sent - self.accepted - self.duplicates


def plan(store: SampleStore, seed: int) -> list[PlannedDelivery]:
    """Every delivery of the store's history, in the order the shop sends them."""
    rng = random.Random(f"deliveries-{seed}")
    planned: list[PlannedDelivery] = []

    def add(at: datetime, topic: str, index: int, refund_index: int = 0) -> None:
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        planned.append(PlannedDelivery(at, len(planned), topic, index, event_id, refund_index))
        if rng.random() < DUPLICATE_SHARE:
            retry_at = at + timedelta(seconds=rng.uniform(5, 7200))
            planned.append(PlannedDelivery(retry_at, len(planned), topic, index, event_id, refund_index, True))

    for index, entry in enumerate(store.orders):
        placed = entry.order.created_at
        if entry.paid_at is not None and rng.random() < OUT_OF_ORDER_SHARE:
            add(entry.paid_at + timedelta(seconds=rng.uniform(1, 900)), CREATE, index)  # create arrives late
        else:
            add(placed, CREATE, index)
        if entry.paid_at is not None:
            add(entry.paid_at, PAID, index)
        refund_first = entry.cancelled_at is not None and entry.refunds and rng.random() < 0.3
        for number, (_, _, refunded_at) in enumerate(entry.refunds):
            add(refunded_at - timedelta(seconds=30) if refund_first else refunded_at + timedelta(seconds=2),
                REFUND, index, number)
        if entry.cancelled_at is not None:
            add(entry.cancelled_at, CANCELLED, index)
    planned.sort()
    return planned


def out_of_order_count(planned: list[PlannedDelivery]) -> int:
    """Orders whose deliveries reach us in another order than create, paid, cancelled, refund."""
    rank = {CREATE: 0, PAID: 1, CANCELLED: 2, REFUND: 3}
    last: dict[int, int] = {}
    late: set[int] = set()
    for delivery in planned:
        if delivery.resend:
            continue
        step = rank[delivery.topic]
        if step < last.get(delivery.order_index, -1):
            late.add(delivery.order_index)
        last[delivery.order_index] = max(step, last.get(delivery.order_index, -1))
    return len(late)


def payload_for(entry: StoreOrder, delivery: PlannedDelivery) -> dict[str, Any]:
    order = entry.order
    if delivery.topic == CREATE:
        return order_payload(order, financial_status="authorized" if entry.paid_at else "pending")
    if delivery.topic == PAID:
        return order_payload(order, financial_status="paid", updated_at=entry.paid_at)
    if delivery.topic == CANCELLED:
        return order_payload(
            order,
            financial_status="refunded" if entry.paid_at else "voided",
            updated_at=entry.cancelled_at,
            cancelled_at=entry.cancelled_at,
            refunds=list(entry.refunds),
        )
    refund_id, amount, refunded_at = entry.refunds[delivery.refund_index]
    return refund_payload(order, refund_id, amount, refunded_at)


def deliveries(
    store: SampleStore, planned: list[PlannedDelivery], *, shop_domain: str, secret: str
) -> Iterator[tuple[PlannedDelivery, bytes, dict[str, str]]]:
    """Signed body and headers of each planned delivery; a resend repeats its first delivery's ids."""
    for delivery in planned:
        body, headers = signed_delivery(
            payload_for(store.orders[delivery.order_index], delivery),
            topic=delivery.topic,
            shop_domain=shop_domain,
            secret=secret,
            event_id=delivery.event_id,
        )
        headers["X-Shopify-Webhook-Id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, delivery.event_id))
        yield delivery, body, headers


def replay(
    client: FlaskClient,
    store: SampleStore,
    planned: list[PlannedDelivery],
    *,
    shop_domain: str,
    secret: str,
    progress: Callable[[int, int, float], None] | None = None,
    every: Callable[[], None] | None = None,
    every_n: int = 250,
) -> ReplayResult:
    """Post every planned delivery; call ``every`` after each ``every_n`` of them (and at the end)."""
    result = ReplayResult(resent_on_purpose=sum(1 for d in planned if d.resend), out_of_order=out_of_order_count(planned))
    started = time.monotonic()
    for delivery, body, headers in deliveries(store, planned, shop_domain=shop_domain, secret=secret):
        response = client.post("/webhooks/shopify", data=body, headers=headers)
        result.sent += 1
        result.by_topic[delivery.topic] += 1
        if response.status_code == 200:
            result.by_answer[str((response.get_json(silent=True) or {}).get("status", "ok"))] += 1
        else:
            result.by_answer[f"http {response.status_code}"] += 1
            if len(result.errors) < 5:
                result.errors.append(f"{delivery.topic} {response.status_code}: {response.get_data(as_text=True)[:200]}")
        if every is not None and (result.sent % every_n == 0 or result.sent == len(planned)):
            every()
        if progress is not None:
            progress(result.sent, len(planned), time.monotonic() - started)
    result.seconds = time.monotonic() - started
    return result


class ProgressLine:
    """One line that rewrites itself on a terminal; a few plain lines anywhere else."""

    def __init__(self, out: TextIO | None = None, label: str = "replaying") -> None:
        self.out = out or sys.stdout
        self.label = label
        self.live = bool(getattr(self.out, "isatty", lambda: False)())
        self._last_drawn = 0.0
        self._last_quarter = 0

    def __call__(self, done: int, total: int, seconds: float) -> None:
        text = (f"  {self.label} {done:>7,}/{total:,} deliveries  {done / max(total, 1):4.0%}"
                f"  {seconds:5.1f} s  {done / max(seconds, 1e-9):5.0f}/s")
        if self.live:
            if done == total or seconds - self._last_drawn >= 0.2:
                self._last_drawn = seconds
                self.out.write("\r" + text + ("\n" if done == total else ""))
                self.out.flush()
            return
        quarter = done * 4 // max(total, 1)
        if quarter > self._last_quarter:
            self._last_quarter = quarter
            self.out.write(text + "\n")
