"""Refunds and cancellations after a milestone, through the real webhook path: keep, claw back
(Shopify ``storeCreditAccountDebit``), revoke (the CSM told on Slack), exactly once in any order."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import update

from plugin.db import transaction, utcnow
from plugin.jobs.effects import run_effects
from plugin.models import Effect
from tests.conftest import services_of
from tests.milestones.refund_support import (
    ACCOUNT,
    cancel,
    define,
    effects,
    milestone,
    one,
    place,
    placed_at,
    platforms,
    refund,
    release_at,
    settings,
)
from tests.support import metric

ALICE = "alice@example.com"


def test_keep_leaves_the_rewards_and_writes_the_refund_in_the_history(app, client, shop, slack, workspace):
    define(app, workspace, policy="keep")
    with platforms() as fake:
        place(client, 1, 2, 3)
        cancel(client, 3)
        assert fake.calls("storeCreditAccountDebit") == []
    reversed_ = milestone(app)
    assert reversed_.status == "active" and reversed_.reversed_at is not None
    assert "Reversed on" in reversed_.notes and "order 900003 was cancelled" in reversed_.notes
    assert "order count is now 2, below 3" in reversed_.notes and "rewards kept" in reversed_.notes
    assert reversed_.context["reversal"]["policy"] == "keep"
    assert one(app, "store_credit").status == "succeeded"
    assert effects(app, "store_credit_debit") == [] and effects(app, "csm_notice") == []


def test_claw_back_debits_the_credit_it_gave_from_the_same_account(app, client, shop, slack, workspace):
    define(app, workspace, policy="claw_back")
    with platforms() as fake:
        place(client, 1, 2, 3)
        assert len(fake.calls("storeCreditAccountCredit")) == 1
        cancel(client, 3)
        debits = fake.calls("storeCreditAccountDebit")
    assert len(debits) == 1
    assert debits[0]["variables"] == {"id": ACCOUNT, "debitInput": {"debitAmount": {"amount": "10.00",
                                                                                      "currencyCode": "USD"}}}
    debit = one(app, "store_credit_debit")
    assert debit.status == "succeeded"
    assert debit.external_id == "gid://shopify/StoreCreditAccountDebitTransaction/88"
    assert debit.idempotency_key == f"{one(app, 'store_credit').idempotency_key}:clawback"
    reversed_ = milestone(app)
    assert reversed_.status == "active" and "taking back $10 store credit" in reversed_.notes
    assert metric(services_of(app), ALICE, "order_count") == 2


def test_a_partial_refund_below_a_spend_milestone_claws_back_and_one_above_it_does_not(app, client, shop, slack,
                                                                                        workspace):
    define(app, workspace, policy="claw_back", condition={"metric": "lifetime_spend", "gte": 100})
    with platforms() as fake:
        place(client, 1, 2, 3)  # $40 each: $120 at the 3rd order
        refund(client, 1, "10.00")  # $110: still past $100
        assert milestone(app).reversed_at is None and fake.calls("storeCreditAccountDebit") == []
        refund(client, 2, "15.00")  # $95
        assert len(fake.calls("storeCreditAccountDebit")) == 1
    reversed_ = milestone(app)
    assert "order 900002 was refunded $15 of $40" in reversed_.notes
    assert "lifetime spend is now $95, below $100" in reversed_.notes
    assert metric(services_of(app), ALICE, "lifetime_spend") == Decimal("95.00")


def test_duplicate_and_reordered_refund_deliveries_claw_back_once(app, client, shop, slack, workspace):
    define(app, workspace, policy="claw_back")
    with platforms() as fake:
        place(client, 1, 2, 3)
        refund(client, 3, event_id="refund-evt-1")
        refund(client, 3, event_id="refund-evt-1")  # the same delivery again: the inbox drops it
        refund(client, 3, event_id="refund-evt-2")  # the same refund, redelivered under a new event
        cancel(client, 3)  # and the cancellation that carries the same money again
        place(client, 3)  # a late orders/paid of the same order changes nothing
        debits = fake.calls("storeCreditAccountDebit")
    assert len(debits) == 1
    assert [e.status for e in effects(app, "store_credit_debit")] == ["succeeded"]
    assert milestone(app).notes.count("Reversed on") == 1


def test_a_refund_that_arrives_before_the_payment_cancels_the_credit_before_it_is_paid(app, client, shop, slack,
                                                                                        workspace):
    define(app, workspace, policy="claw_back")
    with platforms() as fake:
        place(client, 1, 2)
        refund(client, 3)  # the refund of order 3 first…
        place(client, 3)  # …then its payment: awarded at its peak and reversed in the same batch
        assert fake.calls("storeCreditAccountCredit") == [] and fake.calls("storeCreditAccountDebit") == []
    assert milestone(app).reversed_at is not None
    credit = one(app, "store_credit")
    assert credit.status == "cancelled" and "order 900003 was refunded in full" in credit.last_error
    assert effects(app, "store_credit_debit") == []


def test_revoke_cancels_what_was_not_given_and_tells_the_csm_why(app, client, shop, slack, workspace):
    define(app, workspace, policy="revoke", review=True)  # the credit waits for review: not paid yet
    with platforms() as fake:
        place(client, 1, 2, 3)
        refund(client, 3, "40.00")
        posts = fake.slack_posts()
        assert fake.calls("storeCreditAccountCredit") == []
    revoked = milestone(app)
    assert (revoked.status, revoked.revoked_at is not None) == ("revoked", True)
    credit = one(app, "store_credit")
    assert credit.status == "cancelled" and credit.last_error.startswith("milestone revoked: order 900003")
    notice = one(app, "csm_notice")
    assert notice.status == "succeeded"
    notices = [p for p in posts if "revoked" in p["text"]]
    assert len(notices) == 1 and notices[0] is posts[-1]  # after the milestones' own alerts
    text = json_text(notices[0])
    assert "Milestone revoked: 3rd Order" in text and "Alice Nguyen" in text
    assert "Why: order 900003 was refunded in full" in text and "order count is now 2, below 3" in text
    assert "celebrate" not in str(notices[0]["blocks"]).lower()  # no celebration buttons on a revocation


def test_revoke_tells_the_csm_which_rewards_were_already_given(app, client, shop, slack, workspace):
    define(app, workspace, policy="revoke")
    with platforms() as fake:
        place(client, 1, 2, 3)
        cancel(client, 3)
        text = json_text(fake.slack_posts()[-1])
        assert fake.calls("storeCreditAccountDebit") == []  # revoking takes nothing back
    assert "Already given and kept: $10 store credit" in text
    assert one(app, "store_credit").status == "succeeded"


def test_the_kill_switch_pauses_a_claw_back_until_it_is_lifted(app, client, shop, slack, workspace):
    define(app, workspace, policy="claw_back")
    with platforms() as fake:
        place(client, 1, 2, 3)
        settings(app, workspace, money_paused=True)
        cancel(client, 3)
        assert fake.calls("storeCreditAccountDebit") == []
        debit = one(app, "store_credit_debit")
        assert (debit.status, debit.hold_reason) == ("held", "kill_switch") and "kill switch" in debit.last_error
        assert release_at(app, placed_at(3)) == 0  # still paused: nothing moves
        settings(app, workspace, money_paused=False)
        assert release_at(app, placed_at(3)) == 1
        assert len(fake.calls("storeCreditAccountDebit")) == 1
    assert one(app, "store_credit_debit").status == "succeeded"


def test_a_credit_already_spent_is_reported_to_the_csm(app, client, shop, slack, workspace):
    define(app, workspace, policy="claw_back")
    with platforms() as fake:
        fake.debit_errors = [{"field": ["debitInput", "debitAmount"], "message": "Insufficient funds",
                              "code": "INSUFFICIENT_FUNDS"}]
        place(client, 1, 2, 3)
        cancel(client, 3)
        debit = one(app, "store_credit_debit")
        assert debit.status == "dead" and "already spent this credit" in debit.last_error
        notice = one(app, "csm_notice")
        assert (notice.status, notice.hold_reason) == ("held", "settling")
        assert release_at(app, placed_at(3)) == 1
        text = json_text(fake.slack_posts()[-1])
    assert "Store credit not taken back: 3rd Order" in text
    assert "Not taken back: $10 store credit" in text and "already spent this credit" in text
    assert one(app, "csm_notice").status == "succeeded"


def test_every_credit_taken_back_needs_no_notice(app, client, shop, slack, workspace):
    define(app, workspace, policy="claw_back")
    with platforms() as fake:
        place(client, 1, 2, 3)
        cancel(client, 3)
        assert release_at(app, placed_at(3)) == 0
        assert all("trophy" in p["text"] for p in fake.slack_posts())  # the milestones' own alerts only
    notice = one(app, "csm_notice")
    assert notice.status == "cancelled" and "nothing to tell the CSM" in notice.last_error


def test_a_credit_in_flight_when_the_order_is_cancelled_is_debited_once_it_lands(app, client, shop, slack, workspace):
    define(app, workspace, policy="claw_back")
    with platforms() as fake:
        place(client, 1, 2, 3)
        credit_id = one(app, "store_credit").id
        _set(app, credit_id, status="in_flight")  # a worker is calling Shopify right now
        cancel(client, 3)
        debit = one(app, "store_credit_debit")
        assert (debit.status, debit.hold_reason, debit.payload["waits_for"]) == ("held", "settling", [credit_id])
        assert release_at(app, placed_at(3)) == 0  # still in flight: the debit waits
        _set(app, credit_id, status="succeeded")  # the call came back
        assert release_at(app, placed_at(3)) == 1
        debits = fake.calls("storeCreditAccountDebit")
    assert len(debits) == 1 and debits[0]["variables"]["id"] == ACCOUNT
    assert one(app, "store_credit_debit").status == "succeeded"


def test_a_reversed_milestone_with_a_failed_credit_debits_nothing(app, client, shop, slack, workspace):
    define(app, workspace, policy="claw_back")
    with platforms():
        place(client, 1, 2, 3)
        credit_id = one(app, "store_credit").id
        _set(app, credit_id, status="in_flight")
        cancel(client, 3)
        _set(app, credit_id, status="dead")
        release_at(app, placed_at(3))
    debit = one(app, "store_credit_debit")
    assert debit.status == "cancelled" and "never applied" in debit.last_error


def test_a_crash_after_the_debit_went_through_never_debits_twice(app, client, shop, slack, workspace):
    define(app, workspace, policy="claw_back")
    with platforms() as fake:
        place(client, 1, 2, 3)
        settings(app, workspace, money_paused=True)
        cancel(client, 3)
        debit = one(app, "store_credit_debit")
        # The worker marked it in flight, Shopify debited, the worker died before recording it.
        fake.recent_debits = [
            {"id": "gid://shopify/StoreCreditAccountDebitTransaction/12", "event": "ORDER_PAYMENT",  # spent at checkout
             "amount": {"amount": "-10.0", "currencyCode": "USD"}, "createdAt": utcnow().isoformat()},
            {"id": "gid://shopify/StoreCreditAccountDebitTransaction/88", "event": "ADJUSTMENT",
             "amount": {"amount": "-10.0", "currencyCode": "USD"}, "createdAt": utcnow().isoformat()},
        ]
        _set(app, debit.id, status="in_flight", hold_reason=None, in_flight_at=utcnow() - timedelta(minutes=5))
        run_effects()
        assert fake.calls("storeCreditAccountDebit") == []
    found = one(app, "store_credit_debit")
    assert found.status == "succeeded" and found.payload["result"]["reconciled"] is True
    assert found.external_id == "gid://shopify/StoreCreditAccountDebitTransaction/88"


def _set(app, effect_id: int, **values) -> None:
    with transaction(services_of(app).sessions) as session:
        session.execute(update(Effect).where(Effect.id == effect_id).values(**values))


def json_text(post: dict) -> str:
    return post["text"] + " " + str(post["blocks"])
