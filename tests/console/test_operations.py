"""The Operations page: the health panel, the inbox (replay), the effects (retry a dead one) and
the tasks for people (mark done), each action changing what it should and a bad one nothing."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from connectors.payloads import MilestoneAlert, to_json
from plugin.db import transaction
from plugin.demo.standins import SLACK, StandInServer
from plugin.models import Effect, InboxDelivery, ScanRun
from tests.api.support import Rows, build
from tests.conftest import add_connection, services_of
from tests.console.conftest import add_admin, post_form, sign_in
from tests.support import order, post_order

PAGE = "/admin/operations/"


def now() -> datetime:
    """Read afresh by each row builder: a module-level time would drift as the suite runs."""
    return datetime.now(UTC)


@pytest.fixture
def standin() -> Iterator[StandInServer]:
    server = StandInServer().start()
    yield server
    server.stop()


def post(console: FlaskClient, path: str, data: dict[str, str] | None = None, *, back: str = PAGE) -> Any:
    """POST as the page's form does: with its CSRF token, coming from ``back``."""
    return post_form(console, path, {**(data or {}), "next": back}, from_page=PAGE)


def text_of(answer: Any) -> str:
    return re.sub(r"\s+", " ", answer.get_data(as_text=True))




def delivery(connection: Any, key: str, *, status: str = "processed", minutes_ago: float = 0, error: str | None = None,
             topic: str = "orders/paid", body: str = '{"id": 1}') -> InboxDelivery:
    return InboxDelivery(workspace_id=connection.workspace_id, connection_id=connection.id, platform=connection.platform,
                         delivery_key=key, topic=topic, body=body, status=status, error=error,
                         received_at=now() - timedelta(minutes=minutes_ago))


def add(app: Flask, *rows: Any) -> list[int]:
    with transaction(services_of(app).sessions) as session:
        session.add_all(rows)
        session.flush()
        return [getattr(row, "id", None) for row in rows]


def effect_state(app: Flask, effect_id: int) -> tuple[str, int, str | None, dict[str, Any]]:
    with services_of(app).sessions() as session:
        row = session.get(Effect, effect_id)
        assert row is not None
        return row.status, row.attempts, row.last_error, dict(row.payload or {})


def delivery_state(app: Flask, delivery_id: int) -> tuple[str, str | None]:
    with services_of(app).sessions() as session:
        row = session.get(InboxDelivery, delivery_id)
        assert row is not None
        return row.status, row.error


def kpi(page: str, name: str) -> str:
    found = re.search(rf'id="kpi-{name}">.*?<div class="value[^"]*">([^<]*)</div> <div class="note">(.*?)</div>', page)
    assert found, f"no {name} figure"
    return f"{found.group(1)} | {re.sub('<[^>]+>', '', found.group(2))}"


# --- health ------------------------------------------------------------------------------------


