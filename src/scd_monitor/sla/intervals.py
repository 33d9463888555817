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

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from operator import attrgetter

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
_START = attrgetter("start")
_END = attrgetter("end")


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
        # A start that is the previous end itself (touching spans built from one
        # another) was checked as that end.
        if start is not previous_end and (
            start.tzinfo is not UTC or (previous_end is not None and start < previous_end)
        ):
            return False
        if end.tzinfo is not UTC or not start < end:
            return False
        previous_end = end
    return True


def clip_spans(spans: Iterable[Span], period: Period) -> list[Span]:
    """Normalized ``spans`` cut to ``period`` (spans outside it dropped)."""
    return _clip_normalized(normalize_spans(spans), to_utc(period.start), to_utc(period.end))


def _clip_normalized(spans: Sequence[Span], lo: datetime, hi: datetime) -> list[Span]:
    """A normalized span list cut to ``[lo, hi)`` (both UTC): the spans that meet it,
    the same objects except the first and last when they stick out, which are cut.

    In a normalized list both the starts and the ends increase, so the spans that meet
    ``[lo, hi)`` (end after ``lo``, start before ``hi``) are one slice, found by
    bisection: a short period of a long list costs O(log n) plus its spans.
    """
    if not lo < hi:
        return []
    first = bisect_right(spans, lo, key=_END)
    out = list(spans[first : bisect_left(spans, hi, lo=first, key=_START)])
    if out:
        head = out[0]
        if head.start < lo or head.end > hi:
            out[0] = Span(max(head.start, lo), min(head.end, hi), head.state, head.reason)
        tail = out[-1]
        if tail.end > hi:  # not the head (cut above): it starts after lo
            out[-1] = Span(tail.start, hi, tail.state, tail.reason)
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
    clipped = _clip_normalized(normalize_spans(spans), lo, hi)
    if clipped and clipped[0].start == lo and clipped[-1].end == hi and _contiguous(clipped):
        return clipped  # already covers the period: nothing to fill
    out: list[Span] = []
    cursor = lo
    for span in clipped:
        if span.start > cursor:
            out.append(Span(cursor, span.start, state, reason))
        out.append(span)
        cursor = span.end
    if cursor < hi:
        out.append(Span(cursor, hi, state, reason))
    return out


def _contiguous(spans: Sequence[Span]) -> bool:
    """Whether each span of a normalized list starts where the previous one ends."""
    return all(map(datetime.__eq__, map(_END, spans), map(_START, spans[1:])))


def merge_adjacent(spans: Iterable[Span]) -> list[Span]:
    """Normalized spans with touching spans of equal state and reason joined."""
    return _merge_normalized(normalize_spans(spans))


def _merge_normalized(spans: Sequence[Span]) -> list[Span]:
    """:func:`merge_adjacent` of a normalized list: each run of touching spans of equal
    state and reason becomes one span (a run of one is that span itself)."""
    out: list[Span] = []
    count = len(spans)
    i = 0
    while i < count:
        first = spans[i]
        end = first.end
        j = i + 1
        while j < count:
            span = spans[j]
            if span.start != end or span.state != first.state or span.reason != first.reason:
                break
            end = span.end
            j += 1
        out.append(first if j == i + 1 else Span(first.start, end, first.state, first.reason))
        i = j
    return out


def overlay(base: Iterable[Span], top: Iterable[Span]) -> list[Span]:
    """``base`` with ``top`` taking precedence wherever a ``top`` span covers.

    Both must be normalized span lists (overlaps inside either one are refused).
    """
    upper = normalize_spans(top)
    lower = normalize_spans(base)
    if not upper:
        return _merge_normalized(lower)
    # One pass over both sorted lists: each base span minus the union of the top spans
    # (``holes``, sorted and disjoint) is cut into the pieces outside every hole.
    holes = normalize((s.start, s.end) for s in upper)
    pieces: list[Span] = []
    j = 0
    for span in lower:
        cursor, end = span.start, span.end
        while j < len(holes) and holes[j][1] <= cursor:
            j += 1
        k = j
        while k < len(holes) and holes[k][0] < end:
            if holes[k][0] > cursor:
                pieces.append(Span(cursor, holes[k][0], span.state, span.reason))
            cursor = max(cursor, holes[k][1])
            if cursor >= end:
                break
            k += 1
        if cursor < end:
            pieces.append(
                span if cursor == span.start else Span(cursor, end, span.state, span.reason)
            )
    # No piece overlaps a top span, so the spans are distinct by start: sorting by start
    # sorts them as normalize_spans would.
    return _merge_normalized(sorted([*upper, *pieces], key=_START))


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
    if isinstance(spans, list | tuple) and _normalized(spans):
        # Sorted and disjoint already: only touching intervals are left to join.
        out: list[Interval] = []
        for span in spans:
            if span.state in wanted:
                if out and out[-1][1] == span.start:
                    out[-1] = (out[-1][0], span.end)
                else:
                    out.append((span.start, span.end))
        return out
    return normalize((s.start, s.end) for s in spans if s.state in wanted)


def duration_in(spans: Iterable[Span], *states: State) -> timedelta:
    """Total time in which ``spans`` hold one of ``states``."""
    if isinstance(spans, list | tuple) and _normalized(spans):
        # Disjoint spans: the measure of their union is the sum of their durations.
        wanted = set(states)
        return sum((s.end - s.start for s in spans if s.state in wanted), _ZERO)
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
    start = lo
    # At ``lo`` every list is placed; at each later cut, only those with a boundary there.
    cuts: list[tuple[datetime, Iterable[int]]] = [(lo, range(len(span_lists)))]
    cuts.extend(sorted(changes.items()))
    for number, (cut, moved) in enumerate(cuts):
        if number:
            yield start, cut, tuple(covering)
            start = cut
        for index in moved:
            spans = span_lists[index]
            i = cursors[index]
            while i < len(spans) and spans[i].end <= cut:
                i += 1
            cursors[index] = i
            covering[index] = spans[i] if i < len(spans) and spans[i].start <= cut else None
    yield start, hi, tuple(covering)
