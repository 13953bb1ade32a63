"""Tenure conditions and anniversaries: calendar arithmetic as a person counts it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.engine.conditions import (
    Facts,
    Occurrence,
    TenureCondition,
    anniversary_date,
    crossed,
    holds,
    parse_condition,
)

ONE_YEAR = parse_condition({"tenure": {"years": 1}})
EVERY_YEAR = parse_condition({"tenure": {"years": 1}, "every": {"years": 1}})


def on(day: date, since: datetime | None) -> Facts:
    return Facts(metrics={}, customer_since=since, as_of=day)


def since(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 15, 30, tzinfo=UTC)


def crossings(condition, customer_since, before: date, after: date) -> list[Occurrence]:
    return crossed(condition, on(before, customer_since), on(after, customer_since))


def test_one_year_is_reached_on_the_anniversary_day_not_before():
    start = since(2024, 3, 15)

    assert not holds(ONE_YEAR, on(date(2025, 3, 14), start))
    assert holds(ONE_YEAR, on(date(2025, 3, 15), start))
    assert crossings(ONE_YEAR, start, date(2025, 3, 14), date(2025, 3, 15)) == [Occurrence(1, "1 year")]


def test_a_leap_day_customer_is_celebrated_on_feb_28_in_a_non_leap_year():
    start = since(2024, 2, 29)

    assert crossings(ONE_YEAR, start, date(2025, 2, 27), date(2025, 2, 28)) == [Occurrence(1, "1 year")]
    assert anniversary_date(start.date(), 1) == date(2025, 2, 28)


def test_a_leap_day_customer_is_celebrated_on_feb_29_in_a_leap_year():
    start = since(2024, 2, 29)

    assert crossings(EVERY_YEAR, start, date(2028, 2, 28), date(2028, 2, 29)) == [Occurrence(4, "4 years")]
    assert crossings(EVERY_YEAR, start, date(2028, 2, 27), date(2028, 2, 28)) == []
    assert anniversary_date(start.date(), 4) == date(2028, 2, 29)


def test_months_clamp_to_the_end_of_a_shorter_month():
    six_monthly = parse_condition({"tenure": {"months": 1}, "every": {"months": 1}})
    start = since(2025, 1, 31)

    assert crossings(six_monthly, start, date(2025, 2, 27), date(2025, 2, 28)) == [Occurrence(1, "1 month")]
    assert crossings(six_monthly, since(2024, 1, 31), date(2024, 2, 28), date(2024, 2, 29)) == [
        Occurrence(1, "1 month")
    ]


def test_months_stay_anchored_to_the_start_day():
    monthly = parse_condition({"tenure": {"months": 1}, "every": {"months": 1}})
    start = since(2025, 1, 31)

    # Jan 31 + 2 months is Mar 31, not Feb 28 + 1 month.
    assert crossings(monthly, start, date(2025, 2, 28), date(2025, 3, 30)) == []
    assert crossings(monthly, start, date(2025, 3, 30), date(2025, 3, 31)) == [Occurrence(2, "2 months")]


def test_a_yearly_repeat_after_a_gap_of_years_crosses_every_anniversary_in_between():
    start = since(2019, 6, 1)

    assert crossings(EVERY_YEAR, start, date(2021, 7, 1), date(2025, 6, 1)) == [
        Occurrence(3, "3 years"),
        Occurrence(4, "4 years"),
        Occurrence(5, "5 years"),
        Occurrence(6, "6 years"),
    ]


def test_a_single_anniversary_is_crossed_once_even_when_the_scan_skips_past_it():
    five_years = parse_condition({"tenure": {"years": 5}})
    start = since(2019, 6, 1)

    assert crossings(five_years, start, date(2023, 1, 1), date(2026, 1, 1)) == [Occurrence(1, "5 years")]
    assert crossings(five_years, start, date(2026, 1, 1), date(2027, 1, 1)) == []


def test_a_repeat_every_two_years_skips_the_years_in_between():
    biennial = parse_condition({"tenure": {"years": 1}, "every": {"years": 2}})
    start = since(2020, 1, 10)

    assert crossings(biennial, start, date(2020, 1, 1), date(2026, 1, 10)) == [
        Occurrence(1, "1 year"),
        Occurrence(2, "3 years"),
        Occurrence(3, "5 years"),
    ]


def test_days_count_calendar_days():
    hundred_days = parse_condition({"tenure": {"days": 100}})
    start = since(2025, 1, 1)

    assert crossings(hundred_days, start, date(2025, 4, 10), date(2025, 4, 11)) == [Occurrence(1, "100 days")]


def test_a_customer_without_a_start_date_never_reaches_a_tenure():
    assert not holds(ONE_YEAR, on(date(2030, 1, 1), None))
    assert crossings(EVERY_YEAR, None, date(2020, 1, 1), date(2030, 1, 1)) == []
    assert crossings(EVERY_YEAR, since(2020, 1, 1), date(2020, 1, 1), date(2030, 1, 1)) != []


def test_a_start_date_in_the_future_reaches_nothing():
    assert not holds(TenureCondition("days", 1), on(date(2025, 1, 1), since(2025, 6, 1)))
    assert holds(TenureCondition("days", 1), on(date(2025, 6, 2), since(2025, 6, 1)))


def test_tenure_counts_from_the_date_customer_since_carries_in_its_own_timezone():
    # 23:30 on Mar 14 in New York is already Mar 15 in UTC; the caller passes local time.
    local_start = datetime(2024, 3, 14, 23, 30, tzinfo=ZoneInfo("America/New_York"))

    assert holds(ONE_YEAR, on(date(2025, 3, 14), local_start))
    assert not holds(ONE_YEAR, on(date(2025, 3, 14), local_start.astimezone(UTC)))


def test_facts_refuse_a_datetime_as_the_local_date():
    with pytest.raises(TypeError):
        Facts(metrics={}, customer_since=None, as_of=datetime(2025, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("start", "years", "anniversary"),
    [
        (date(2020, 5, 17), 1, date(2021, 5, 17)),
        (date(2020, 5, 17), 5, date(2025, 5, 17)),
        (date(2020, 2, 29), 1, date(2021, 2, 28)),
        (date(2020, 2, 29), 3, date(2023, 2, 28)),
        (date(2020, 2, 29), 4, date(2024, 2, 29)),
        (date(2019, 12, 31), 1, date(2020, 12, 31)),
    ],
)
def test_anniversary_date_follows_the_calendar(start, years, anniversary):
    assert anniversary_date(start, years) == anniversary


_starts = st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31))
_LIMITS = {"years": 2, "months": 24, "days": 700}  # all reached within 800 days


@st.composite
def _tenures(draw: st.DrawFn) -> TenureCondition:
    unit = draw(st.sampled_from(["years", "months", "days"]))
    every = draw(st.none() | st.integers(1, _LIMITS[unit]))
    return TenureCondition(unit, draw(st.integers(1, _LIMITS[unit])), every)


@settings(database=None, max_examples=300)
@given(_tenures(), _starts, st.lists(st.integers(0, 800), max_size=6))
def test_a_daily_scan_that_skips_days_awards_what_a_scan_of_every_day_would(condition, start, offsets):
    customer_since = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
    days = [start + timedelta(days=offset) for offset in [0, *sorted(offsets), 800]]
    history = [on(day, customer_since) for day in days]

    one_by_one = [
        o
        for before, after in zip(history, history[1:], strict=False)
        for o in crossed(condition, before, after)
    ]

    assert one_by_one
    assert one_by_one == crossed(condition, history[0], history[-1])
    assert len({o.number for o in one_by_one}) == len(one_by_one)