def test_health_counts_what_waits_and_what_is_stuck(app: Flask, console: FlaskClient, workspace: Any, shop: Any,
                                                    slack: Any) -> None:
    add(app, delivery(shop, "a", status="pending", minutes_ago=30), delivery(shop, "b", status="processing", minutes_ago=20),
        delivery(shop, "c", status="failed", error="bad order", minutes_ago=10), delivery(shop, "d", minutes_ago=3),
        delivery(shop, "reconcile:9:1"),
        ScanRun(workspace_id=workspace.id, day=date(2026, 3, 14), ran_at=now() - timedelta(hours=2), candidates=40,
                awarded=3))

    def effects(rows: Rows) -> None:
        milestone = rows.milestone(rows.customer("ana@example.com"), "order-1")
        for status, extra in [("pending", {"next_attempt_at": now() - timedelta(minutes=12)}),
                              ("pending", {"next_attempt_at": now() + timedelta(hours=1)}), ("in_flight", {}),
                              ("dead", {}), ("dead", {}), ("no_connection", {}), ("open_task", {}), ("held", {}),
                              ("succeeded", {})]:
            rows.effect(milestone, "task" if status == "open_task" else "crm_note", status, **extra)

    build(app, workspace.id, effects)
    page = text_of(console.get(PAGE))
    assert kpi(page, "queue").startswith("Inline | No Redis configured")
    assert kpi(page, "inbox") == "2 | oldest received 30 min ago"
    assert kpi(page, "failed") == "1 | See and replay them"
    assert kpi(page, "effects") == "3 | 2 pending, 1 in flight · oldest due 12 min ago"
    assert kpi(page, "dead") == "2 | See and retry them"
    assert kpi(page, "no-connection").startswith("1 | Which ones")
    assert kpi(page, "tasks") == "1 | Gifts and calls to do · 1 held for review"
    assert kpi(page, "scan") == "14 Mar | ran 2 h ago: 40 checked, 3 awarded"
    # Last webhook per connection: the shop's newest delivery it sent (not the reconciled order), Slack none.
    table = page[page.index('id="last-webhooks"'):]
    assert re.search(r"<td>Shopify</td> <td>shopify</td> .*?<time [^>]*>3 min ago</time>", table)
    assert re.search(r"<td>Slack</td> <td>slack</td> .*?none received", table)


def test_health_of_a_quiet_workspace_says_all_is_well(console: FlaskClient) -> None:
    page = text_of(console.get(PAGE))
    assert kpi(page, "inbox") == "0 | every delivery is processed"
    assert kpi(page, "dead") == "0 | none: everything got through"
    assert kpi(page, "scan").endswith("has not run yet (daily, for time-based milestones)")
    assert "No connections yet." in page


def test_health_shows_the_redis_queue_depth(rq_app: Flask, workspace: Any) -> None:
    add_admin(rq_app, workspace.id)
    client = rq_app.test_client()
    sign_in(client)
    queue = services_of(rq_app).queue
    assert queue.rq is not None
    queue.rq.enqueue(print, "waiting")
    queue.rq.enqueue(print, "waiting too")
    assert kpi(text_of(client.get(PAGE)), "queue") == "2 | jobs waiting in Redis"


# --- inbox -------------------------------------------------------------------------------------


def test_the_inbox_lists_newest_first_with_errors_bodies_and_pages(app: Flask, console: FlaskClient, shop: Any,
                                                                   hubspot: Any) -> None:
    add(app, *[delivery(shop, f"evt-{n}", minutes_ago=100 - n) for n in range(30)])
    [failed] = add(app, delivery(hubspot, "hs-1", status="failed", topic="contact.propertyChange",
                                 error="no customer with that email", body='{"objectId":42,"propertyName":"arr"}'))
    page = text_of(console.get(PAGE + "inbox"))
    ids = [int(n) for n in re.findall(r'<tr id="delivery-(\d+)">', page)]
    assert len(ids) == 25 and ids == sorted(ids, reverse=True) and ids[0] == failed
    assert "no customer with that email" in page
    assert '<details class="body"><summary>Body</summary><pre>{ &#34;objectId&#34;: 42,' in page  # indented JSON
    assert "Older →" in page
    older = text_of(console.get(PAGE + "inbox?page=2"))
    assert len(re.findall(r'<tr id="delivery-', older)) == 6 and "← Newer" in older

    only_failed = text_of(console.get(PAGE + "inbox?status=failed"))
    assert re.findall(r'<tr id="delivery-(\d+)">', only_failed) == [str(failed)]
    only_shop = text_of(console.get(f"{PAGE}inbox?connection={shop.id}"))
    assert len(re.findall(r'<tr id="delivery-', only_shop)) == 25 and str(failed) not in re.findall(r'delivery-(\d+)', only_shop)
    nothing = text_of(console.get(f"{PAGE}inbox?connection={shop.id}&status=failed"))
    assert "No deliveries match these filters." in nothing


