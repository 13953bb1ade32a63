"""Exactly once under concurrency: real HTTP, real RQ workers, real PostgreSQL and Redis.

The app runs under a threaded WSGI server on a loopback port with ``REDIS_URL`` set; two
``milestones worker`` subprocesses (RQ SimpleWorkers, as deployed) drain the inbox and run the
effects; Shopify, HubSpot and Slack are one recording HTTP stand-in on loopback that answers
with the shapes the connectors parse. A burst of identical (or overlapping) deliveries of one
order, sent from a thread pool, must count the order once, award its milestone once and make
one credit call, one note and one Slack post.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from redis import Redis
from rq import Worker
from rq.registry import StartedJobRegistry
from sqlalchemy import select
from werkzeug.serving import make_server

from plugin.demo.shopify_payloads import order_payload, signed_delivery
from plugin.models import CustomerMilestone, Effect, InboxDelivery, MilestoneDefinition, Order
from plugin.models import delivery as inbox_status
from plugin.models import effect as effect_status
from tests.conftest import REDIS_URL, add_connection, services_of
from tests.support import SHOP_DOMAIN, SHOP_SECRET, count, metric, milestone_keys, order

REPO = Path(__file__).resolve().parents[2]
WORKERS = 2
CONCURRENCY = 16
EMAIL = "alice@example.com"
PRELOAD_TOTAL = "30.00"  # 24 x $30 = $720, 25 x $30 = $750: the 25th order crosses no spend milestone


# --- the platforms' stand-in ----------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    platform: str
    path: str
    body: dict[str, Any]


class PlatformStandIn:
    """Shopify Admin GraphQL, HubSpot CRM v3 and the Slack Web API, recording every request.

    Mounted under ``/shopify``, ``/hubspot`` and ``/slack/api`` so each connection's ``base_url``
    points at its own prefix. Stateful where a reconcile would read back what was created.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.contacts: dict[str, str] = {}
        self.notes: list[dict[str, Any]] = []
        self.credits: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                return json.loads(raw) if raw else {}

            def do_POST(self) -> None:
                status, payload = stand_in.handle("POST", self.path, self._body())
                self._answer(status, payload)

            def do_GET(self) -> None:
                status, payload = stand_in.handle("GET", self.path, {})
                self._answer(status, payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="platform-stand-in", daemon=True)

    def start(self) -> PlatformStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- answering like each platform --------------------------------------------------------
    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        platform = path.split("/", 2)[1]
        with self.lock:
            self.requests.append(Recorded(platform, path, body))
            if platform == "shopify" and path.endswith("/graphql.json"):
                return self._shopify(body)
            if platform == "hubspot":
                return self._hubspot(method, path.split("?")[0], body)
            if platform == "slack":
                return self._slack(path.split("?")[0], body)
        return 404, {"error": f"the stand-in does not know {method} {path}"}

    def _shopify(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        query = body.get("query", "")
        variables = body.get("variables") or {}
        if "storeCreditAccountCredit(" in query:
            number = len(self.credits) + 1
            amount = variables["creditInput"]["creditAmount"]
            transaction = {
                "id": f"gid://shopify/StoreCreditAccountCreditTransaction/{number}",
                "amount": amount,
                "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "account": {"id": "gid://shopify/StoreCreditAccount/1", "balance": amount},
            }
            self.credits.append({"customer": variables["id"], **transaction})
            return 200, {"data": {"storeCreditAccountCredit": {"storeCreditAccountTransaction": transaction,
                                                                "userErrors": []}}}
        if "recentStoreCredits" in query:
            mine = [c for c in self.credits if c["customer"] == variables.get("customerId")]
            nodes = [{"id": c["id"], "amount": c["amount"], "createdAt": c["createdAt"]} for c in reversed(mine)]
            account = {"id": "gid://shopify/StoreCreditAccount/1",
                       "balance": {"amount": "0.0", "currencyCode": "USD"}, "transactions": {"nodes": nodes}}
            return 200, {"data": {"customer": {"storeCreditAccounts": {"nodes": [account] if mine else []}}}}
        return 200, {"data": {"shop": {"name": "Red Hill Fresh"}}}

    def _hubspot(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        path = path[len("/hubspot"):]
        if path == "/crm/v3/objects/contacts/search":
            email = body["filterGroups"][0]["filters"][0]["value"]
            found = self.contacts.get(email)
            results = [{"id": found, "properties": {"email": email}}] if found else []
            return 200, {"total": len(results), "results": results}
        if path == "/crm/v3/objects/contacts" and method == "POST":
            email = body["properties"]["email"]
            if email in self.contacts:
                return 409, {"status": "error", "message": f"Contact already exists. Existing ID: {self.contacts[email]}",
                             "category": "CONFLICT"}
            self.contacts[email] = str(1000 + len(self.contacts))
            return 201, {"id": self.contacts[email], "properties": body["properties"]}
        if path.startswith("/crm/v3/objects/contacts/") and method == "GET":
            email = path.rsplit("/", 1)[1]
            if email in self.contacts:
                return 200, {"id": self.contacts[email], "properties": {"email": email}}
            return 404, {"status": "error", "category": "OBJECT_NOT_FOUND"}
        if path == "/crm/v3/objects/notes" and method == "POST":
            note = {"id": str(5000 + len(self.notes)), "properties": body["properties"]}
            self.notes.append(note)
            return 201, note
        if path == "/crm/v3/objects/notes/search":
            return 200, {"total": len(self.notes), "results": list(reversed(self.notes))}
        return 404, {"status": "error", "category": "OBJECT_NOT_FOUND"}

    def _slack(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        api_method = path.rsplit("/", 1)[1]
        if api_method == "chat.postMessage":
            ts = f"{1767225600 + len(self.messages)}.000100"
            message = {"type": "message", "ts": ts, "text": body.get("text"), "metadata": body.get("metadata")}
            self.messages.append(message)
            return 200, {"ok": True, "channel": body["channel"], "ts": ts, "message": message}
        if api_method == "conversations.history":
            return 200, {"ok": True, "messages": list(reversed(self.messages)), "has_more": False}
        if api_method == "auth.test":
            return 200, {"ok": True, "team": "Red Hill Fresh", "user": "milestones"}
        return 200, {"ok": False, "error": "unknown_method"}

    # -- reading what was received -----------------------------------------------------------
    def received(self, predicate: Callable[[Recorded], bool]) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if predicate(r)]

    def credit_calls(self) -> list[Recorded]:
        return self.received(lambda r: r.platform == "shopify" and "storeCreditAccountCredit(" in r.body.get("query", ""))

    def note_creates(self, milestone_id: str | None = None) -> list[Recorded]:
        return self.received(
            lambda r: r.platform == "hubspot"
            and r.path == "/hubspot/crm/v3/objects/notes"
            and (milestone_id is None or milestone_id in r.body["properties"]["hs_note_body"])
        )

    def slack_posts(self, milestone_id: str | None = None) -> list[Recorded]:
        return self.received(
            lambda r: r.platform == "slack"
            and r.path.endswith("/chat.postMessage")
            and (milestone_id is None or r.body["metadata"]["event_payload"]["milestone_id"] == milestone_id)
        )


# --- processes ------------------------------------------------------------------------------


class Pipeline:
    """The app under a threaded WSGI server and RQ worker subprocesses, started and stopped here."""

    def __init__(self, app: Flask, database_url: str, redis: Redis, logs: Path) -> None:
        self.app = app
        self.services = services_of(app)
        self.database_url = database_url
        self.redis = redis
        self.logs = logs
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.server_thread = threading.Thread(target=self.server.serve_forever, name="wsgi", daemon=True)
        self.workers: list[subprocess.Popen[bytes]] = []

    def start(self) -> Pipeline:
        self.server_thread.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MILESTONES_")}
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=REDIS_URL,
            MILESTONES_SECRET_KEY=self.services.settings.secret_key,
            PYTHONPATH=str(REPO),
        )
        for number in range(WORKERS):
            log = open(self.logs / f"worker-{number}.log", "wb")  # noqa: SIM115 - closed with the process
            self.workers.append(
                subprocess.Popen(
                    [sys.executable, "-c", "from plugin.cli import main; main()", "worker"],
                    cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
            )
            log.close()
        wait_until(lambda: Worker.count(connection=self.redis) >= WORKERS, 30, "the RQ workers to register", self)
        return self

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.server.shutdown()
        self.server.server_close()

    def worker_logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}" for path in sorted(self.logs.glob("*.log"))
        )

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        response = requests.post(f"{self.url}/webhooks/shopify", data=body, headers=headers, timeout=30)
        return response.status_code, response.json()

    def settled(self) -> bool:
        """Nothing pending in the inbox or the outbox, nothing queued or running in RQ."""
        queue = self.services.queue.rq
        assert queue is not None
        if count(self.services, InboxDelivery, InboxDelivery.status == inbox_status.PENDING):
            return False
        if count(self.services, Effect, Effect.status.in_([effect_status.PENDING, effect_status.IN_FLIGHT])):
            return False
        return queue.count == 0 and StartedJobRegistry(queue=queue).count == 0

    def wait_settled(self, timeout: float = 30) -> None:
        wait_until(self.settled, timeout, "the pipeline to settle", self)
        time.sleep(0.5)  # anything still on its way shows up now
        wait_until(self.settled, timeout, "the pipeline to settle", self)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, pipeline: Pipeline | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for process in pipeline.workers if pipeline else []:
            if process.poll() is not None:
                raise AssertionError(f"a worker exited ({process.returncode})\n{pipeline.worker_logs()}")
        time.sleep(0.1)
    logs = pipeline.worker_logs() if pipeline else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def stand_in() -> Iterator[PlatformStandIn]:
    server = PlatformStandIn().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def connected(rq_app: Flask, workspace: Any, stand_in: PlatformStandIn) -> dict[str, Any]:
    """The shop, HubSpot and Slack, every base_url on the stand-in."""
    return {
        "shop": add_connection(rq_app, workspace.id, "shopify", {
            "shop_domain": SHOP_DOMAIN, "access_token": "shpat_test", "api_secret": SHOP_SECRET,
            "base_url": f"{stand_in.url}/shopify"}),
        "hubspot": add_connection(rq_app, workspace.id, "hubspot", {
            "access_token": "pat-test", "client_secret": "hs-secret", "base_url": f"{stand_in.url}/hubspot"}),
        "slack": add_connection(rq_app, workspace.id, "slack", {
            "bot_token": "xoxb-test", "signing_secret": "slack-secret", "channel": "C0CSM01",
            "base_url": f"{stand_in.url}/slack/api"}),
    }


