"""``milestones demo`` end to end on a small store: SQLite, inline jobs, local stand-ins.

One demo run (module fixture) feeds several checks: what it printed, what the database holds and
what the stand-ins for Shopify, HubSpot and Slack were asked.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import click
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.db import make_engine
from plugin.demo.replay import plan
from plugin.demo.run import DemoOutcome, run_demo
from plugin.demo.sample_store import generate
from plugin.demo.standins import SHOPIFY, SLACK
from plugin.models import Customer, CustomerMilestone, Effect, InboxDelivery, MilestoneDefinition, Order

TODAY = date(2026, 11, 21)
CUSTOMERS, YEARS, SEED = 30, 1, 7


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoOutcome, str]]:
    database = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", f"sqlite:///{database}")
        env.delenv("REDIS_URL", raising=False)
        env.setenv("MILESTONES_ADMIN_TOKEN", "demo-test-token")
        outcome = run_demo(customers=CUSTOMERS, years=YEARS, seed=SEED, serve=False, today=TODAY, out=printed)
    yield outcome, printed.getvalue()


@pytest.fixture(scope="module")
def session(demo: tuple[DemoOutcome, str]) -> Iterator[Session]:
    engine = make_engine(demo[0].database_url)
    with Session(engine) as opened:
        yield opened
    engine.dispose()


def milestone_counts(session: Session) -> Counter[str]:
    rows = session.execute(
        select(MilestoneDefinition.key, func.count())
        .join(CustomerMilestone, CustomerMilestone.definition_id == MilestoneDefinition.id)
        .group_by(MilestoneDefinition.key)
    ).all()
    return Counter({key: n for key, n in rows})


def effect_count(session: Session, kind: str | None = None, *statuses: str) -> int:
    query = select(func.count()).select_from(Effect)
    if kind:
        query = query.where(Effect.kind == kind)
    if statuses:
        query = query.where(Effect.status.in_(statuses))
    return int(session.scalar(query) or 0)


def test_the_report_says_what_happened_and_how_to_look(demo: tuple[DemoOutcome, str]) -> None:
    outcome, printed = demo
    assert "Customer Milestones demo: Red Hill Fresh (Australia/Melbourne, USD)" in printed
    assert "admin token  demo-test-token (from MILESTONES_ADMIN_TOKEN)" in printed
    assert re.search(r"replaying\s+[\d,]+/[\d,]+ deliveries\s+100%", printed)
    assert re.search(r"accepted [\d,]+ · duplicates ignored [1-9][\d,]* \(re-sent on purpose [1-9]", printed)
    assert "· rejected 0" in printed
    assert re.search(r"order-1\s+1st Order\s+\d+", printed)
    assert re.search(r"order-10\s+10th Order\s+\d+", printed)
    assert re.search(r"Store credit applied: [\d,]+\.\d\d USD", printed)
    assert re.search(r"open_task\s+\d+\s+tasks for people.*Send a welcome gift ×\d+", printed)
    assert "A celebration email as sent through HubSpot" in printed and "Subject: " in printed
    assert ":trophy: Customer Milestone: " in printed
    assert "[Send Celebration Email] [Request Social Permission] [Mark Celebrated]" in printed
    assert "A HubSpot note as created on the contact's timeline" in printed and "🏆" in printed
    assert "curl -s -H \"Authorization: Bearer demo-test-token\" 'http://127.0.0.1:8000/api/milestones" in printed
    assert f"/api/customers?email={outcome.report.busiest_email}'" in printed
    assert outcome.report.replay.accepted + outcome.report.replay.duplicates == outcome.report.replay.sent


def test_every_delivery_was_processed_and_duplicates_stored_once(demo: tuple[DemoOutcome, str], session: Session) -> None:
    replay = demo[0].report.replay
    statuses = dict(session.execute(select(InboxDelivery.status, func.count()).group_by(InboxDelivery.status)).all())
    assert statuses == {"processed": replay.accepted}
    assert replay.duplicates == replay.resent_on_purpose


def test_orders_counted_in_the_ledger_match_the_sample_store(demo: tuple[DemoOutcome, str], session: Session) -> None:
    store = demo[0].store
    assert session.scalar(select(func.count()).select_from(Order).where(Order.counted.is_(True))) == store.summary()["counted"]
    assert session.scalar(select(func.count()).select_from(Customer)) == CUSTOMERS


def test_first_and_tenth_orders_are_milestones(demo: tuple[DemoOutcome, str], session: Session) -> None:
    store = demo[0].store
    paid = Counter(o.order.customer.id for o in store.orders if o.paid_at is not None and o.order.customer)
    kept = Counter(o.order.customer.id for o in store.orders if o.counts and o.order.customer)
    found = milestone_counts(session)
    # An order cancelled after payment still reached its milestone when it was paid: between the two.
    assert sum(1 for n in kept.values() if n >= 1) <= found["order-1"] <= sum(1 for n in paid.values() if n >= 1)
    assert 0 < sum(1 for n in kept.values() if n >= 10) <= found["order-10"] <= sum(1 for n in paid.values() if n >= 10)
    assert found["order-1"] > 0


def test_store_credit_reached_shopify_as_a_decimal_string(demo: tuple[DemoOutcome, str], session: Session) -> None:
    credits = demo[0].standins.store_credits()
    assert credits, "no storeCreditAccountCredit reached the Shopify stand-in"
    for request in credits:
        money: dict[str, Any] = request.body["variables"]["creditInput"]["creditAmount"]
        assert isinstance(money["amount"], str) and re.fullmatch(r"\d+\.\d{2}", money["amount"])
        assert Decimal(money["amount"]) in {Decimal("10.00"), Decimal("25.00")}
        assert money["currencyCode"] == "USD"
        assert request.body["variables"]["id"].startswith("gid://shopify/Customer/")
    assert effect_count(session, "store_credit", "succeeded") == len(credits)
    total = sum(Decimal(r.body["variables"]["creditInput"]["creditAmount"]["amount"]) for r in credits)
    assert demo[0].report.credit_total == total
    assert f"Store credit applied: {total:,.2f} USD" in demo[1]


def test_slack_posts_and_hubspot_notes_match_the_effects_that_succeeded(
    demo: tuple[DemoOutcome, str], session: Session
) -> None:
    standins = demo[0].standins
    assert len(standins.recorded(SLACK, "/chat.postMessage")) == effect_count(session, "slack_alert", "succeeded") > 0
    assert len(standins.recorded(path_suffix="/crm/v3/objects/notes")) == effect_count(session, "crm_note", "succeeded")
    assert all(r.service in {SHOPIFY, SLACK, "hubspot"} for r in standins.recorded())


def test_no_effect_is_left_pending_in_flight_or_dead(session: Session) -> None:
    assert effect_count(session, None, "pending", "in_flight", "dead") == 0
    assert effect_count(session, None, "succeeded") > 0


def test_celebration_emails_went_out_through_hubspot(demo: tuple[DemoOutcome, str], session: Session) -> None:
    sent = demo[0].standins.recorded(path_suffix="/marketing/v3/transactional/single-email/send")
    assert len(sent) == effect_count(session, "email", "succeeded") > 0
    assert all(r.body["message"]["to"] and r.body["message"]["sendId"] for r in sent)
    tenth = [r for r in sent if r.body["customProperties"]["template"] == "order-10-thank-you"]
    assert tenth and all("$5" not in r.body["customProperties"]["message_text"] for r in tenth)


def test_a_database_that_already_has_the_demo_shop_is_refused(
    demo: tuple[DemoOutcome, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", demo[0].database_url)
    with pytest.raises(click.ClickException, match="already has the demo shop"):
        run_demo(customers=2, years=1, seed=1, serve=False, today=TODAY, out=io.StringIO())


def test_the_sample_store_is_the_same_for_the_same_seed() -> None:
    first = generate(CUSTOMERS, YEARS, SEED, today=TODAY)
    again = generate(CUSTOMERS, YEARS, SEED, today=TODAY)
    other = generate(CUSTOMERS, YEARS, SEED + 1, today=TODAY)
    assert first == again
    assert plan(first, SEED) == plan(again, SEED)
    assert first != other
    assert all(isinstance(o.order.total, Decimal) for o in first.orders)
    assert all(o.order.created_at.date() < TODAY for o in first.orders)
    assert len({c.email for c in first.customers}) == CUSTOMERS


def test_the_sample_store_has_regulars_cancellations_and_refunds() -> None:
    store = generate(300, 3, SEED, today=TODAY)
    orders_per_customer = Counter(o.order.customer.id for o in store.orders if o.order.customer)
    summary = store.summary()
    assert sum(1 for n in orders_per_customer.values() if n >= 100) >= 3
    assert summary["cancelled"] > 0 and summary["refunded_in_part"] > 0 and summary["refunded_in_full"] > 0
    titles = {title for o in store.orders for _, title, _, _ in o.order.line_items}
    assert {"Seasonal veg box", "Organic sourdough loaf", "Free-range eggs (dozen)"} <= titles