def test_replay_processes_a_failed_delivery_again(app: Flask, client: FlaskClient, console: FlaskClient,
                                                  shop: Any) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False):  # no platform is reachable
        assert post_order(client, order(1)).status_code == 200
    with services_of(app).sessions() as session, session.begin():
        delivery_id = session.scalar(select(InboxDelivery.id))
        session.execute(update(InboxDelivery).values(status="failed", error="deadlock detected"))
    assert 'Replay</button>' in console.get(PAGE + "inbox").get_data(as_text=True)
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        answer = post(console, f"{PAGE}inbox/{delivery_id}/replay", back=PAGE + "inbox?status=failed")
    assert answer.status_code == 302 and answer.headers["Location"] == PAGE + "inbox?status=failed"
    assert delivery_state(app, delivery_id) == ("processed", None)  # inline: processed right away
    assert f"Delivery #{delivery_id} is queued to be processed again." in text_of(console.get(PAGE + "inbox"))


def test_replaying_a_pending_delivery_is_refused_and_changes_nothing(app: Flask, console: FlaskClient,
                                                                     shop: Any) -> None:
    [pending] = add(app, delivery(shop, "p-1", status="pending"))
    answer = post(console, f"{PAGE}inbox/{pending}/replay")
    assert answer.status_code == 302
    assert delivery_state(app, pending) == ("pending", None)
    assert "delivery is already pending" in text_of(console.get(PAGE))


# --- effects -----------------------------------------------------------------------------------


def slack_alert(rows: Rows, connection_id: Any, status: str = "dead", **values: Any) -> Effect:
    customer = rows.customer("maya@example.com", first_name="Maya", last_name="Chen")
    milestone = rows.milestone(customer, "order-10")
    alert = MilestoneAlert(
        idempotency_key=str(milestone.id), milestone_id=str(milestone.id), customer_name="Maya Chen",
        customer_email="maya@example.com", milestone_name=milestone.milestone_name, headline="10th Order!",
        detail="10 orders", achieved_on=now().date(), time_to_milestone="8 months", customer_since=None, arr=None,
        health_score=None, celebration_ideas=("Send congratulations email",),
    )
    return rows.effect(milestone, "slack_alert", status, {"action": {"kind": "slack_alert"}, "request": to_json(alert)},
                       connection_id=connection_id, **values)


def test_the_effects_list_filters_and_shows_errors_and_attempts(app: Flask, console: FlaskClient, workspace: Any,
                                                                slack: Any) -> None:
    def effects(rows: Rows) -> tuple[int, int]:
        dead = slack_alert(rows, slack.id, attempts=8, last_error="slack: channel_not_found")
        credit = rows.effect(rows.milestone(rows.customer("leo@example.com"), "order-1"), "store_credit", "pending",
                             {"action": {"kind": "store_credit", "amount": "10.00"}},
                             next_attempt_at=now() + timedelta(minutes=30), attempts=2)
        return dead.id, credit.id

    dead, credit = build(app, workspace.id, effects)
    page = text_of(console.get(PAGE + "effects"))
    assert re.findall(r'<tr id="effect-(\d+)">', page) == [str(credit), str(dead)]
    dead_row = page[page.index(f'id="effect-{dead}"'):]
    assert "Slack alert" in dead_row and "slack: channel_not_found" in dead_row and "Maya Chen" in dead_row
    assert re.search(r'<td class="num">8</td>', dead_row) and "Retry</button>" in dead_row
    credit_row = page[page.index(f'id="effect-{credit}"'):page.index(f'id="effect-{dead}"')]
    assert "$10.00 store credit" in credit_row and "in 29 min" in credit_row and "Retry</button>" not in credit_row
    assert re.findall(r'effect-(\d+)"', text_of(console.get(PAGE + "effects?status=dead"))) == [str(dead)]
    assert re.findall(r'effect-(\d+)"', text_of(console.get(PAGE + "effects?kind=store_credit"))) == [str(credit)]
    assert "No effects match these filters." in text_of(console.get(PAGE + "effects?kind=email"))
    # kinds the planner adds itself (escalations, clawbacks, CSM notices) are filters too
    for internal in ("escalation", "store_credit_debit", "csm_notice"):
        answer = console.get(PAGE + f"effects?kind={internal}")
        assert answer.status_code == 200 and "No effects match these filters." in text_of(answer)