@pytest.fixture
def pipeline(
    rq_app: Flask, clean_database: str, redis_client: Redis, connected: dict[str, Any], tmp_path: Path
) -> Iterator[Pipeline]:
    running = Pipeline(rq_app, clean_database, redis_client, tmp_path)
    try:
        yield running.start()
    finally:
        running.stop()


# --- helpers --------------------------------------------------------------------------------


def preload_24_orders(pipeline: Pipeline) -> None:
    """Alice's first 24 paid orders, one by one through the real endpoint and the workers."""
    for number in range(1, 25):
        body, headers = signed_delivery(
            order_payload(order(number, total=PRELOAD_TOTAL)), topic="orders/paid",
            shop_domain=SHOP_DOMAIN, secret=SHOP_SECRET,
        )
        status, answer = pipeline.post(body, headers)
        assert status == 200, answer
    wait_until(lambda: metric(pipeline.services, EMAIL, "order_count") == 24, 30, "24 orders to count", pipeline)
    pipeline.wait_settled()
    assert ("order-25", 1) not in milestone_keys(pipeline.services, EMAIL)


def send_concurrently(pipeline: Pipeline, deliveries: list[tuple[bytes, dict[str, str]]]) -> list[tuple[int, dict]]:
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        return list(pool.map(lambda d: pipeline.post(*d), deliveries))


