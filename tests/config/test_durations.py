"""Durations at the edge: huge, infinite and not-a-number values are clear errors, never
an ``OverflowError`` (issue 12: ``interval: 5000000000000m`` ended in a traceback)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scd_monitor.config.durations import MAX_DURATION, format_duration, parse_duration


@pytest.mark.parametrize(
    "value",
    [
        "5000000000000m",
        "3651d",
        "522w",
        "1" + "0" * 400 + "s",  # a float of infinity, from text
        float("inf"),
        float("-inf"),
        10**400,  # an int no float can hold
        -(10**30),
        MAX_DURATION + timedelta(seconds=1),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_durations_beyond_ten_years_are_refused_with_a_clear_message(value: object) -> None:
    with pytest.raises(ValueError, match=r"is too long: at most 3650 days") as info:
        parse_duration(value)
    assert len(str(info.value)) < 140, "the offending value is quoted, cut short"


def test_not_a_number_is_an_invalid_duration() -> None:
    with pytest.raises(ValueError, match="invalid duration nan"):
        parse_duration(float("nan"))


def test_the_longest_duration_is_accepted() -> None:
    assert parse_duration("3650d") == MAX_DURATION
    assert parse_duration(MAX_DURATION) == MAX_DURATION
    assert parse_duration(MAX_DURATION.total_seconds()) == MAX_DURATION
    assert format_duration(MAX_DURATION) == "3650d"


def test_a_long_invalid_value_is_quoted_short() -> None:
    with pytest.raises(ValueError) as info:
        parse_duration("x" * 10_000)
    assert len(str(info.value)) < 200
