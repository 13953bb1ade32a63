"""Crashes in the drain: a failed batch is rolled back and retried without double counting; a
poisoned delivery fails alone, visibly; an admin can replay a delivery without double counting.

Deliveries are stored through the real endpoint of the RQ-mode app (so they wait in the inbox,
with a drain job queued that no worker runs), then drained here, in this process, with a fault
injected into the batch's write step (:meth:`BatchState.write`, which ``plugin.pipeline.batch``
calls after it has merged the ledger and computed the crossings).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import SimpleWorker
from rq.registry import FailedJobRegistry
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import OperationalError

import plugin.jobs.drain as drain_module
import plugin.pipeline.batch as batch
from plugin.demo.shopify_payloads import order_payload, signed_delivery
from plugin.jobs.drain import drain_inbox
from plugin.jobs.sweeper import sweep
from plugin.models import CustomerMilestone, Effect, InboxDelivery, MilestoneDefinition, Order
from plugin.models import delivery as inbox_status
from plugin.services import Services, activate
from tests.conftest import services_of
from tests.support import SHOP_DOMAIN, SHOP_SECRET, count, metric, milestone_keys, order, post_order
from webhooks.base import MalformedDelivery
from webhooks.shopify import ShopifySource

EMAIL = "alice@example.com"
AUTH = {"Authorization": "Bearer test-admin-token"}


class WorkerDied(BaseException):
    """What a process sees when it is torn down mid-job (SystemExit, KeyboardInterrupt…)."""


def fail_write(monkeypatch: pytest.MonkeyPatch, *faults: BaseException) -> list[BaseException]:
    """Make the next ``len(faults)`` batch writes run, then raise the given faults in turn.

    Running the real write first means the transaction has really changed the ledger and the
    counters when the fault hits: a rollback that did not happen would show as double counts.
    """
    original = batch.BatchState.write
    pending = list(faults)
    raised: list[BaseException] = []

    def write(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if pending:
            fault = pending.pop(0)
            raised.append(fault)
            raise fault

    monkeypatch.setattr(batch.BatchState, "write", write)
    return raised


def store_orders(app: Flask, numbers: range, total: str = "60.00") -> int:
    """Each order as create + paid + a later paid re-delivery under a new event id."""
    client = app.test_client()
    stored = 0
    for number in numbers:
        sample = order(number, total=total)
        for topic, status, minutes in (("orders/create", "pending", 0), ("orders/paid", "paid", 1),
                                       ("orders/paid", "paid", 2)):
            response = post_order(client, sample, topic, financial_status=status,
                                  updated_at=sample.created_at + timedelta(minutes=minutes))
            assert response.status_code == 200 and response.get_json()["status"] == "accepted"
            stored += 1
    return stored


def inbox_statuses(services: Services) -> dict[str, int]:
    with services.sessions() as session:
        return dict(session.execute(
            select(InboxDelivery.status, func.count()).group_by(InboxDelivery.status)).all())


def expected_effects(services: Services) -> int:
    """One outbox row per recognition action of every milestone awarded."""
    with services.sessions() as session:
        return sum(
            len(recognition or [])
            for recognition in session.execute(
                select(MilestoneDefinition.recognition)
                .join(CustomerMilestone, CustomerMilestone.definition_id == MilestoneDefinition.id)
            ).scalars()
        )


def assert_ten_orders_applied_once(services: Services, rows: int) -> None:
    assert inbox_statuses(services) == {inbox_status.PROCESSED: rows}
    assert count(services, InboxDelivery, InboxDelivery.attempts != 1) == 0
    assert count(services, Order) == 10
    assert count(services, Order, Order.counted.is_(True)) == 10
    assert metric(services, EMAIL, "order_count") == 10
    assert metric(services, EMAIL, "lifetime_spend") == Decimal("600.00")
    assert milestone_keys(services, EMAIL) == [("order-1", 1), ("order-10", 1), ("spend-500", 1)]
    assert count(services, Effect) == expected_effects(services)


@pytest.fixture
def services(rq_app: Flask, shop: Any, redis_client: Redis) -> Services:
    """The RQ-mode app's services, made current for jobs run in this process."""
    found = services_of(rq_app)
    activate(found)
    return found


# --- a batch that fails ---------------------------------------------------------------------


