"""ANS months and days in the catalog's zone, as UTC instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scd_monitor.sla.calendar import day_periods, month_of, month_period, parse_month
from scd_monitor.sla.model import Period

BOGOTA = ZoneInfo("America/Bogota")
MADRID = ZoneInfo("Europe/Madrid")
SANTIAGO = ZoneInfo("America/Santiago")  # DST changes at local midnight


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_bogota_november_2026() -> None:
    # Bogotá is UTC-5 all year: local midnight of the 1st is 05:00Z.
    period = month_period(2026, 11, BOGOTA)
    assert period == Period(utc(2026, 11, 1, 5), utc(2026, 12, 1, 5))
    assert period.duration == timedelta(days=30)  # 720 h


def test_bogota_december_rolls_into_the_next_year() -> None:
    assert month_period(2026, 12, BOGOTA) == Period(utc(2026, 12, 1, 5), utc(2027, 1, 1, 5))


def test_madrid_march_has_743_hours() -> None:
    # 2026-03-01 00:00 CET = 02-28 23:00Z; 04-01 00:00 CEST = 03-31 22:00Z.
    # 31 days × 24 h − 1 h (spring forward on the 29th) = 743 h.
    period = month_period(2026, 3, MADRID)
    assert period == Period(utc(2026, 2, 28, 23), utc(2026, 3, 31, 22))
    assert period.duration == timedelta(hours=743)


def test_madrid_october_has_745_hours() -> None:
    # Falls back on 2026-10-25: 31 × 24 + 1 = 745 h.
    assert month_period(2026, 10, MADRID).duration == timedelta(hours=745)


def test_madrid_days_of_march_have_their_real_lengths() -> None:
    days = day_periods(month_period(2026, 3, MADRID), MADRID)
    assert len(days) == 31
    assert [d.duration for d in days].count(timedelta(hours=23)) == 1
    assert days[28].duration == timedelta(hours=23)  # the 29th
    assert days[28].start == utc(2026, 3, 28, 23)


def test_a_midnight_that_does_not_exist_starts_the_day_at_the_transition() -> None:
    # Santiago springs forward 2024-09-08 at 00:00 (-04) → 01:00 (-03): the 8th begins
    # at 04:00Z and lasts 23 h.
    days = day_periods(month_period(2024, 9, SANTIAGO), SANTIAGO)
    eighth = days[7]
    assert eighth.start == utc(2024, 9, 8, 4)
    assert eighth.duration == timedelta(hours=23)


@given(
    st.integers(1990, 2100),
    st.integers(1, 12),
    st.sampled_from([BOGOTA, MADRID, SANTIAGO, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("UTC")]),
)
def test_months_tile_time_and_days_tile_months(year: int, month: int, tz: ZoneInfo) -> None:
    period = month_period(year, month, tz)
    following = month_period(year + (month == 12), month % 12 + 1, tz)
    assert period.end == following.start
    assert period.start.tzinfo is UTC
    local = period.start.astimezone(tz)
    assert (local.year, local.month, local.day) == (year, month, 1)
    days = day_periods(period, tz)
    assert days[0].start == period.start and days[-1].end == period.end
    assert all(a.end == b.start for a, b in pairwise(days))
    assert 28 <= len(days) <= 31
    assert month_of(period.start, tz) == period
    assert month_of(period.end - timedelta(microseconds=1), tz) == period


def test_day_periods_clip_to_the_period() -> None:
    period = Period(utc(2026, 11, 1, 12), utc(2026, 11, 3, 7))
    days = day_periods(period, BOGOTA)
    # 11-01 12:00Z..11-02 05:00Z, 11-02 05:00Z..11-03 05:00Z, 11-03 05:00Z..07:00Z.
    assert days == [
        Period(utc(2026, 11, 1, 12), utc(2026, 11, 2, 5)),
        Period(utc(2026, 11, 2, 5), utc(2026, 11, 3, 5)),
        Period(utc(2026, 11, 3, 5), utc(2026, 11, 3, 7)),
    ]
    assert day_periods(Period(period.start, period.start), BOGOTA) == []


def test_parse_month() -> None:
    assert parse_month("2026-11") == (2026, 11)
    for bad in ("2026-13", "2026-1", "26-11", "2026/11", "2026-00", "november"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            parse_month(bad)
    with pytest.raises(ValueError, match="month"):
        month_period(2026, 13, BOGOTA)
