"""Half-open interval arithmetic on aware datetimes, and helpers on :class:`Span` lists.

An interval is a ``(start, end)`` pair meaning ``[start, end)``. Every function here
converts its datetimes to UTC first: two aware datetimes that share a ``tzinfo`` are
compared and subtracted on their *wall clocks* by Python, which is wrong across a DST
change ("convert to UTC before subtracting"). A naive datetime is a ``ValueError``.

Interval lists are *normalized* when sorted, non-empty, non-overlapping and not
touching (``[a, b)`` and ``[b, c)`` become ``[a, c)``); every function returns
normalized lists and accepts any list.

A span list is *normalized* when its spans are in UTC, sorted, non-empty and
non-overlapping (touching spans are allowed; :func:`merge_adjacent` joins equal
ones). Time that no span covers is UNKNOWN.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from scd_monitor.sla.model import Period, Span, State

__all__ = [
    "Interval",
    "clip",
    "clip_spans",
    "duration_in",
    "fill_gaps",
    "flatten",
    "intersect",
    "intervals_of",
    "merge_adjacent",
    "normalize",
    "normalize_spans",
    "overlay",
    "segments",
    "subtract",
    "to_utc",
    "total",
    "union",
]

Interval = tuple[datetime, datetime]
"""``[start, end)``."""

_ZERO = timedelta(0)


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is a ``ValueError``."""
    if value.tzinfo is UTC:  # already: the common case (the store gives UTC)
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: give a UTC offset")
    return value.astimezone(UTC)


