"""Outages on the ingest path: Redis down loses nothing, the database down answers 503.

Nothing global is stopped: the app under test is simply built with a ``REDIS_URL`` (or a
``DATABASE_URL``) pointing at a closed loopback port, on the same database (or Redis) as the
healthy app that stands for "the service is back".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import SimpleWorker
from sqlalchemy import func, select, text, update

from plugin import connections
from plugin.app import create_app
from plugin.jobs.sweeper import sweep
from plugin.models import Customer, CustomerMetric, CustomerMilestone, Effect, InboxDelivery, Order
from plugin.models import delivery as inbox_status
from plugin.services import activate
from tests.conftest import REDIS_URL, make_settings, services_of
from tests.support import count, metric, milestone_keys, order, post_order

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"
EMAIL = "alice@example.com"


@pytest.fixture
def redis_down_app(rq_app: Flask, clean_database: str) -> Iterator[Flask]:
    """The same database as ``rq_app``; Redis unreachable."""
    app = create_app(make_settings(clean_database, redis_url=CLOSED_PORT_REDIS))
    yield app
    services_of(app).close()
    activate(services_of(rq_app))


@pytest.fixture
def database_down_app(rq_app: Flask, database_url: str) -> Iterator[Flask]:
    """The real Redis; the database on a closed port."""
    dead = database_url.replace("127.0.0.1:5432", "127.0.0.1:1")
    assert dead != database_url
    app = create_app(make_settings(dead, redis_url=REDIS_URL))
    yield app
    services_of(app).close()
    activate(services_of(rq_app))


def drain_with_a_real_worker(app: Flask) -> None:
    """Redis is back: sweep once, then let an RQ worker run everything queued."""
    services = services_of(app)
    activate(services)
    assert services.queue.rq is not None
    SimpleWorker([services.queue.rq], connection=services.redis).work(burst=True, logging_level="WARNING")


def backdate_inbox(app: Flask, by: timedelta) -> None:
    """The outage lasted a while: rows were received long enough ago for the sweeper."""
    services = services_of(app)
    with services.sessions() as session:
        session.execute(update(InboxDelivery).values(
            received_at=InboxDelivery.received_at - text(f"interval '{int(by.total_seconds())} seconds'")))
        session.commit()


def table_counts(app: Flask) -> dict[str, int]:
    services = services_of(app)
    with services.sessions() as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (InboxDelivery, Order, Customer, CustomerMetric, CustomerMilestone, Effect)
        }


def test_orders_sent_while_redis_is_down_are_answered_200_and_all_processed_once_redis_is_back(
    rq_app: Flask, redis_down_app: Flask, shop: Any, redis_client: Redis
) -> None:
    client = redis_down_app.test_client()
    distinct = 0
    for number in range(1, 13):  # 12 orders of $45: order-1, order-10 and spend-500 ($540)
        sample = order(number, total="45.00")
        event = f"evt-{number}"
        placed = sample.created_at
        for topic, status, minutes in (("orders/create", "pending", 0), ("orders/paid", "paid", 1)):
            for _ in range(2):  # every delivery twice, as Shopify retries
                response = post_order(client, sample, topic, event_id=event, financial_status=status,
                                      updated_at=placed + timedelta(minutes=minutes))
                assert response.status_code == 200, response.get_json()
            distinct += 1

    services = services_of(rq_app)
    assert count(services, InboxDelivery) == distinct
    assert count(services, InboxDelivery, InboxDelivery.status == inbox_status.PENDING) == distinct
    assert count(services, Order) == 0  # nothing ran: no worker could be told
    assert redis_client.keys("*") == []  # and nothing reached Redis
    readiness = redis_down_app.test_client().get("/readyz")
    assert readiness.status_code == 503 and readiness.get_json()["checks"]["redis"].startswith("unavailable")

    # Redis is back. The sweeper finds the rows that waited, a worker drains them.
    backdate_inbox(rq_app, timedelta(minutes=5))
    activate(services)
    assert sweep()["inbox"] == distinct
    drain_with_a_real_worker(rq_app)

    assert count(services, InboxDelivery, InboxDelivery.status == inbox_status.PROCESSED) == distinct
    assert count(services, Order, Order.counted.is_(True)) == 12
    assert metric(services, EMAIL, "order_count") == 12
    assert metric(services, EMAIL, "lifetime_spend") == Decimal("540.00")
    assert milestone_keys(services, EMAIL) == [("order-1", 1), ("order-10", 1), ("spend-500", 1)]
    with services.sessions() as session:
        milestones_without_effects = session.scalar(
            select(func.count()).select_from(CustomerMilestone).where(
                ~select(Effect.id).where(Effect.milestone_id == CustomerMilestone.id).exists()
            )
        )
    assert milestones_without_effects == 0  # each milestone's outbox rows were written with it
    # A late retry of one of those deliveries is still a duplicate.
    again = post_order(rq_app.test_client(), order(12, total="45.00"), "orders/paid", event_id="evt-12",
                       financial_status="paid", updated_at=order(12).created_at + timedelta(minutes=1))
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"


def test_a_webhook_while_the_database_is_down_gets_503_writes_nothing_and_counts_once_on_retry(
    rq_app: Flask, database_down_app: Flask, shop: Any, redis_client: Redis
) -> None:
    before = table_counts(rq_app)
    down = database_down_app.test_client()

    # Not cached: the connection lookup itself fails.
    connections.forget()
    first = post_order(down, order(1), event_id="evt-1")
    assert first.status_code == 503, first.get_data(as_text=True)
    assert "retry" in first.get_json()["error"]

    # Cached connection (a healthy request just looked the shop up): the insert fails instead.
    warm = post_order(rq_app.test_client(), order(2), "orders/create", event_id="evt-warm", financial_status="pending")
    assert warm.status_code == 200
    before = table_counts(rq_app)
    queued = redis_client.llen("rq:queue:milestones")
    second = post_order(down, order(1), event_id="evt-1")
    assert second.status_code == 503, second.get_data(as_text=True)

    assert table_counts(rq_app) == before  # nothing half-written
    assert redis_client.llen("rq:queue:milestones") == queued  # and no job for a row that does not exist
    assert database_down_app.test_client().get("/readyz").status_code == 503

    # The database is back; Shopify retries the same delivery: it counts, once.
    retried = post_order(rq_app.test_client(), order(1), event_id="evt-1")
    assert retried.status_code == 200 and retried.get_json()["status"] == "accepted"
    drain_with_a_real_worker(rq_app)
    services = services_of(rq_app)
    assert count(services, InboxDelivery, InboxDelivery.delivery_key == "orders/paid:event:evt-1") == 1
    assert count(services, Order, Order.counted.is_(True)) == 1
    assert metric(services, EMAIL, "order_count") == 1
    assert milestone_keys(services, EMAIL) == [("order-1", 1)]
