"""The credit hold: money paid N days after the qualifying order if it still counts, while the
Slack alert goes out at once; with the review queue and the kill switch. The clock is the one
given to the release step (orders are placed in January 2026, their holds judged at set days)."""

from __future__ import annotations

from datetime import timedelta

from plugin.db import utcnow
from plugin.models import effect as status
from tests.api.support import AUTH
from tests.milestones.refund_support import (
    cancel,
    define,
    milestone,
    one,
    place,
    placed_at,
    platforms,
    refund,
    release_at,
    settings,
)

DAYS = 14


def _due() -> timedelta:
    return timedelta(days=DAYS)


def test_the_credit_is_paid_after_the_hold_when_the_order_was_not_refunded(app, client, shop, slack, workspace):
    define(app, workspace, hold=DAYS)
    with platforms() as fake:
        place(client, 1, 2, 3)
        assert any("3rd Order" in p["text"] for p in fake.slack_posts())  # the alert did not wait
        credit = one(app, "store_credit")
        assert (credit.status, credit.hold_reason) == (status.HELD, status.CREDIT_HOLD)
        assert credit.next_attempt_at == placed_at(3) + _due()
        assert f"paid on {(placed_at(3) + _due()).date().isoformat()}" in credit.last_error
        assert release_at(app, placed_at(3) + _due() - timedelta(hours=1)) == 0
        assert fake.calls("storeCreditAccountCredit") == []
        assert release_at(app, placed_at(3) + _due()) == 1
        assert release_at(app, placed_at(3) + _due() + timedelta(days=1)) == 0  # released once
        assert len(fake.calls("storeCreditAccountCredit")) == 1
    assert one(app, "store_credit").status == status.SUCCEEDED


def test_a_refund_within_the_hold_cancels_the_credit_at_once(app, client, shop, slack, workspace):
    define(app, workspace, hold=DAYS)  # refund policy keep: the hold alone stops the credit
    with platforms() as fake:
        place(client, 1, 2, 3)
        refund(client, 3, hours=24 * 5)
        credit = one(app, "store_credit")
        assert credit.status == status.CANCELLED
        assert credit.last_error == "not paid: order 900003 was refunded in full during the credit hold"
        assert release_at(app, placed_at(3) + _due()) == 0
        assert fake.calls("storeCreditAccountCredit") == []
    assert "cancelled while on hold: $10 store credit" in milestone(app).notes


def test_the_qualifying_order_cancelled_within_the_hold_is_not_rewarded_even_if_the_count_holds(
        app, client, shop, slack, workspace):
    define(app, workspace, hold=DAYS)
    with platforms() as fake:
        place(client, 1, 2, 3, 4)  # the 3rd order qualified; a 4th keeps the count at 3 after…
        cancel(client, 3)  # …the qualifying order is cancelled: the milestone itself still stands
        assert milestone(app).reversed_at is None
        assert one(app, "store_credit").status == status.HELD
        assert release_at(app, placed_at(3) + _due()) == 0
        assert fake.calls("storeCreditAccountCredit") == []
    credit = one(app, "store_credit")
    assert credit.status == status.CANCELLED
    assert credit.last_error == "not paid: the qualifying order 900003 was cancelled within the 14-day credit hold"


def test_approving_a_review_does_not_release_a_hold_before_its_date(app, client, shop, slack, workspace):
    define(app, workspace, hold=DAYS, review=True)
    base = utcnow() - timedelta(days=10)  # approved today, the 3rd order a week ago: a week of hold left
    with platforms() as fake:
        place(client, 1, 2, 3, base=base)
        reviewed = milestone(app)
        assert reviewed.status == "pending_review"
        assert client.post(f"/api/reviews/{reviewed.id}/approve", json={}, headers=AUTH).status_code == 200
        credit = one(app, "store_credit")
        assert (credit.status, credit.hold_reason) == (status.HELD, status.CREDIT_HOLD)
        assert fake.calls("storeCreditAccountCredit") == []
        assert release_at(app, placed_at(3, base) + _due()) == 1
        assert len(fake.calls("storeCreditAccountCredit")) == 1
    assert milestone(app).status == "active"


def test_a_hold_over_before_the_review_waits_for_the_approval_then_pays(app, client, shop, slack, workspace):
    define(app, workspace, hold=DAYS, review=True)
    with platforms() as fake:
        place(client, 1, 2, 3)
        assert release_at(app, placed_at(3) + _due()) == 0  # over, but nobody approved it yet
        credit = one(app, "store_credit")
        assert (credit.status, credit.hold_reason) == (status.HELD, None)
        assert "waits for the review" in credit.last_error
        response = client.post(f"/api/reviews/{milestone(app).id}/approve", json={}, headers=AUTH)
        assert response.status_code == 200
        assert len(fake.calls("storeCreditAccountCredit")) == 1
    assert one(app, "store_credit").status == status.SUCCEEDED


def test_rejecting_a_reviewed_milestone_cancels_its_held_credit(app, client, shop, slack, workspace):
    define(app, workspace, hold=DAYS, review=True)
    with platforms() as fake:
        place(client, 1, 2, 3)
        response = client.post(f"/api/reviews/{milestone(app).id}/reject", json={"reason": "staff order"}, headers=AUTH)
        assert response.status_code == 200
        assert release_at(app, placed_at(3) + _due()) == 0
        assert fake.calls("storeCreditAccountCredit") == []
    assert one(app, "store_credit").status == status.CANCELLED


def test_a_hold_that_ends_while_money_is_paused_waits_for_the_kill_switch(app, client, shop, slack, workspace):
    define(app, workspace, hold=DAYS)
    with platforms() as fake:
        place(client, 1, 2, 3)
        settings(app, workspace, money_paused=True)
        assert release_at(app, placed_at(3) + _due()) == 0
        credit = one(app, "store_credit")
        assert (credit.status, credit.hold_reason) == (status.HELD, status.KILL_SWITCH)
        settings(app, workspace, money_paused=False)
        assert release_at(app, placed_at(3) + _due()) == 1
        assert len(fake.calls("storeCreditAccountCredit")) == 1


def test_the_kill_switch_holds_new_credit_and_lifting_it_pays(app, client, shop, slack, workspace):
    define(app, workspace)
    settings(app, workspace, money_paused=True)
    with platforms() as fake:
        place(client, 1, 2, 3)
        credit = one(app, "store_credit")
        assert (credit.status, credit.hold_reason) == (status.HELD, status.KILL_SWITCH)
        settings(app, workspace, money_paused=False)
        assert release_at(app, placed_at(3)) == 1
        assert len(fake.calls("storeCreditAccountCredit")) == 1
