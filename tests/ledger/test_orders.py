"""The order merge rules, without a database: any arrival order gives one state."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from plugin.events import OrderSnapshot, Refund
from plugin.ledger.orders import Contribution, change_between, merge_refund, merge_snapshot

T = datetime(2026, 3, 1, tzinfo=UTC)


def snap(paid: bool, cancelled: bool = False, minutes: int = 0, refunds: tuple[Refund, ...] = (), total: str = "100.00"):
    return OrderSnapshot(external_id="1", customer=None, currency="USD", total=Decimal(total), placed_at=T,
                         updated_at=T + timedelta(minutes=minutes), paid=paid, cancelled=cancelled, refunds=refunds)


REFUND = Refund("r1", Decimal("30.00"), T + timedelta(minutes=5))


def _apply_all(steps):
    state = None
    for step in steps:
        state = merge_refund(state, "1", step) if isinstance(step, Refund) else merge_snapshot(state, step)
    return state


def test_every_arrival_order_of_create_paid_refund_and_update_gives_the_same_state():
    steps = [snap(False, minutes=0), snap(True, minutes=1), REFUND, snap(True, minutes=6, refunds=(REFUND,))]
    states = {(_apply_all(p).contribution(), _apply_all(p).paid) for p in itertools.permutations(steps)}
    assert states == {(Contribution(1, Decimal("70.00")), True)}


def test_a_cancelled_order_stops_counting_even_if_paid_arrives_after_it():
    state = _apply_all([snap(True, cancelled=True, minutes=9), snap(True, minutes=1)])
    assert state.cancelled and state.contribution() == Contribution()


def test_a_fully_refunded_order_stops_counting():
    full = Refund("r2", Decimal("100.00"))
    assert _apply_all([snap(True), full]).contribution() == Contribution()


def test_the_same_refund_seen_twice_counts_once():
    state = _apply_all([snap(True), REFUND, snap(True, minutes=7, refunds=(REFUND,)), REFUND])
    assert state.refunded == Decimal("30.00")


def test_an_older_snapshot_does_not_overwrite_a_newer_total():
    state = _apply_all([snap(True, minutes=5, total="120.00"), snap(True, minutes=1, total="100.00")])
    assert state.total == Decimal("120.00")


def test_the_first_time_an_order_is_seen_paid_milestones_are_checked_at_its_full_total():
    refunded_first = merge_refund(None, "1", REFUND)
    change = change_between(refunded_first, merge_snapshot(refunded_first, snap(True)))
    assert change.delta == Contribution(1, Decimal("70.00"))
    assert change.check == Contribution(1, Decimal("100.00"))


def test_an_unpaid_order_contributes_nothing():
    change = change_between(None, merge_snapshot(None, snap(False)))
    assert change.delta == Contribution() and change.check == Contribution()
