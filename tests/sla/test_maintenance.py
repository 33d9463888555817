"""Maintenance windows: one-off with minimum notice, recurring cron in the catalog's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from scd_monitor.catalog.models import Service
from scd_monitor.sla.calendar import month_period
from scd_monitor.sla.intervals import normalize_spans
from scd_monitor.sla.maintenance import maintenance_spans
from scd_monitor.sla.model import Period, Span, State

BOGOTA = ZoneInfo("America/Bogota")
MADRID = ZoneInfo("Europe/Madrid")
NOVEMBER = month_period(2026, 11, BOGOTA)  # 2026-11-01T05:00Z .. 2026-12-01T05:00Z


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def service(maintenance: list[dict[str, Any]], **extra: Any) -> Service:
    return Service.model_validate(
        {
            "id": "svc",
            "type": "otro",
            "checks": [{"id": "c", "kind": "http", "url": "https://example.org/"}],
            "maintenance": maintenance,
            **extra,
        }
    )


def test_one_off_window_without_notice_rule_is_allowed() -> None:
    svc = service(
        [
            {
                "start": "2026-11-10T02:00:00-05:00",
                "end": "2026-11-10T04:00:00-05:00",
                "reason": "upgrade",
            }
        ]
    )
    plan = maintenance_spans(svc, NOVEMBER, BOGOTA)
    assert plan.allowed == [
        Span(utc(2026, 11, 10, 7), utc(2026, 11, 10, 9), State.MAINTENANCE, "upgrade")
    ]
    assert plan.rejected == []
    assert plan.excluded == timedelta(hours=2)


def test_minimum_notice_rejects_late_and_unannounced_windows() -> None:
    svc = service(
        [
            # announced exactly 48 h ahead: allowed
            {
                "start": "2026-11-10T02:00:00-05:00",
                "end": "2026-11-10T03:00:00-05:00",
                "reason": "on time",
                "announced_at": "2026-11-08T02:00:00-05:00",
            },
            # announced 47 h ahead: rejected
            {
                "start": "2026-11-12T02:00:00-05:00",
                "end": "2026-11-12T03:00:00-05:00",
                "reason": "late",
                "announced_at": "2026-11-10T03:00:00-05:00",
            },
            # never announced: rejected
            {
                "start": "2026-11-14T02:00:00-05:00",
                "end": "2026-11-14T03:00:00-05:00",
                "reason": "silent",
            },
        ],
        maintenance_notice="48h",
    )
    plan = maintenance_spans(svc, NOVEMBER, BOGOTA)
    assert [s.reason for s in plan.allowed] == ["on time"]
    rejected = {w.reason: w.rejected for w in plan.rejected}
    assert set(rejected) == {"late", "silent"}
    assert rejected["late"] is not None and "1d23h before the start" in rejected["late"]
    assert "requires 2d notice" in rejected["late"]
    assert rejected["silent"] is not None and rejected["silent"].startswith("not announced")
    assert "2026-11-12T07:00:00Z" in rejected["silent"]  # due by start − 48 h
    assert plan.excluded == timedelta(hours=1)
    assert [w.reason for w in plan.windows] == ["on time", "late", "silent"]


def test_windows_outside_the_period_are_left_out_and_crossing_ones_clipped() -> None:
    svc = service(
        [
            {
                "start": "2026-10-31T23:00:00-05:00",
                "end": "2026-11-01T01:00:00-05:00",
                "reason": "crosses",
            },
            {
                "start": "2026-10-20T23:00:00-05:00",
                "end": "2026-10-21T01:00:00-05:00",
                "reason": "october",
            },
        ]
    )
    plan = maintenance_spans(svc, NOVEMBER, BOGOTA)
    assert plan.allowed == [
        Span(utc(2026, 11, 1, 5), utc(2026, 11, 1, 6), State.MAINTENANCE, "crosses")
    ]
    assert [w.start for w in plan.windows] == [utc(2026, 11, 1, 4)]  # unclipped for the report


def test_recurring_sunday_window_in_bogota() -> None:
    # Sundays 02:00 Bogotá (07:00Z) for 2 h. November 2026 Sundays: 1, 8, 15, 22, 29.
    svc = service([{"cron": "0 2 * * sun", "duration": "2h", "reason": "weekly"}])
    plan = maintenance_spans(svc, NOVEMBER, BOGOTA)
    assert [s.start for s in plan.allowed] == [utc(2026, 11, d, 7) for d in (1, 8, 15, 22, 29)]
    assert plan.excluded == timedelta(hours=10)
    assert all(w.kind == "recurring" and w.allowed for w in plan.windows)


def test_recurring_window_that_began_before_the_period_is_included() -> None:
    # Daily 23:00 Bogotá for 3 h: the one of Oct 31 runs into Nov 1 until 02:00 local
    # (07:00Z); November has 30 such windows, the last one running 2 h past the month.
    svc = service(
        [{"cron": "0 23 * * *", "duration": "3h", "reason": "nightly"}], maintenance_notice="7d"
    )  # notice does not apply to recurring windows
    plan = maintenance_spans(svc, NOVEMBER, BOGOTA)
    assert plan.allowed[0] == Span(
        utc(2026, 11, 1, 5), utc(2026, 11, 1, 7), State.MAINTENANCE, "nightly"
    )
    assert len(plan.windows) == 31
    # 2 h (Oct 31 tail) + 29 × 3 h + 1 h (Nov 30, 23:00 → month end at 24:00) = 90 h
    assert plan.excluded == timedelta(hours=90)
    assert plan.rejected == []


def test_overlapping_windows_are_unioned_with_both_reasons() -> None:
    svc = service(
        [
            {
                "start": "2026-11-10T02:00:00-05:00",
                "end": "2026-11-10T04:00:00-05:00",
                "reason": "db",
            },
            {
                "start": "2026-11-10T03:00:00-05:00",
                "end": "2026-11-10T05:00:00-05:00",
                "reason": "network",
            },
        ]
    )
    plan = maintenance_spans(svc, NOVEMBER, BOGOTA)
    assert [(s.start.hour, s.end.hour, s.reason) for s in plan.allowed] == [
        (7, 8, "db"),
        (8, 9, "db + network"),
        (9, 10, "network"),
    ]
    assert plan.excluded == timedelta(hours=3)


def test_recurring_in_a_dst_zone_follows_the_local_wall_clock() -> None:
    # 01:00 Madrid daily for 30 min: 00:00Z in winter (CET), 23:00Z the day before in
    # summer (CEST). March 2026 changes on the 29th.
    svc = service([{"cron": "0 1 * * *", "duration": "30m", "reason": "r"}])
    plan = maintenance_spans(svc, month_period(2026, 3, MADRID), MADRID)
    starts = [s.start for s in plan.allowed]
    assert len(starts) == 31
    assert utc(2026, 3, 28, 0) in starts
    assert utc(2026, 3, 29, 0) in starts  # 01:00 CET, before the 02:00 change
    assert utc(2026, 3, 29, 23) in starts  # 01:00 CEST on the 30th


def test_repeated_fall_back_wall_time_starts_one_window() -> None:
    # 02:30 happens twice in Madrid on 2026-10-25 (00:30Z CEST and 01:30Z CET): one
    # window, at the first occurrence.
    svc = service([{"cron": "30 2 * * *", "duration": "1h", "reason": "r"}])
    day = Period(utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))
    plan = maintenance_spans(svc, day, MADRID)
    assert [w.start for w in plan.windows] == [utc(2026, 10, 25, 0, 30)]


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(["0 2 * * sun", "*/30 * * * *", "15 23 * * 1-5", "0 0 1 * *"]),
    st.integers(1, 300),
    st.integers(0, 40 * 24),
    st.integers(1, 6 * 24),
)
def test_allowed_spans_are_normalized_inside_the_period(
    cron: str, minutes: int, offset_h: int, length_h: int
) -> None:
    svc = service([{"cron": cron, "duration": f"{minutes}m", "reason": "r"}])
    start = utc(2026, 10, 15) + timedelta(hours=offset_h)
    period = Period(start, start + timedelta(hours=length_h))
    plan = maintenance_spans(svc, period, BOGOTA)
    assert normalize_spans(plan.allowed) == plan.allowed
    assert all(period.start <= s.start < s.end <= period.end for s in plan.allowed)
    assert all(w.end - w.start == timedelta(minutes=minutes) for w in plan.windows)
    assert all(w.start < period.end and w.end > period.start for w in plan.windows)
    # splitting the period splits the excluded time exactly
    mid = period.start + period.duration / 2
    left = maintenance_spans(svc, Period(period.start, mid), BOGOTA)
    right = maintenance_spans(svc, Period(mid, period.end), BOGOTA)
    assert left.excluded + right.excluded == plan.excluded