def test_a_batch_that_raises_midway_is_rolled_back_and_each_row_is_then_applied_exactly_once(
    rq_app: Flask, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = store_orders(rq_app, range(1, 11))
    raised = fail_write(monkeypatch, RuntimeError("bug in the middle of a batch"))

    assert drain_inbox() == rows

    assert len(raised) == 1  # the fault hit the whole batch, once
    assert_ten_orders_applied_once(services, rows)


def test_a_worker_that_dies_mid_batch_leaves_every_row_pending_and_the_next_drain_applies_them_once(
    rq_app: Flask, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = store_orders(rq_app, range(1, 11))
    fail_write(monkeypatch, WorkerDied())

    with pytest.raises(WorkerDied):
        drain_inbox()

    assert inbox_statuses(services) == {inbox_status.PENDING: rows}
    assert count(services, InboxDelivery, InboxDelivery.attempts != 0) == 0
    assert count(services, Order) == 0
    assert metric(services, EMAIL, "order_count") == 0
    assert count(services, CustomerMilestone) == 0
    assert count(services, Effect) == 0

    assert drain_inbox() == rows
    assert_ten_orders_applied_once(services, rows)


def test_a_drain_job_that_loses_its_database_fails_in_rq_and_its_rows_are_swept_and_applied_once(
    rq_app: Flask, services: Services, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = store_orders(rq_app, range(1, 11))
    lost = OperationalError("UPDATE orders …", {}, psycopg.OperationalError("server closed the connection unexpectedly"))
    raised = fail_write(monkeypatch, lost)
    queue = services.queue.rq
    assert queue is not None

    SimpleWorker([queue], connection=redis_client).work(burst=True, logging_level="CRITICAL")

    assert raised == [lost]
    assert FailedJobRegistry(queue=queue).count == 1
    assert inbox_statuses(services) == {inbox_status.PENDING: rows}
    assert count(services, Order) == 0

    with services.sessions() as session:  # a sweep interval later
        session.execute(update(InboxDelivery).values(received_at=InboxDelivery.received_at - text("interval '1 minute'")))
        session.commit()
    assert sweep()["inbox"] == rows
    SimpleWorker([queue], connection=redis_client).work(burst=True, logging_level="CRITICAL")

    assert_ten_orders_applied_once(services, rows)


def test_a_deadlock_during_the_row_by_row_retry_does_not_fail_a_good_delivery(
    rq_app: Flask, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """drain.py retries a deadlocked *batch*; a deadlock victim in the row-by-row retry is as
    innocent and must not end up ``failed`` (nobody retries failed rows on their own)."""
    rows = store_orders(rq_app, range(1, 11))
    deadlock = OperationalError("UPDATE customer_metrics …", {}, psycopg.errors.DeadlockDetected("deadlock detected"))
    fail_write(monkeypatch, RuntimeError("bug in the middle of a batch"), deadlock)

    drain_inbox()

    assert inbox_statuses(services) == {inbox_status.PROCESSED: rows}
    assert metric(services, EMAIL, "order_count") == 10


def test_a_lost_database_connection_during_the_row_by_row_retry_leaves_that_row_pending_not_failed(
    rq_app: Flask, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = store_orders(rq_app, range(1, 11))
    lost = OperationalError("UPDATE orders …", {}, psycopg.OperationalError("server closed the connection unexpectedly"))
    raised = fail_write(monkeypatch, RuntimeError("bug in the middle of a batch"), lost)
    seen: list[dict[str, int]] = []
    original_sleep = drain_module.time.sleep

    def look_before_lingering(seconds: float) -> None:  # the job's last look comes after this
        seen.append(inbox_statuses(services))
        original_sleep(seconds)

    monkeypatch.setattr(drain_module.time, "sleep", look_before_lingering)
    drain_inbox()

    assert len(raised) == 2
    # Before its last look the job had left that row pending (not failed, not lost)…
    assert seen[0] == {inbox_status.PROCESSED: rows - 1, inbox_status.PENDING: 1}
    # …and the last look applied it, once.
    assert inbox_statuses(services) == {inbox_status.PROCESSED: rows}
    assert drain_inbox() == 0
    assert_ten_orders_applied_once(services, rows)


# --- a poisoned delivery --------------------------------------------------------------------


def post_without_order_id(client: FlaskClient, number: int) -> Any:
    payload = order_payload(order(number))
    del payload["id"]
    body, headers = signed_delivery(payload, topic="orders/paid", shop_domain=SHOP_DOMAIN, secret=SHOP_SECRET)
    return client.post("/webhooks/shopify", data=body, headers=headers)


def test_a_poisoned_delivery_is_marked_failed_with_its_error_while_the_rest_of_its_batch_is_processed(
    rq_app: Flask, services: Services
) -> None:
    client = rq_app.test_client()
    assert post_order(client, order(1)).status_code == 200
    poisoned = post_without_order_id(client, 2)
    assert poisoned.status_code == 200  # signed, JSON, a known topic: stored; reading it is the drain's job
    assert post_order(client, order(3)).status_code == 200

    assert drain_inbox() == 3

    with services.sessions() as session:
        rows = session.execute(
            select(InboxDelivery.id, InboxDelivery.status, InboxDelivery.error, InboxDelivery.attempts,
                   InboxDelivery.processed_at).order_by(InboxDelivery.id)
        ).all()
    assert [r.status for r in rows] == [inbox_status.PROCESSED, inbox_status.FAILED, inbox_status.PROCESSED]
    failed = rows[1]
    assert failed.error and "MalformedDelivery" in failed.error and "id is missing" in failed.error
    assert [r.attempts for r in rows] == [1, 1, 1]
    assert len({r.processed_at for r in rows}) == 1  # one batch: the good rows did not wait for a retry
    assert count(services, Order, Order.counted.is_(True)) == 2
    assert metric(services, EMAIL, "order_count") == 2
    assert milestone_keys(services, EMAIL) == [("order-1", 1)]


# --- replay through the admin API -----------------------------------------------------------


def failing_once_for(monkeypatch: pytest.MonkeyPatch, order_id: int) -> Callable[[], None]:
    """Reading ``order_id`` fails (a parser bug) until the returned fix is applied."""
    original = ShopifySource.normalize

    def normalize(self: ShopifySource, topic: str, payload: Any) -> Any:
        if isinstance(payload, dict) and payload.get("id") == order_id:
            raise MalformedDelivery("total_price_set is not what this version expected")
        return original(self, topic, payload)

    monkeypatch.setattr(ShopifySource, "normalize", normalize)
    return lambda: monkeypatch.setattr(ShopifySource, "normalize", original)


def inbox_row(services: Services, number: int) -> Any:
    with services.sessions() as session:
        return session.execute(
            select(InboxDelivery).where(InboxDelivery.body.contains(f'"id":{900000 + number},'))
        ).scalar_one()


def test_replaying_a_failed_delivery_processes_it_and_replaying_a_processed_one_does_not_count_it_twice(
    app: Flask, client: FlaskClient, shop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = services_of(app)
    fix = failing_once_for(monkeypatch, 900002)
    assert post_order(client, order(1)).status_code == 200
    assert post_order(client, order(2)).status_code == 200
    assert post_without_order_id(client, 3).status_code == 200
    first, second = inbox_row(services, 1), inbox_row(services, 2)
    assert (first.status, second.status) == (inbox_status.PROCESSED, inbox_status.FAILED)
    assert "total_price_set" in (second.error or "")
    assert metric(services, EMAIL, "order_count") == 1

    # The parser is fixed; the admin replays the failed delivery.
    fix()
    answer = client.post(f"/api/inbox/{second.id}/replay", headers=AUTH)
    assert answer.status_code == 202, answer.get_json()
    second = inbox_row(services, 2)
    assert (second.status, second.error, second.attempts) == (inbox_status.PROCESSED, None, 2)
    assert metric(services, EMAIL, "order_count") == 2
    assert metric(services, EMAIL, "lifetime_spend") == Decimal("80.00")

    # Replaying a processed delivery is harmless: the ledger already has it.
    effects_before = count(services, Effect)
    answer = client.post(f"/api/inbox/{first.id}/replay", headers=AUTH)
    assert answer.status_code == 202, answer.get_json()
    assert inbox_row(services, 1).status == inbox_status.PROCESSED
    assert inbox_row(services, 1).attempts == 2
    assert count(services, Order, Order.counted.is_(True)) == 2
    assert metric(services, EMAIL, "order_count") == 2
    assert metric(services, EMAIL, "lifetime_spend") == Decimal("80.00")
    assert milestone_keys(services, EMAIL) == [("order-1", 1)]
    assert count(services, Effect) == effects_before

    # A delivery that is still unreadable fails again, visibly; nothing else moves.
    with services.sessions() as session:
        poisoned_id = session.scalar(select(InboxDelivery.id).where(InboxDelivery.status == inbox_status.FAILED))
    answer = client.post(f"/api/inbox/{poisoned_id}/replay", headers=AUTH)
    assert answer.status_code == 202
    with services.sessions() as session:
        poisoned = session.get(InboxDelivery, poisoned_id)
    assert poisoned is not None
    assert (poisoned.status, poisoned.attempts) == (inbox_status.FAILED, 2)
    assert "id is missing" in (poisoned.error or "")
    assert metric(services, EMAIL, "order_count") == 2

    # The endpoint's own refusals.
    assert client.post(f"/api/inbox/{second.id}/replay").status_code == 401
    assert client.post(f"/api/inbox/{second.id}/replay", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/api/inbox/987654/replay", headers=AUTH).status_code == 404