def test_retry_sends_a_dead_effect_again(app: Flask, console: FlaskClient, workspace: Any,
                                         standin: StandInServer) -> None:
    slack = add_connection(app, workspace.id, "slack", {
        "bot_token": "xoxb-1", "signing_secret": "s", "channel": "C0CSMCELEB", "base_url": standin.base_url(SLACK)})
    dead = build(app, workspace.id, lambda rows: slack_alert(rows, slack.id, attempts=8,
                                                              last_error="slack: ratelimited").id)
    answer = post(console, f"{PAGE}effects/{dead}/retry", back=PAGE + "effects?status=dead")
    assert answer.status_code == 302 and answer.headers["Location"] == PAGE + "effects?status=dead"
    status, attempts, error, _ = effect_state(app, dead)
    assert (status, attempts, error) == ("succeeded", 1, None)  # a fresh budget, run inline, posted
    assert any(r.path.endswith("chat.postMessage") for r in standin.standins.recorded(SLACK))


def test_retrying_an_effect_that_is_not_dead_changes_nothing(app: Flask, console: FlaskClient, workspace: Any,
                                                             slack: Any) -> None:
    pending = build(app, workspace.id, lambda rows: slack_alert(rows, slack.id, status="pending", attempts=2).id)
    before = effect_state(app, pending)
    post(console, f"{PAGE}effects/{pending}/retry")
    assert effect_state(app, pending) == before
    assert "only dead effects can be retried; this one is pending" in text_of(console.get(PAGE))


# --- tasks -------------------------------------------------------------------------------------


def gift_task(rows: Rows) -> int:
    milestone = rows.milestone(rows.customer("olga@example.com", first_name="Olga"), "order-1")
    return rows.effect(milestone, "task", "open_task", {"action": {"kind": "task"}, "title": "Send a thank-you hamper"}).id


def test_an_open_task_is_done_with_notes(app: Flask, console: FlaskClient, workspace: Any) -> None:
    task = build(app, workspace.id, gift_task)
    page = text_of(console.get(PAGE + "tasks"))
    assert "Send a thank-you hamper" in page and "Olga" in page and "olga@example.com" in page
    answer = post(console, f"{PAGE}tasks/{task}/done", {"notes": "Hamper sent by courier"}, back=PAGE + "tasks")
    assert answer.status_code == 302
    status, _, _, payload = effect_state(app, task)
    assert status == "done_task" and payload["done_notes"] == "Hamper sent by courier"
    page = text_of(console.get(PAGE + "tasks"))
    assert "Done: Send a thank-you hamper." in page and "No open tasks." in page


def test_notes_too_long_change_nothing(app: Flask, console: FlaskClient, workspace: Any) -> None:
    task = build(app, workspace.id, gift_task)
    post(console, f"{PAGE}tasks/{task}/done", {"notes": "x" * 5001})
    assert effect_state(app, task)[0] == "open_task"
    assert "Notes can be at most 5000 characters" in text_of(console.get(PAGE))


def test_a_task_id_that_is_not_a_task_is_not_found(app: Flask, console: FlaskClient, workspace: Any,
                                                   slack: Any) -> None:
    dead = build(app, workspace.id, lambda rows: slack_alert(rows, slack.id).id)
    assert post(console, f"{PAGE}tasks/{dead}/done").status_code == 404
    assert effect_state(app, dead)[0] == "dead"


# --- refusals ----------------------------------------------------------------------------------


