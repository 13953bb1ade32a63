"""The condition language: parsing, validation messages, canonical JSON, descriptions."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.engine.conditions import (
    AllOf,
    AnyOf,
    Condition,
    InvalidCondition,
    MetricCondition,
    TenureCondition,
    describe,
    metrics_of,
    parse_condition,
    to_json,
    uses_tenure,
)

# -- the forms --------------------------------------------------------------------------------


def test_prd_threshold_form_means_at_least_the_threshold():
    condition = parse_condition({"metric": "api_calls", "threshold": 1000000})

    assert condition == MetricCondition("api_calls", "gte", Decimal(1000000))


@pytest.mark.parametrize("op", ["gte", "gt"])
def test_a_metric_is_compared_with_gte_or_gt(op):
    assert parse_condition({"metric": "order_count", op: 25}) == MetricCondition(
        "order_count", op, Decimal(25)
    )


def test_eq_compares_a_feature_flag_with_a_boolean():
    condition = parse_condition({"metric": "feature.reports", "eq": True})

    assert condition == MetricCondition("feature.reports", "eq", True)
    assert condition.value is True


def test_eq_compares_a_metric_with_a_number():
    assert parse_condition({"metric": "active_users", "eq": 100}) == MetricCondition(
        "active_users", "eq", Decimal(100)
    )


def test_every_repeats_a_numeric_threshold():
    condition = parse_condition({"metric": "order_count", "gte": 100, "every": 100})

    assert condition == MetricCondition("order_count", "gte", Decimal(100), Decimal(100))


def test_numbers_become_the_decimal_the_json_text_said():
    condition = parse_condition(json.loads('{"metric": "lifetime_spend", "gte": 1000.1}'))

    assert isinstance(condition, MetricCondition)
    assert isinstance(condition.value, Decimal)
    assert condition.value == Decimal("1000.1")  # not the binary float 1000.1000000000000227…


def test_a_plain_decimal_string_is_a_number():
    condition = parse_condition({"metric": "lifetime_spend", "gte": "1000.50", "every": "0.25"})

    assert condition == MetricCondition("lifetime_spend", "gte", Decimal("1000.50"), Decimal("0.25"))


@pytest.mark.parametrize("unit", ["years", "months", "days"])
def test_tenure_counts_whole_years_months_or_days(unit):
    assert parse_condition({"tenure": {unit: 2}}) == TenureCondition(unit, 2)


def test_tenure_repeats_in_its_own_unit():
    condition = parse_condition({"tenure": {"years": 1}, "every": {"years": 1}})

    assert condition == TenureCondition("years", 1, every=1)


def test_all_and_any_nest():
    condition = parse_condition(
        {
            "all": [
                {"metric": "feature.reports", "eq": True},
                {"any": [{"metric": "order_count", "gte": 10}, {"tenure": {"months": 6}}]},
            ]
        }
    )

    assert condition == AllOf(
        (
            MetricCondition("feature.reports", "eq", True),
            AnyOf((MetricCondition("order_count", "gte", Decimal(10)), TenureCondition("months", 6))),
        )
    )


def test_five_levels_of_nesting_are_allowed():
    data: dict = {"metric": "order_count", "gte": 1}
    for _ in range(4):
        data = {"all": [data]}

    assert metrics_of(parse_condition(data)) == {"order_count"}


# -- validation: what is wrong, and where ------------------------------------------------------

_DEEP: dict = {"metric": "order_count", "gte": 1}
for _ in range(5):
    _DEEP = {"any": [_DEEP]}

INVALID = [
    # (condition, path, message)
    (5, "", 'must be an object, e.g. {"metric": "order_count", "gte": 10}'),
    ({}, "", "needs one of metric, tenure, all or any"),
    (
        {"metric": "order_count", "tenure": {"years": 1}},
        "",
        "use only one of metric, tenure; combine conditions with all/any",
    ),
    ({"metric": "order_count"}, "", "needs one of gte, gt, eq (or threshold)"),
    ({"metric": "order_count", "gte": 1, "gt": 2}, "", "use only one of gte, gt"),
    ({"metric": "order_count", "threshold": 1, "gte": 1}, "", "use only one of threshold, gte"),
    (
        {"metric": "order_count", "gte": 1, "color": "red"},
        "color",
        "unknown key (a metric condition takes metric, one of gte/gt/eq, every)",
    ),
    (
        {"metric": "Order Count", "gte": 1},
        "metric",
        "must look like order_count or feature.reports (a-z, 0-9, _ and .)",
    ),
    (
        {"metric": "feature.", "gte": 1},
        "metric",
        "must look like order_count or feature.reports (a-z, 0-9, _ and .)",
    ),
    ({"metric": 7, "gte": 1}, "metric", "must be a string"),
    ({"metric": "order_count", "gte": True}, "gte", "must be a number"),
    ({"metric": "order_count", "gte": "ten"}, "gte", "must be a number"),
    ({"metric": "order_count", "gte": None}, "gte", "must be a number"),
    ({"metric": "order_count", "gte": "1e3"}, "gte", "must be a number"),
    ({"metric": "order_count", "threshold": [10]}, "threshold", "must be a number"),
    ({"metric": "order_count", "gte": float("nan")}, "gte", "must be a number"),
    ({"metric": "order_count", "gte": float("inf")}, "gte", "must be a number"),
    ({"metric": "lifetime_spend", "gte": "0.0000001"}, "gte", "must have at most 6 decimal places"),
    (
        {"metric": "api_calls", "gte": 10**24},
        "gte",
        "is too large (at most 24 digits before the decimal point)",
    ),
    ({"metric": "feature.reports", "eq": "yes"}, "eq", "must be a number or true/false"),
    (
        {"metric": "feature.reports", "eq": True, "every": 1},
        "every",
        "only gte, gt and tenure conditions can repeat",
    ),
    ({"metric": "order_count", "gte": 100, "every": 0}, "every", "must be greater than 0"),
    ({"metric": "order_count", "gte": 100, "every": -100}, "every", "must be greater than 0"),
    ({"metric": "order_count", "gte": 100, "every": False}, "every", "must be a number"),
    ({"tenure": {"years": 1, "months": 6}}, "tenure", "needs exactly one of years, months or days"),
    ({"tenure": {}}, "tenure", "needs exactly one of years, months or days"),
    ({"tenure": {"weeks": 2}}, "tenure.weeks", "unknown unit (use years, months or days)"),
    ({"tenure": {"years": 0}}, "tenure.years", "must be between 1 and 100"),
    ({"tenure": {"years": 101}}, "tenure.years", "must be between 1 and 100"),
    ({"tenure": {"days": 1.5}}, "tenure.days", "must be a whole number"),
    ({"tenure": {"years": True}}, "tenure.years", "must be a whole number"),
    ({"tenure": {"years": "1"}}, "tenure.years", "must be a whole number"),
    ({"tenure": 1}, "tenure", 'must be an object, e.g. {"years": 1}'),
    ({"tenure": {"years": 1}, "every": {"months": 12}}, "every", "must use the same unit as tenure (years)"),
    ({"tenure": {"years": 1}, "every": {"years": 0}}, "every.years", "must be between 1 and 100"),
    ({"tenure": {"years": 1}, "on": "signup"}, "on", "unknown key (a tenure condition takes tenure, every)"),
    ({"all": []}, "all", "must list at least one condition"),
    ({"all": {"metric": "order_count", "gte": 1}}, "all", "must be a list of conditions"),
    ({"all": [{"metric": "order_count", "gte": 1}] * 51}, "all", "must list at most 50 conditions"),
    (
        {"all": [{"metric": "order_count", "gte": 1}, "order_count >= 1"]},
        "all[1]",
        'must be an object, e.g. {"metric": "order_count", "gte": 10}',
    ),
    ({"all": [{"metric": "a", "gte": 1}, {"metric": "b", "gte": "x"}]}, "all[1].gte", "must be a number"),
    (
        {"any": [{"all": [{"tenure": {"years": -1}}]}]},
        "any[0].all[0].tenure.years",
        "must be between 1 and 100",
    ),
    (
        {"all": [{"metric": "order_count", "gte": 100, "every": 100}]},
        "all[0].every",
        "cannot repeat inside all/any",
    ),
    (
        {"any": [{"tenure": {"years": 1}, "every": {"years": 1}}]},
        "any[0].every",
        "cannot repeat inside all/any",
    ),
    (
        {"all": [{"metric": "a", "gte": 1}], "every": 5},
        "every",
        "only gte, gt and tenure conditions can repeat",
    ),
    ({"any": [{"metric": "a", "gte": 1}], "name": "x"}, "name", "unknown key (any takes only a list)"),
    (_DEEP, "any[0].any[0].any[0].any[0].any[0]", "nesting is too deep (at most 5 levels)"),
]


@pytest.mark.parametrize(("data", "path", "message"), INVALID)
def test_an_invalid_condition_says_what_is_wrong_and_where(data, path, message):
    with pytest.raises(InvalidCondition) as caught:
        parse_condition(data)

    assert (caught.value.path, caught.value.message) == (path, message)
    assert str(caught.value) == (f"{path}: {message}" if path else message)


def test_an_invalid_condition_is_a_value_error():
    with pytest.raises(ValueError, match=r"^all\[1\]\.gte: must be a number$"):
        parse_condition({"all": [{"metric": "a", "gte": 1}, {"metric": "b", "gte": True}]})


# -- the dataclasses guard their own invariants --------------------------------------------------


def test_only_eq_compares_with_a_boolean():
    with pytest.raises(TypeError):
        MetricCondition("order_count", "gte", True)


def test_a_number_must_be_a_decimal_not_a_float():
    with pytest.raises(TypeError):
        MetricCondition("lifetime_spend", "gte", 1000.5)  # type: ignore[arg-type]


def test_eq_cannot_repeat():
    with pytest.raises(ValueError):
        MetricCondition("active_users", "eq", Decimal(100), every=Decimal(100))


def test_tenure_needs_a_known_unit_and_a_positive_amount():
    with pytest.raises(ValueError):
        TenureCondition("weeks", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TenureCondition("years", 0)


def test_all_needs_children_and_keeps_them_as_a_tuple():
    with pytest.raises(ValueError):
        AllOf(())

    condition = AllOf([TenureCondition("years", 1)])  # type: ignore[arg-type]

    assert condition.children == (TenureCondition("years", 1),)
    assert hash(condition) == hash(AllOf((TenureCondition("years", 1),)))


# -- canonical JSON -----------------------------------------------------------------------------


def test_to_json_writes_the_prd_threshold_as_gte():
    condition = parse_condition({"metric": "api_calls", "threshold": 1000000})

    assert to_json(condition) == {"metric": "api_calls", "gte": 1000000}


def test_to_json_writes_every_form_as_plain_json():
    condition = parse_condition(
        {
            "any": [
                {"metric": "lifetime_spend", "gt": "1000.50"},
                {"metric": "feature.reports", "eq": False},
                {"tenure": {"years": 1}},
            ]
        }
    )

    assert to_json(condition) == {
        "any": [
            {"metric": "lifetime_spend", "gt": 1000.5},
            {"metric": "feature.reports", "eq": False},
            {"tenure": {"years": 1}},
        ]
    }
    assert to_json(parse_condition({"tenure": {"months": 6}, "every": {"months": 3}})) == {
        "tenure": {"months": 6},
        "every": {"months": 3},
    }


def test_to_json_keeps_a_decimal_a_float_cannot_hold_as_a_string():
    condition = MetricCondition("api_calls", "gte", Decimal("12345678901234567.123456"))

    assert to_json(condition) == {"metric": "api_calls", "gte": "12345678901234567.123456"}
    assert parse_condition(json.loads(json.dumps(to_json(condition)))) == condition


_names = st.from_regex(r"[a-z][a-z0-9_]{0,8}(\.[a-z0-9_]{1,6}){0,2}", fullmatch=True)
_numbers = st.builds(
    lambda digits, places: Decimal(digits).scaleb(-places),
    st.integers(-(10**23), 10**23),
    st.integers(0, 6),
).filter(lambda number: abs(number) < 10**24)
_steps = st.builds(
    lambda digits, places: Decimal(digits).scaleb(-places), st.integers(1, 10**12), st.integers(0, 6)
)
_units = st.sampled_from(["years", "months", "days"])


def _leaves(repeats: bool) -> st.SearchStrategy[Condition]:
    every = st.none() | _steps if repeats else st.none()
    tenure_every = st.none() | st.integers(1, 100) if repeats else st.none()
    return st.one_of(
        st.builds(MetricCondition, _names, st.sampled_from(["gte", "gt"]), _numbers, every),
        st.builds(MetricCondition, _names, st.just("eq"), st.booleans() | _numbers),
        st.builds(TenureCondition, _units, st.integers(1, 100), tenure_every),
    )


def _conditions(depth: int = 1) -> st.SearchStrategy[Condition]:
    if depth == 5:
        return _leaves(repeats=False)
    children = st.lists(_conditions(depth + 1), min_size=1, max_size=3).map(tuple)
    return st.one_of(_leaves(repeats=depth == 1), st.builds(AllOf, children), st.builds(AnyOf, children))


@settings(database=None, max_examples=300)
@given(_conditions())
def test_to_json_round_trips_through_json_text_and_parse(condition):
    data = json.loads(json.dumps(to_json(condition)))

    assert parse_condition(data) == condition
    assert to_json(parse_condition(data)) == data


# -- helpers ------------------------------------------------------------------------------------


def test_metrics_of_lists_every_metric_a_condition_reads():
    condition = parse_condition(
        {
            "all": [
                {"metric": "feature.reports", "eq": True},
                {"any": [{"metric": "order_count", "gte": 10}, {"tenure": {"years": 1}}]},
                {"metric": "order_count", "gt": 3},
            ]
        }
    )

    assert metrics_of(condition) == frozenset({"feature.reports", "order_count"})
    assert metrics_of(parse_condition({"tenure": {"years": 1}})) == frozenset()


def test_uses_tenure_finds_time_anywhere_in_a_condition():
    nested = parse_condition(
        {"any": [{"metric": "order_count", "gte": 10}, {"all": [{"tenure": {"days": 30}}]}]}
    )

    assert uses_tenure(nested) is True
    assert uses_tenure(parse_condition({"metric": "order_count", "gte": 10})) is False


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"metric": "api_calls", "threshold": 1000000}, "api calls ≥ 1,000,000"),
        ({"metric": "order_count", "gte": 25, "every": 100}, "order count ≥ 25, every 100"),
        ({"metric": "lifetime_spend", "gt": "1000.5"}, "lifetime spend > 1,000.50"),
        ({"metric": "active_users", "eq": 100}, "active users = 100"),
        ({"metric": "feature.reports", "eq": True}, "feature reports is true"),
        ({"tenure": {"years": 1}, "every": {"years": 1}}, "1 year as a customer, every year"),
        ({"tenure": {"months": 6}, "every": {"months": 3}}, "6 months as a customer, every 3 months"),
        ({"tenure": {"days": 1}}, "1 day as a customer"),
        (
            {"all": [{"metric": "feature.reports", "eq": True}, {"metric": "feature.exports", "eq": True}]},
            "all of: feature reports is true; feature exports is true",
        ),
        (
            {
                "any": [
                    {"tenure": {"years": 2}},
                    {"all": [{"metric": "roi", "gte": 1}, {"metric": "nps", "gt": 8}]},
                ]
            },
            "any of: 2 years as a customer; (all of: roi ≥ 1; nps > 8)",
        ),
    ],
)
def test_describe_says_a_condition_in_plain_english(data, text):
    assert describe(parse_condition(data)) == text