def milestone_id(pipeline: Pipeline, key: str) -> str:
    with pipeline.services.sessions() as session:
        ids = session.execute(
            select(CustomerMilestone.id)
            .join(MilestoneDefinition, MilestoneDefinition.id == CustomerMilestone.definition_id)
            .where(MilestoneDefinition.key == key)
        ).scalars().all()
    assert len(ids) == 1, f"expected one {key} milestone, found {len(ids)}"
    return str(ids[0])


def effects_of(pipeline: Pipeline, milestone: str) -> dict[str, str]:
    with pipeline.services.sessions() as session:
        rows = session.execute(
            select(Effect.kind, Effect.status, Effect.last_error).where(Effect.milestone_id == milestone)
        ).all()
    return {kind: f"{status}{f' ({error})' if error else ''}" for kind, status, error in rows}


def assert_the_25th_order_celebrated_once(
    pipeline: Pipeline, stand_in: PlatformStandIn, order_id: str, notes_before: int, posts_before: int
) -> None:
    services = pipeline.services
    assert count(services, Order, Order.external_id == order_id) == 1
    assert count(services, Order, Order.external_id == order_id, Order.counted.is_(True)) == 1
    assert count(services, Order, Order.counted.is_(True)) == 25
    assert metric(services, EMAIL, "order_count") == 25
    assert milestone_keys(services, EMAIL).count(("order-25", 1)) == 1
    awarded = milestone_id(pipeline, "order-25")
    assert effects_of(pipeline, awarded) == {
        "crm_note": effect_status.SUCCEEDED, "slack_alert": effect_status.SUCCEEDED,
        "store_credit": effect_status.SUCCEEDED,
    }
    credits = stand_in.credit_calls()
    assert len(credits) == 1, credits
    assert credits[0].body["variables"]["id"] == "gid://shopify/Customer/7001"
    assert credits[0].body["variables"]["creditInput"]["creditAmount"] == {"amount": "10.00", "currencyCode": "USD"}
    assert len(stand_in.note_creates(awarded)) == 1
    assert len(stand_in.slack_posts(awarded)) == 1
    # ...and the burst made nothing else: one note and one post in all since the preload.
    assert len(stand_in.note_creates()) == notes_before + 1
    assert len(stand_in.slack_posts()) == posts_before + 1