@pytest.fixture
def theirs(app: Flask, other_workspace: Any) -> dict[str, int]:
    """A failed delivery, a dead effect and an open task of another workspace."""
    connection = add_connection(app, other_workspace.id, "slack", {
        "bot_token": "xoxb-theirs", "signing_secret": "s", "channel": "C0THEIRS01", "base_url": "https://slack.test/api"})
    [failed] = add(app, delivery(connection, "theirs-1", status="failed", error="theirs"))

    def rows(rows: Rows) -> dict[str, int]:
        return {"delivery": failed, "effect": slack_alert(rows, connection.id).id, "task": gift_task(rows),
                "connection": connection.id}

    return build(app, other_workspace.id, rows)  # type: ignore[no-any-return]


def test_another_workspaces_rows_are_not_found_and_unchanged(app: Flask, console: FlaskClient,
                                                             theirs: dict[str, Any]) -> None:
    before = (delivery_state(app, theirs["delivery"]), effect_state(app, theirs["effect"]),
              effect_state(app, theirs["task"]))
    with responses.RequestsMock():  # nothing may reach their platform
        assert post(console, f"{PAGE}inbox/{theirs['delivery']}/replay").status_code == 404
        assert post(console, f"{PAGE}effects/{theirs['effect']}/retry").status_code == 404
        assert post(console, f"{PAGE}tasks/{theirs['task']}/done", {"notes": "mine"}).status_code == 404
    assert console.get(f"{PAGE}inbox?connection={theirs['connection']}").status_code == 404
    after = (delivery_state(app, theirs["delivery"]), effect_state(app, theirs["effect"]),
             effect_state(app, theirs["task"]))
    assert after == before
    for tab in ("inbox", "effects", "tasks"):
        page = console.get(PAGE + tab).get_data(as_text=True)
        assert "theirs" not in page and "Send a thank-you hamper" not in page and "Maya Chen" not in page


def test_posts_without_the_csrf_token_are_refused_and_change_nothing(app: Flask, console: FlaskClient,
                                                                     workspace: Any, slack: Any, shop: Any) -> None:
    [failed] = add(app, delivery(shop, "f-1", status="failed", error="boom"))
    dead = build(app, workspace.id, lambda rows: slack_alert(rows, slack.id).id)
    task = build(app, workspace.id, gift_task)
    with responses.RequestsMock():
        for path in (f"inbox/{failed}/replay", f"effects/{dead}/retry", f"tasks/{task}/done"):
            assert console.post(PAGE + path, data={"notes": "x"}).status_code == 403
    assert delivery_state(app, failed) == ("failed", "boom")
    assert effect_state(app, dead)[0] == "dead" and effect_state(app, task)[0] == "open_task"


@pytest.mark.parametrize("query", ["inbox?status=lost", "effects?status=exploded", "effects?kind=fireworks"])
def test_an_unknown_filter_is_a_clear_400(console: FlaskClient, query: str) -> None:
    answer = console.get(PAGE + query)
    assert answer.status_code == 400 and "unknown" in answer.get_data(as_text=True)


@pytest.mark.parametrize("path", [f"inbox/{2**63}/replay", f"effects/{2**63}/retry", f"tasks/{2**64}/done",
                                  "effects/12x/retry"])
def test_ids_that_cannot_exist_are_not_found(console: FlaskClient, path: str) -> None:
    assert post(console, PAGE + path).status_code == 404


def test_a_malformed_connection_filter_is_not_found(console: FlaskClient) -> None:
    assert console.get(PAGE + "inbox?connection=nope").status_code == 404
    assert console.get(f"{PAGE}inbox?connection={uuid.uuid4()}").status_code == 404


def test_empty_lists_say_what_will_appear(console: FlaskClient) -> None:
    assert "No webhooks received yet." in text_of(console.get(PAGE + "inbox"))
    assert "Nothing celebrated yet." in text_of(console.get(PAGE + "effects"))
    assert "No open tasks." in text_of(console.get(PAGE + "tasks"))