def normalize(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, disjoint, non-touching intervals covering the same instants."""
    items = sorted((to_utc(s), to_utc(e)) for s, e in intervals)
    out: list[Interval] = []
    for start, end in items:
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def union(*groups: Iterable[Interval]) -> list[Interval]:
    """Every instant in any of ``groups``."""
    return normalize(item for group in groups for item in group)


def intersect(a: Iterable[Interval], b: Iterable[Interval]) -> list[Interval]:
    """Instants in both ``a`` and ``b``."""
    left, right = normalize(a), normalize(b)
    out: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if start < end:
            out.append((start, end))
        if left[i][1] <= right[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: Iterable[Interval], b: Iterable[Interval]) -> list[Interval]:
    """Instants in ``a`` and not in ``b``."""
    left, right = normalize(a), normalize(b)
    out: list[Interval] = []
    j = 0
    for start, end in left:
        cursor = start
        while j < len(right) and right[j][1] <= cursor:
            j += 1
        k = j
        while k < len(right) and right[k][0] < end:
            if right[k][0] > cursor:
                out.append((cursor, right[k][0]))
            cursor = max(cursor, right[k][1])
            if cursor >= end:
                break
            k += 1
        if cursor < end:
            out.append((cursor, end))
    return out


def total(intervals: Iterable[Interval]) -> timedelta:
    """The measure of the union of ``intervals`` (overlaps counted once)."""
    return sum((end - start for start, end in normalize(intervals)), _ZERO)


def clip(intervals: Iterable[Interval], period: Period) -> list[Interval]:
    """``intervals`` restricted to ``period``."""
    return intersect(intervals, [(period.start, period.end)])


# --- spans ----------------------------------------------------------------------------


def _utc_span(span: Span) -> Span:
    start, end = to_utc(span.start), to_utc(span.end)
    if start is span.start and end is span.end:
        return span
    return Span(start, end, span.state, span.reason)


def normalize_spans(spans: Iterable[Span]) -> list[Span]:
    """Spans in UTC, sorted, empty ones dropped; overlapping spans are a ``ValueError``.

    An overlap means two states claimed for the same instant: an upstream bug that no
    choice made here could explain, so it is refused rather than resolved.

    A list that is already normalized (what the store and the state machines give) is
    recognised in one O(n) pass and returned as a new list of the same span objects,
    which is exactly what the general path would build from it.
    """
    if isinstance(spans, list | tuple) and _normalized(spans):
        return list(spans)
    items = sorted(
        (_utc_span(s) for s in spans if to_utc(s.end) > to_utc(s.start)),
        key=lambda s: (s.start, s.end),
    )
    for before, after in pairwise(items):
        if after.start < before.end:
            raise ValueError(
                f"overlapping spans: {before.state} [{before.start.isoformat()}, "
                f"{before.end.isoformat()}) and {after.state} [{after.start.isoformat()}, "
                f"{after.end.isoformat()})"
            )
    return items


def _normalized(spans: Sequence[Span]) -> bool:
    """Whether ``spans`` is already what :func:`normalize_spans` makes of it: every
    datetime's ``tzinfo`` is ``UTC`` itself (so :func:`to_utc` returns it unchanged),
    every span is non-empty, and each starts at or after the previous one's end (so
    the list is strictly sorted by ``(start, end)`` and nothing overlaps)."""
    previous_end: datetime | None = None
    for span in spans:
        start, end = span.start, span.end
        if start.tzinfo is not UTC or end.tzinfo is not UTC or not start < end:
            return False
        if previous_end is not None and start < previous_end:
            return False
        previous_end = end
    return True


def clip_spans(spans: Iterable[Span], period: Period) -> list[Span]:
    """Normalized ``spans`` cut to ``period`` (spans outside it dropped)."""
    lo, hi = to_utc(period.start), to_utc(period.end)
    out: list[Span] = []
    for span in normalize_spans(spans):
        start, end = max(span.start, lo), min(span.end, hi)
        if start < end:
            out.append(
                span
                if (start, end) == (span.start, span.end)
                else Span(start, end, span.state, span.reason)
            )
    return out


def fill_gaps(
    spans: Iterable[Span],
    period: Period,
    *,
    state: State = State.UNKNOWN,
    reason: str | None = None,
) -> list[Span]:
    """``spans`` clipped to ``period``, with every uncovered stretch a ``state`` span.

    The result covers ``period`` exactly: its first span starts at ``period.start``
    and its last ends at ``period.end`` (an empty period gives ``[]``).
    """
    lo, hi = to_utc(period.start), to_utc(period.end)
    out: list[Span] = []
    cursor = lo
    for span in clip_spans(spans, period):
        if span.start > cursor:
            out.append(Span(cursor, span.start, state, reason))
        out.append(span)
        cursor = span.end
    if cursor < hi:
        out.append(Span(cursor, hi, state, reason))
    return out


def merge_adjacent(spans: Iterable[Span]) -> list[Span]:
    """Normalized spans with touching spans of equal state and reason joined."""
    out: list[Span] = []
    for span in normalize_spans(spans):
        last = out[-1] if out else None
        if (
            last is not None
            and last.end == span.start
            and last.state == span.state
            and last.reason == span.reason
        ):
            out[-1] = Span(last.start, span.end, last.state, last.reason)
        else:
            out.append(span)
    return out


def overlay(base: Iterable[Span], top: Iterable[Span]) -> list[Span]:
    """``base`` with ``top`` taking precedence wherever a ``top`` span covers.

    Both must be normalized span lists (overlaps inside either one are refused).
    """
    upper = normalize_spans(top)
    covered = [(s.start, s.end) for s in upper]
    out: list[Span] = list(upper)
    for span in normalize_spans(base):
        for start, end in subtract([(span.start, span.end)], covered):
            out.append(Span(start, end, span.state, span.reason))
    return merge_adjacent(out)


def flatten(spans: Iterable[Span], *, state: State, joiner: str = " + ") -> list[Span]:
    """Possibly overlapping spans made into a normalized list of ``state`` spans.

    Where several spans overlap, the piece's reason is their distinct reasons (in
    order of span start, then reason) joined with ``joiner``; ``None`` reasons are
    skipped, and a piece with none has reason ``None``.
    """
    items = sorted(
        (_utc_span(s) for s in spans if to_utc(s.end) > to_utc(s.start)),
        key=lambda s: (s.start, s.end, s.reason or ""),
    )
    cuts = sorted({t for s in items for t in (s.start, s.end)})
    out: list[Span] = []
    active: list[Span] = []
    nxt = 0
    for lo, hi in pairwise(cuts):
        while nxt < len(items) and items[nxt].start <= lo:
            active.append(items[nxt])
            nxt += 1
        active = [s for s in active if s.end > lo]
        if not active:
            continue
        reasons: list[str] = []
        for span in active:
            if span.reason is not None and span.reason not in reasons:
                reasons.append(span.reason)
        out.append(Span(lo, hi, state, joiner.join(reasons) if reasons else None))
    return merge_adjacent(out)


def intervals_of(spans: Iterable[Span], *states: State) -> list[Interval]:
    """The normalized intervals where ``spans`` hold one of ``states``."""
    wanted = set(states)
    return normalize((s.start, s.end) for s in spans if s.state in wanted)


def duration_in(spans: Iterable[Span], *states: State) -> timedelta:
    """Total time in which ``spans`` hold one of ``states``."""
    return total(intervals_of(spans, *states))


def segments(
    period: Period, span_lists: Sequence[Sequence[Span]]
) -> Iterator[tuple[datetime, datetime, tuple[Span | None, ...]]]:
    """Elementary segments of ``period``: between consecutive boundaries of any span.

    Yields ``(start, end, covering)`` where ``covering[i]`` is the span of
    ``span_lists[i]`` covering the whole segment, or ``None``. Within a segment no
    list changes state, so evaluating once per segment is exact (no sampling). Each
    list must be normalized (see :func:`normalize_spans`).
    """
    lo, hi = to_utc(period.start), to_utc(period.end)
    if hi <= lo:
        return
    # Which lists have a boundary at each cut: only those can change there (between two
    # consecutive cuts no list has a boundary, so its covering span, or gap, goes on).
    changes: dict[datetime, set[int]] = {}
    for index, spans in enumerate(span_lists):
        for span in spans:
            if lo < span.start < hi:
                changes.setdefault(span.start, set()).add(index)
            if lo < span.end < hi:
                changes.setdefault(span.end, set()).add(index)
    cursors = [0] * len(span_lists)
    covering: list[Span | None] = [None] * len(span_lists)

    def advance(index: int, at: datetime) -> None:
        spans = span_lists[index]
        i = cursors[index]
        while i < len(spans) and spans[i].end <= at:
            i += 1
        cursors[index] = i
        covering[index] = spans[i] if i < len(spans) and spans[i].start <= at else None

    for index in range(len(span_lists)):
        advance(index, lo)
    start = lo
    for cut in sorted(changes):
        yield start, cut, tuple(covering)
        for index in changes[cut]:
            advance(index, cut)
        start = cut
    yield start, hi, tuple(covering)
