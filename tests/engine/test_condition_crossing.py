"""When a metric condition is crossed: jumps, repeats, boundaries, flags and compositions."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.engine.conditions import (
    MAX_OCCURRENCES,
    AllOf,
    AnyOf,
    Condition,
    Facts,
    MetricCondition,
    Occurrence,
    crossed,
    holds,
    parse_condition,
)

TODAY = date(2026, 11, 21)


def facts(**metrics: Decimal | bool | int | str) -> Facts:
    """``facts(order_count=12)``; ``feature__reports=True`` stands for metric ``feature.reports``."""
    values = {
        name.replace("__", "."): value if isinstance(value, bool | Decimal) else Decimal(value)
        for name, value in metrics.items()
    }
    return Facts(metrics=values, customer_since=None, as_of=TODAY)


def orders(count: int | str) -> Facts:
    return facts(order_count=count)


TENTH_ORDER = parse_condition({"metric": "order_count", "gte": 10})
EVERY_100_ORDERS = parse_condition({"metric": "order_count", "gte": 100, "every": 100})


# -- one threshold ------------------------------------------------------------------------------


def test_a_jump_from_9_to_12_orders_crosses_the_10th():
    assert crossed(TENTH_ORDER, orders(9), orders(12)) == [Occurrence(1, "10")]


def test_an_exact_hit_crosses_the_threshold():
    assert crossed(TENTH_ORDER, orders(9), orders(10)) == [Occurrence(1, "10")]


def test_a_customer_already_past_the_threshold_crosses_nothing():
    # A definition created after the customer passed it must not flood them on their next order.
    assert holds(TENTH_ORDER, orders(12))
    assert crossed(TENTH_ORDER, orders(12), orders(13)) == []
    assert crossed(TENTH_ORDER, orders(10), orders(10)) == []
    assert crossed(TENTH_ORDER, orders(9), orders(13)) == [Occurrence(1, "10")]  # unlike a first crossing


def test_decreasing_values_cross_nothing():
    assert crossed(TENTH_ORDER, orders(12), orders(9)) == []
    assert crossed(EVERY_100_ORDERS, orders(350), orders(120)) == []
    assert crossed(TENTH_ORDER, orders(9), orders(12)) != []


def test_prd_api_calls_milestone_fires_at_one_million():
    condition = parse_condition({"metric": "api_calls", "threshold": 1000000})

    assert crossed(condition, facts(api_calls=999_999), facts(api_calls=1_000_000)) == [
        Occurrence(1, "1000000")
    ]


def test_a_missing_metric_counts_as_zero():
    first_order = parse_condition({"metric": "order_count", "gte": 1})

    assert not holds(first_order, facts())
    assert crossed(first_order, facts(), orders(1)) == [Occurrence(1, "1")]


def test_gte_fires_on_the_threshold_and_gt_only_past_it():
    at_least = parse_condition({"metric": "lifetime_spend", "gte": 1000})
    more_than = parse_condition({"metric": "lifetime_spend", "gt": 1000})

    assert crossed(at_least, facts(lifetime_spend="999.99"), facts(lifetime_spend="1000")) == [
        Occurrence(1, "1000")
    ]
    assert crossed(more_than, facts(lifetime_spend="999.99"), facts(lifetime_spend="1000")) == []
    assert crossed(more_than, facts(lifetime_spend="1000"), facts(lifetime_spend="1000.01")) == [
        Occurrence(1, "1000")
    ]
    assert crossed(at_least, facts(lifetime_spend="1000"), facts(lifetime_spend="1000.01")) == []


def test_money_thresholds_keep_their_cents():
    condition = parse_condition({"metric": "lifetime_spend", "gte": "1000.50"})

    assert crossed(condition, facts(lifetime_spend="1000.49"), facts(lifetime_spend="1200")) == [
        Occurrence(1, "1000.50")
    ]


def test_integral_thresholds_are_written_without_exponent_or_decimals():
    condition = MetricCondition("api_calls", "gte", Decimal("1E+6"))

    assert crossed(condition, facts(api_calls=0), facts(api_calls=2_000_000)) == [Occurrence(1, "1000000")]


# -- repeats ------------------------------------------------------------------------------------


def test_every_fires_at_the_first_threshold_and_each_repeat():
    assert crossed(EVERY_100_ORDERS, orders(99), orders(100)) == [Occurrence(1, "100")]
    assert crossed(EVERY_100_ORDERS, orders(199), orders(200)) == [Occurrence(2, "200")]
    assert crossed(EVERY_100_ORDERS, orders(200), orders(299)) == []


def test_a_multi_step_jump_crosses_every_repeat_in_between():
    assert crossed(EVERY_100_ORDERS, orders(150), orders(420)) == [
        Occurrence(2, "200"),
        Occurrence(3, "300"),
        Occurrence(4, "400"),
    ]


def test_repeats_start_at_the_threshold_not_at_zero():
    every_100_from_25 = parse_condition({"metric": "order_count", "gte": 25, "every": 100})

    assert crossed(every_100_from_25, orders(0), orders(230)) == [
        Occurrence(1, "25"),
        Occurrence(2, "125"),
        Occurrence(3, "225"),
    ]


def test_gt_repeats_fire_only_past_each_threshold():
    condition = parse_condition({"metric": "lifetime_spend", "gt": 100, "every": 100})

    assert crossed(condition, facts(lifetime_spend=100), facts(lifetime_spend=200)) == [Occurrence(1, "100")]
    assert crossed(condition, facts(lifetime_spend=200), facts(lifetime_spend="200.01")) == [
        Occurrence(2, "200")
    ]


def test_fractional_repeats_are_exact():
    condition = parse_condition({"metric": "lifetime_spend", "gte": 0.5, "every": 0.25})

    assert crossed(condition, facts(), facts(lifetime_spend="1.1")) == [
        Occurrence(1, "0.50"),
        Occurrence(2, "0.75"),
        Occurrence(3, "1"),
    ]


def test_a_bulk_jump_is_capped_at_the_highest_thousand_occurrences():
    every_call = parse_condition({"metric": "api_calls", "gte": 1, "every": 1})

    occurrences = crossed(every_call, facts(api_calls=0), facts(api_calls=5000))

    assert MAX_OCCURRENCES == 1000
    assert len(occurrences) == 1000
    assert occurrences[0] == Occurrence(4001, "4001")
    assert occurrences[-1] == Occurrence(5000, "5000")


def test_the_cap_still_works_for_astronomical_jumps():
    every_thousand = parse_condition({"metric": "api_calls", "gte": 1000, "every": 1000})

    occurrences = crossed(every_thousand, facts(api_calls=0), facts(api_calls=10**20))

    assert len(occurrences) == 1000
    assert occurrences[-1] == Occurrence(10**17, str(10**20))


# -- equality and flags -------------------------------------------------------------------------

REPORTS_ADOPTED = parse_condition({"metric": "feature.reports", "eq": True})


def test_a_feature_flag_fires_when_it_turns_on():
    assert crossed(REPORTS_ADOPTED, facts(), facts(feature__reports=True)) == [Occurrence(1, "true")]
    assert crossed(REPORTS_ADOPTED, facts(feature__reports=True), facts(feature__reports=True)) == []
    assert crossed(REPORTS_ADOPTED, facts(feature__reports=True), facts(feature__reports=False)) == []


def test_a_flag_stored_as_a_number_counts_as_on():
    # The pipeline stores booleans in customer_metrics as 0 / 1.
    assert holds(REPORTS_ADOPTED, facts(feature__reports=1))
    assert not holds(REPORTS_ADOPTED, facts(feature__reports=0))


def test_eq_false_holds_for_a_missing_flag():
    not_churned = parse_condition({"metric": "churned", "eq": False})

    assert holds(not_churned, facts())
    assert crossed(not_churned, facts(churned=True), facts(churned=False)) == [Occurrence(1, "false")]


def test_eq_with_a_number_fires_only_when_the_value_is_hit_exactly():
    hundred_users = parse_condition({"metric": "active_users", "eq": 100})

    assert crossed(hundred_users, facts(active_users=99), facts(active_users=100)) == [Occurrence(1, "100")]
    assert crossed(hundred_users, facts(active_users=99), facts(active_users=101)) == []


# -- all / any ----------------------------------------------------------------------------------

FULL_ADOPTION = parse_condition(
    {
        "all": [
            {"metric": "feature.reports", "eq": True},
            {"metric": "feature.exports", "eq": True},
            {"metric": "feature.api", "eq": True},
        ]
    }
)


def test_full_adoption_fires_once_when_the_last_flag_flips():
    steps = [
        facts(),
        facts(feature__reports=True),
        facts(feature__reports=True, feature__api=True),
        facts(feature__reports=True, feature__api=True, feature__exports=True),
        facts(feature__reports=True, feature__api=True, feature__exports=True, order_count=3),
    ]

    fired = [crossed(FULL_ADOPTION, before, after) for before, after in zip(steps, steps[1:], strict=False)]

    assert fired == [[], [], [Occurrence(1, "all conditions met")], []]


def test_any_fires_when_the_first_condition_is_met_and_not_again():
    condition = parse_condition(
        {"any": [{"metric": "order_count", "gte": 10}, {"metric": "lifetime_spend", "gte": 1000}]}
    )

    assert crossed(condition, facts(order_count=9), facts(order_count=10)) == [
        Occurrence(1, "any condition met")
    ]
    assert crossed(condition, facts(order_count=10), facts(order_count=10, lifetime_spend=1000)) == []


def test_all_crosses_when_one_update_jumps_a_child_past_its_threshold():
    condition = parse_condition(
        {"all": [{"metric": "order_count", "gte": 10}, {"metric": "lifetime_spend", "gte": 500}]}
    )

    before = facts(order_count=9, lifetime_spend=800)
    after = facts(order_count=12, lifetime_spend=950)

    assert crossed(condition, before, after) == [Occurrence(1, "all conditions met")]


# -- batching never changes what is awarded ------------------------------------------------------
# Histories start with nothing and end at a = b = 100 with the flag on; every generated condition
# is false at the start and true at the end, so something must be awarded along the way.

_cents = st.integers(1, 9_000).map(lambda cents: Decimal(cents).scaleb(-2))  # 0.01 … 90.00
_every = st.none() | st.integers(100, 5_000).map(lambda cents: Decimal(cents).scaleb(-2))
_threshold_leaves = st.builds(
    MetricCondition, st.sampled_from(["a", "b"]), st.sampled_from(["gte", "gt"]), _cents
)
_flag_leaves = st.builds(MetricCondition, st.just("flag"), st.just("eq"), st.just(True))
_children = st.lists(_threshold_leaves | _flag_leaves, min_size=1, max_size=3).map(tuple)
_monotone_conditions: st.SearchStrategy[Condition] = st.one_of(
    st.builds(MetricCondition, st.sampled_from(["a", "b"]), st.sampled_from(["gte", "gt"]), _cents, _every),
    _flag_leaves,
    st.builds(AllOf, _children),
    st.builds(AnyOf, _children),
)
_levels = st.lists(st.integers(0, 10_000).map(lambda cents: Decimal(cents).scaleb(-2)), max_size=6)


@st.composite
def _monotone_histories(draw: st.DrawFn) -> list[Facts]:
    """Facts over time where metrics a and b never decrease and the flag never turns off."""
    a_levels = [Decimal(0), *sorted(draw(_levels)), Decimal(100)]
    b_levels = [Decimal(0), *sorted(draw(_levels)), Decimal(100)]
    size = max(len(a_levels), len(b_levels))
    a_levels += [a_levels[-1]] * (size - len(a_levels))
    b_levels += [b_levels[-1]] * (size - len(b_levels))
    switch_on = draw(st.integers(1, size - 1))
    return [
        Facts({"a": a, "b": b, "flag": index >= switch_on}, None, TODAY)
        for index, (a, b) in enumerate(zip(a_levels, b_levels, strict=True))
    ]


@settings(database=None, max_examples=300)
@given(_monotone_conditions, _monotone_histories())
def test_batching_updates_never_changes_what_is_awarded(condition, history):
    one_by_one = [
        occurrence
        for before, after in zip(history, history[1:], strict=False)
        for occurrence in crossed(condition, before, after)
    ]

    assert one_by_one
    assert one_by_one == crossed(condition, history[0], history[-1])
    assert len({occurrence.number for occurrence in one_by_one}) == len(one_by_one)