# --- tests ----------------------------------------------------------------------------------


def test_200_identical_concurrent_deliveries_count_once_and_celebrate_once_with_two_workers(
    pipeline: Pipeline, stand_in: PlatformStandIn
) -> None:
    preload_24_orders(pipeline)
    notes_before, posts_before = len(stand_in.note_creates()), len(stand_in.slack_posts())
    assert stand_in.credit_calls() == []

    sample = order(25, total=PRELOAD_TOTAL)
    body, headers = signed_delivery(
        order_payload(sample), topic="orders/paid", shop_domain=SHOP_DOMAIN, secret=SHOP_SECRET,
        event_id="evt-order-25-paid",
    )
    answers = send_concurrently(pipeline, [(body, headers)] * 200)

    assert [status for status, _ in answers] == [200] * 200
    assert sorted(answer["status"] for _, answer in answers) == ["accepted"] + ["duplicate"] * 199
    assert count(pipeline.services, InboxDelivery, InboxDelivery.delivery_key.like("%evt-order-25-paid")) == 1
    wait_until(lambda: len(stand_in.credit_calls()) >= 1, 30, "the store credit", pipeline)
    pipeline.wait_settled()
    assert_the_25th_order_celebrated_once(pipeline, stand_in, str(sample.id), notes_before, posts_before)


def test_overlapping_topics_and_event_ids_of_one_order_sent_concurrently_count_it_once(
    pipeline: Pipeline, stand_in: PlatformStandIn
) -> None:
    preload_24_orders(pipeline)
    notes_before, posts_before = len(stand_in.note_creates()), len(stand_in.slack_posts())

    sample = order(25, total=PRELOAD_TOTAL)
    placed = sample.created_at
    snapshots = {
        "orders/create": order_payload(sample, financial_status="pending", updated_at=placed),
        "orders/paid": order_payload(sample, financial_status="paid", updated_at=placed + timedelta(minutes=1)),
        "orders/updated": order_payload(sample, financial_status="paid", updated_at=placed + timedelta(minutes=5)),
    }
    distinct = [
        signed_delivery(payload, topic=topic, shop_domain=SHOP_DOMAIN, secret=SHOP_SECRET, event_id=event_id)
        for topic, payload in snapshots.items()
        for event_id in ("evt-order-25-a", "evt-order-25-b")
    ]
    burst = distinct * 25
    random.Random(25).shuffle(burst)
    answers = send_concurrently(pipeline, burst)

    assert [status for status, _ in answers] == [200] * len(burst)
    assert sum(answer["status"] == "accepted" for _, answer in answers) == len(distinct)
    assert count(pipeline.services, InboxDelivery, InboxDelivery.delivery_key.like("%evt-order-25-%")) == len(distinct)
    wait_until(lambda: len(stand_in.credit_calls()) >= 1, 30, "the store credit", pipeline)
    pipeline.wait_settled()
    assert count(
        pipeline.services, InboxDelivery,
        InboxDelivery.delivery_key.like("%evt-order-25-%"), InboxDelivery.status == inbox_status.PROCESSED,
    ) == len(distinct)
    assert_the_25th_order_celebrated_once(pipeline, stand_in, str(sample.id), notes_before, posts_before)
