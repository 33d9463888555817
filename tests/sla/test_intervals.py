"""Interval arithmetic and span helpers, against a model: sets of whole minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scd_monitor.sla.intervals import (
    Interval,
    clip,
    clip_spans,
    duration_in,
    fill_gaps,
    flatten,
    intersect,
    intervals_of,
    merge_adjacent,
    normalize,
    normalize_spans,
    overlay,
    segments,
    subtract,
    to_utc,
    total,
    union,
)
from scd_monitor.sla.model import Period, Span, State

T0 = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)
MADRID = ZoneInfo("Europe/Madrid")
BOGOTA = ZoneInfo("America/Bogota")


def t(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def minutes(intervals: list[Interval]) -> set[int]:
    out: set[int] = set()
    for start, end in intervals:
        out.update(range((start - T0) // timedelta(minutes=1), (end - T0) // timedelta(minutes=1)))
    return out


intervals_st = st.lists(
    st.tuples(st.integers(0, 120), st.integers(0, 120)).map(lambda p: (t(p[0]), t(p[1]))),
    max_size=8,
)
STATES = list(State)


@st.composite
def span_lists(draw: st.DrawFn, horizon: int = 120) -> list[Span]:
    """Sorted, non-overlapping spans on whole minutes within [0, horizon)."""
    cuts = sorted(draw(st.sets(st.integers(0, horizon), max_size=10)))
    spans = []
    for lo, hi in pairwise(cuts):
        if draw(st.booleans()):
            state = draw(st.sampled_from(STATES))
            reason = draw(st.sampled_from([None, "a", "b"]))
            spans.append(Span(t(lo), t(hi), state, reason))
    return spans


def state_at(spans: list[Span], minute: int) -> tuple[State, str | None] | None:
    for span in spans:
        if span.start <= t(minute) < span.end:
            return span.state, span.reason
    return None


def is_normalized(intervals: list[Interval]) -> bool:
    return all(s < e for s, e in intervals) and all(a[1] < b[0] for a, b in pairwise(intervals))


@given(intervals_st)
def test_normalize_keeps_the_instants_and_is_canonical(items: list[Interval]) -> None:
    out = normalize(items)
    assert minutes(out) == minutes(items)
    assert is_normalized(out)
    assert normalize(out) == out  # idempotent


@given(intervals_st, intervals_st)
def test_set_operations_match_the_model(a: list[Interval], b: list[Interval]) -> None:
    assert minutes(union(a, b)) == minutes(a) | minutes(b)
    assert minutes(intersect(a, b)) == minutes(a) & minutes(b)
    assert minutes(subtract(a, b)) == minutes(a) - minutes(b)
    for result in (union(a, b), intersect(a, b), subtract(a, b)):
        assert is_normalized(result)
    assert total(a) == timedelta(minutes=len(minutes(a)))


@given(intervals_st, st.integers(0, 120), st.integers(0, 120))
def test_clip(items: list[Interval], lo: int, hi: int) -> None:
    lo, hi = min(lo, hi), max(lo, hi)
    assert minutes(clip(items, Period(t(lo), t(hi)))) == minutes(items) & set(range(lo, hi))


def test_hand_examples() -> None:
    # [0,10) ∪ [10,20) touch: one interval; [30,40) - [32,35) = [30,32) ∪ [35,40).
    assert normalize([(t(10), t(20)), (t(0), t(10))]) == [(t(0), t(20))]
    assert subtract([(t(30), t(40))], [(t(32), t(35))]) == [(t(30), t(32)), (t(35), t(40))]
    assert intersect([(t(0), t(10))], [(t(10), t(20))]) == []  # half-open: no instant shared
    assert total([(t(0), t(10)), (t(5), t(15))]) == timedelta(minutes=15)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        normalize([(datetime(2026, 1, 1), datetime(2026, 1, 2))])


def test_durations_are_taken_in_utc_across_a_dst_change() -> None:
    # Madrid springs forward 2026-03-29 02:00 CET → 03:00 CEST. Local 01:00 to local
    # 04:00 is 2 h of real time (00:00Z → 02:00Z), though the wall clock says 3 h.
    start = datetime(2026, 3, 29, 1, 0, tzinfo=MADRID)
    end = datetime(2026, 3, 29, 4, 0, tzinfo=MADRID)
    assert end - start == timedelta(hours=3)  # Python's same-tzinfo (wall clock) answer
    assert total([(start, end)]) == timedelta(hours=2)
    assert normalize([(start, end)]) == [
        (datetime(2026, 3, 29, 0, 0, tzinfo=UTC), datetime(2026, 3, 29, 2, 0, tzinfo=UTC))
    ]
    # Mixed zones compare as instants: 00:00-05:00 Bogotá is 05:00Z.
    assert to_utc(datetime(2026, 11, 1, 0, 0, tzinfo=BOGOTA)) == T0


def test_overlapping_spans_are_refused() -> None:
    with pytest.raises(ValueError, match="overlapping"):
        normalize_spans([Span(t(0), t(10), State.UP), Span(t(5), t(15), State.DOWN)])
    # touching is fine, empty spans are dropped
    spans = normalize_spans(
        [Span(t(10), t(20), State.DOWN), Span(t(0), t(10), State.UP), Span(t(3), t(3), State.UP)]
    )
    assert [s.state for s in spans] == [State.UP, State.DOWN]


@given(span_lists(), st.integers(0, 120), st.integers(0, 120))
def test_fill_gaps_covers_the_period_exactly(spans: list[Span], lo: int, hi: int) -> None:
    lo, hi = min(lo, hi), max(lo, hi)
    period = Period(t(lo), t(hi))
    filled = fill_gaps(spans, period)
    assert sum((s.duration for s in filled), timedelta(0)) == period.duration
    if filled:
        assert filled[0].start == period.start and filled[-1].end == period.end
    for a, b in pairwise(filled):
        assert a.end == b.start
    for minute in range(lo, hi):
        expected = state_at(spans, minute) or (State.UNKNOWN, None)
        assert state_at(filled, minute) == expected
    assert clip_spans(spans, period) == [s for s in filled if state_at(spans, _m(s.start))]


def _m(instant: datetime) -> int:
    return (instant - T0) // timedelta(minutes=1)


@given(span_lists())
def test_merge_adjacent_keeps_states_and_joins_equal_neighbours(spans: list[Span]) -> None:
    merged = merge_adjacent(spans)
    for minute in range(120):
        assert state_at(merged, minute) == state_at(spans, minute)
    for a, b in pairwise(merged):
        assert not (a.end == b.start and (a.state, a.reason) == (b.state, b.reason))


@given(span_lists(), span_lists())
def test_overlay_gives_the_top_precedence(base: list[Span], top: list[Span]) -> None:
    result = overlay(base, top)
    normalize_spans(result)  # no overlaps
    for minute in range(120):
        assert state_at(result, minute) == (state_at(top, minute) or state_at(base, minute))


def test_flatten_joins_overlapping_reasons() -> None:
    windows = [
        Span(t(0), t(60), State.MAINTENANCE, "backup"),
        Span(t(30), t(90), State.MAINTENANCE, "upgrade"),
        Span(t(100), t(110), State.MAINTENANCE, None),
    ]
    assert flatten(windows, state=State.MAINTENANCE) == [
        Span(t(0), t(30), State.MAINTENANCE, "backup"),
        Span(t(30), t(60), State.MAINTENANCE, "backup + upgrade"),
        Span(t(60), t(90), State.MAINTENANCE, "upgrade"),
        Span(t(100), t(110), State.MAINTENANCE, None),
    ]


@given(st.lists(st.tuples(st.integers(0, 100), st.integers(1, 30)), max_size=6))
def test_flatten_covers_the_union(items: list[tuple[int, int]]) -> None:
    spans = [Span(t(a), t(a + n), State.UNKNOWN, "x") for a, n in items]
    flat = flatten(spans, state=State.UNKNOWN)
    assert minutes([(s.start, s.end) for s in flat]) == minutes([(s.start, s.end) for s in spans])
    assert normalize_spans(flat) == flat


@given(span_lists(), span_lists())
def test_segments_are_elementary_and_exact(a: list[Span], b: list[Span]) -> None:
    period = Period(t(0), t(120))
    pieces = list(segments(period, [a, b]))
    assert pieces[0][0] == period.start and pieces[-1][1] == period.end
    for (_, end, _), (start, _, _) in pairwise(pieces):
        assert end == start
    for start, end, (sa, sb) in pieces:
        for minute in range(_m(start), _m(end)):
            assert (state_at(a, minute) is None) == (sa is None)
            assert (state_at(b, minute) is None) == (sb is None)
            if sa is not None:
                assert state_at(a, minute) == (sa.state, sa.reason)


def _segments_by_brute_force(
    period: Period, span_lists: list[list[Span]]
) -> list[tuple[datetime, datetime, tuple[Span | None, ...]]]:
    """Every boundary inside the period cuts; each segment looks every list up again."""
    lo, hi = period.start, period.end
    cuts = sorted(
        {lo, hi}
        | {x for spans in span_lists for s in spans for x in (s.start, s.end) if lo < x < hi}
    )
    return [
        (
            start,
            end,
            tuple(
                next((s for s in spans if s.start <= start < s.end), None) for spans in span_lists
            ),
        )
        for start, end in pairwise(cuts)
    ]


@given(st.lists(span_lists(), max_size=6), st.integers(0, 60), st.integers(1, 80))
def test_segments_equal_a_lookup_at_every_boundary(
    lists: list[list[Span]], first: int, length: int
) -> None:
    # Periods that cut spans at both ends, lists of any number, several lists with a
    # boundary at the same instant.
    period = Period(t(first), t(first + length))
    assert list(segments(period, lists)) == _segments_by_brute_force(period, lists)


@given(span_lists())
def test_duration_in_counts_each_state(spans: list[Span]) -> None:
    for state in State:
        expected = sum(1 for m in range(120) if (state_at(spans, m) or (None,))[0] is state)
        assert duration_in(spans, state) == timedelta(minutes=expected)
        assert total(intervals_of(spans, state)) == timedelta(minutes=expected)
