"""The O(n) fast path of :func:`normalize_spans` (spans already normalized, as the store
and the state machines give them) returns exactly what the general path returns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scd_monitor.sla import intervals
from scd_monitor.sla.intervals import normalize_spans
from scd_monitor.sla.model import Span, State

T0 = datetime(2026, 10, 1, 5, tzinfo=UTC)


def slow(spans: list[Span]) -> list[Span]:
    """The general path, whatever the input."""
    saved = intervals._normalized
    try:
        intervals._normalized = lambda _spans: False  # type: ignore[assignment]
        return normalize_spans(spans)
    finally:
        intervals._normalized = saved


def span(a: int, b: int, state: State = State.UP, tz: object = UTC) -> Span:
    start = (T0 + timedelta(seconds=a)).astimezone(tz)  # type: ignore[arg-type]
    end = (T0 + timedelta(seconds=b)).astimezone(tz)  # type: ignore[arg-type]
    return Span(start, end, state)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 50),
            st.integers(-5, 20),
            st.sampled_from([State.UP, State.DOWN, State.UNKNOWN]),
            st.sampled_from([UTC, timezone(timedelta(hours=-5)), ZoneInfo("America/Bogota")]),
        ),
        max_size=8,
    )
)
def test_same_result_or_same_error_as_the_general_path(
    items: list[tuple[int, int, State, object]],
) -> None:
    spans = [span(a, a + d, state, tz) for a, d, state, tz in items]
    for candidate in (spans, sorted(spans, key=lambda s: s.start)):
        try:
            expected = slow(candidate)
        except ValueError as exc:
            with pytest.raises(ValueError, match="overlapping spans"):
                normalize_spans(candidate)
            assert "overlapping spans" in str(exc)
            continue
        got = normalize_spans(candidate)
        assert got == expected
        assert [s.start.tzinfo for s in got] == [s.start.tzinfo for s in expected]


def test_a_normalized_list_comes_back_as_a_new_list_of_the_same_spans() -> None:
    spans = [span(0, 10), span(10, 20, State.DOWN), span(25, 30)]
    got = normalize_spans(spans)
    assert got == spans and got is not spans
    assert all(a is b for a, b in zip(got, spans, strict=True))


@pytest.mark.parametrize(
    "spans",
    [
        [span(10, 20), span(0, 10)],  # unsorted
        [span(0, 10), span(5, 20)],  # overlapping
        [span(0, 10), span(10, 10)],  # empty
        [span(0, 10, tz=ZoneInfo("UTC"))],  # UTC, but not the ``UTC`` object
    ],
)
def test_anything_else_takes_the_general_path(spans: list[Span]) -> None:
    assert not intervals._normalized(spans)
