"""History cost: per-event cost for a customer with many prior orders vs one with a single prior order.

Run as a pinned subprocess by ``pipeline.py`` (``python history.py --workspace W --connection C ...``
with DATABASE_URL/REDIS_URL/MILESTONES_SECRET_KEY in the environment), after the end-to-end phase
and with no RQ worker running. It calls the real job function, :func:`plugin.jobs.drain.drain_inbox`,
in-process (no RQ, so RQ's own per-job noise stays out of a ratio of a few percent):

1. preload: ``--prior`` paid orders for the heavy customer H and 1 for the light customer L, stored
   as inbox rows exactly as ingest stores them and drained by the pipeline itself (so the ledger,
   counters and milestones of H are what the pipeline writes, not a hand-made imitation);
2. measure: ``--events`` new paid orders per customer, in rounds alternating H and L (so drift of
   the machine hits both), each round's rows inserted then drained with ``drain_inbox(batch_size=b)``
   for each ``b`` of ``--batch-sizes``; the time is wall time of the drain.

Batch size 1 is the sensitive case: every event is its own transaction, so anything that grows
with a customer's history is paid once per event instead of once per batch. L crosses the 10th,
25th, 50th and 100th order thresholds while being measured (4 awards with their effects); H crosses
nothing: that makes L's events slightly dearer and is reported, not hidden.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from plugin.app import create_app
from plugin.demo.shopify_payloads import SampleCustomer, SampleOrder, order_payload
from plugin.jobs.drain import drain_inbox
from plugin.models import CustomerIdentity, CustomerMetric, CustomerMilestone, InboxDelivery


class Shop:
    def __init__(self, workspace_id: uuid.UUID, connection_id: uuid.UUID, seed: int) -> None:
        self.workspace_id, self.connection_id = workspace_id, connection_id
        self.rng = random.Random(seed)
        self.next_order = 8_000_000_000

    def inbox_rows(self, customer: SampleCustomer, count: int, start: datetime) -> list[dict]:
        rows = []
        for i in range(count):
            self.next_order += 1
            total = Decimal(self.rng.randint(500, 9000)) / 100
            order = SampleOrder(id=self.next_order, customer=customer, total=total,
                                created_at=start + timedelta(hours=i),
                                line_items=[(1001, "Organic bananas", 1, total)])
            body = json.dumps(order_payload(order), separators=(",", ":"))
            event = str(uuid.UUID(int=self.rng.getrandbits(128)))
            rows.append({
                "workspace_id": self.workspace_id, "connection_id": self.connection_id, "platform": "shopify",
                "delivery_key": f"orders/create:event:{event}", "topic": "orders/create", "webhook_id": event,
                "headers": {"X-Shopify-Topic": "orders/create", "X-Shopify-Event-Id": event}, "body": body,
                "status": "pending",
            })
        return rows


def insert(services, rows: list[dict]) -> None:
    with services.sessions() as session:
        for chunk in range(0, len(rows), 1000):
            session.execute(InboxDelivery.__table__.insert(), rows[chunk:chunk + 1000])
        session.commit()


def metrics_of(services, shop_customer_id: int) -> dict[str, str]:
    with services.sessions() as session:
        cid = session.scalar(select(CustomerIdentity.customer_id).where(
            CustomerIdentity.external_id == str(shop_customer_id)))
        rows = session.execute(select(CustomerMetric.metric, CustomerMetric.value).where(
            CustomerMetric.customer_id == cid)).all()
        milestones = session.scalar(select(func.count()).select_from(CustomerMilestone).where(
            CustomerMilestone.customer_id == cid))
    return {**{m: str(v) for m, v in rows}, "milestones": milestones}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--connection", required=True)
    parser.add_argument("--prior", type=int, default=5000)
    parser.add_argument("--events", type=int, default=400, help="measured events per customer per batch size")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch-sizes", default="1,100")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    app = create_app()
    services = app.extensions["milestones"]
    shop = Shop(uuid.UUID(args.workspace), uuid.UUID(args.connection), args.seed)
    created = datetime(2015, 1, 1, tzinfo=UTC)
    heavy = SampleCustomer(9_100_000_001, "heavy.history@example.net", "Heavy", "History", created)
    light = SampleCustomer(9_100_000_002, "light.history@example.net", "Light", "History", created)

    started = time.perf_counter()
    insert(services, shop.inbox_rows(heavy, args.prior, datetime(2016, 1, 1, tzinfo=UTC)))
    insert(services, shop.inbox_rows(light, 1, datetime(2016, 1, 1, tzinfo=UTC)))
    while drain_inbox(batch_size=500):
        pass
    preload_seconds = time.perf_counter() - started
    before = {"heavy": metrics_of(services, heavy.id), "light": metrics_of(services, light.id)}

    results = {}
    per_round = max(1, args.events // args.rounds)
    clock = datetime(2026, 1, 1, tzinfo=UTC)
    for size in [int(s) for s in args.batch_sizes.split(",")]:
        spent = {"heavy": 0.0, "light": 0.0}
        events = {"heavy": 0, "light": 0}
        for round_number in range(args.rounds):
            order = [("heavy", heavy), ("light", light)]
            if round_number % 2:
                order.reverse()
            for name, customer in order:
                insert(services, shop.inbox_rows(customer, per_round, clock))
                clock += timedelta(days=per_round)
                t = time.perf_counter()
                handled = drain_inbox(batch_size=size)
                spent[name] += time.perf_counter() - t
                events[name] += handled
                if handled != per_round:
                    raise SystemExit(f"history: drained {handled} of {per_round} rows")
        heavy_ms = spent["heavy"] / events["heavy"] * 1000
        light_ms = spent["light"] / events["light"] * 1000
        results[str(size)] = {"heavy_ms_per_event": heavy_ms, "light_ms_per_event": light_ms,
                              "ratio": heavy_ms / light_ms, "events_each": events["heavy"]}
    after = {"heavy": metrics_of(services, heavy.id), "light": metrics_of(services, light.id)}
    print(json.dumps({"preload_seconds": preload_seconds, "before": before, "after": after, "by_batch_size": results}))
    services.close()


if __name__ == "__main__":
    main()
