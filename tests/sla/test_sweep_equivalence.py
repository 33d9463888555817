"""The sweep-line mass-failure and network-path rules equal the per-segment ones (issue 14).

``mass_failure_spans`` and ``network_path_fault_spans`` used to evaluate every
elementary segment against the covering span of every check (quadratic in the
catalog); they now sweep state-change events. The old implementations are kept here,
verbatim, as the reference: on random timelines and thresholds the new functions must
return exactly what they return (or fail the same way).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scd_monitor.sla.intervals import (
    Interval,
    normalize,
    normalize_spans,
    segments,
    to_utc,
    union,
)
from scd_monitor.sla.model import Period, Span, State
from scd_monitor.sla.timeline import (
    MONITOR_FAULT,
    CheckTimeline,
    is_mass_failure,
    mass_failure_spans,
    network_path_fault_spans,
    vantage_blind,
)

T0 = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)
U, D, G, M, X = State.UP, State.DOWN, State.DEGRADED, State.MAINTENANCE, State.UNKNOWN
BOGOTA = timezone(timedelta(hours=-5))
KOLKATA = timezone(timedelta(hours=5, minutes=30))


# --- the reference: the implementations before issue 14, verbatim ----------------------


def _old_one_vantage(timelines: Sequence[CheckTimeline]) -> None:
    found = {t.vantage for t in timelines}
    if len(found) > 1:
        raise ValueError(f"timelines of one vantage expected, got {sorted(found)}")


def _old_extent(timelines: Sequence[CheckTimeline]) -> Period | None:
    spans = [s for t in timelines for s in normalize_spans(t.spans)]
    if not spans:
        return None
    return Period(min(s.start for s in spans), max(s.end for s in spans))


def _old_fault_spans(intervals: Sequence[Interval]) -> list[Span]:
    return [Span(s, e, State.UNKNOWN, MONITOR_FAULT) for s, e in intervals]


def old_mass_failure_spans(
    checks_of_one_vantage: Sequence[CheckTimeline],
    *,
    min_ratio: float = 0.5,
    min_providers: int = 3,
) -> list[Span]:
    _old_one_vantage(checks_of_one_vantage)
    if min_providers < 1:
        raise ValueError("min_providers must be at least 1")
    ratio = Fraction(str(min_ratio))
    if not 0 <= ratio <= 1:
        raise ValueError("min_ratio must be within [0, 1]")
    extent = _old_extent(checks_of_one_vantage)
    if extent is None:
        return []
    lists = [normalize_spans(t.spans) for t in checks_of_one_vantage]
    providers = [t.provider for t in checks_of_one_vantage]
    hits: list[Interval] = []
    for start, end, covering in segments(extent, lists):
        fresh: set[str] = set()
        failing: set[str] = set()
        for provider, span in zip(providers, covering, strict=True):
            if span is None or span.state is State.UNKNOWN:
                continue
            fresh.add(provider)
            if span.state is State.DOWN:
                failing.add(provider)
        if is_mass_failure(len(failing), len(fresh), min_ratio=ratio, min_providers=min_providers):
            hits.append((start, end))
    return _old_fault_spans(normalize(hits))


def old_network_path_fault_spans(
    checks_of_one_vantage: Sequence[CheckTimeline],
    *,
    min_hosts: int = 2,
    error_kinds: Collection[str] = ("dns", "connect"),
    settle: timedelta = timedelta(0),
) -> list[Span]:
    _old_one_vantage(checks_of_one_vantage)
    if min_hosts < 1:
        raise ValueError("min_hosts must be at least 1")
    if settle < timedelta(0):
        raise ValueError("settle must not be negative")
    extent = _old_extent(checks_of_one_vantage)
    if extent is None:
        return []
    lists = [normalize_spans(t.spans) for t in checks_of_one_vantage]
    hosts = [t.host if t.host is not None else t.check_id for t in checks_of_one_vantage]
    kinds = frozenset(error_kinds)
    hits: list[Interval] = []
    for start, end, covering in segments(extent, lists):
        views = [
            (host, span.state, span.reason)
            for host, span in zip(hosts, covering, strict=True)
            if span is not None
        ]
        if vantage_blind(views, min_hosts=min_hosts, error_kinds=kinds):
            hits.append((start, end))
    lo, hi = to_utc(extent.start), to_utc(extent.end)
    widened = [(max(lo, s - settle), min(hi, e + settle)) for s, e in normalize(hits)]
    return _old_fault_spans(union(widened))


# --- helpers ----------------------------------------------------------------------------


def t(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def sp(lo: int, hi: int, state: State, reason: str | None = None) -> Span:
    return Span(t(lo), t(hi), state, reason)


def check(
    check_id: str, provider: str, *spans: Span, host: str | None = None, vantage: str = "v1"
) -> CheckTimeline:
    return CheckTimeline(check_id, provider, vantage, True, list(spans), host=host)


def exact(spans: Sequence[Span]) -> list[tuple[str, str, State, str | None]]:
    """Spans with their datetimes as ISO strings: equal instants in another zone differ."""
    return [(s.start.isoformat(), s.end.isoformat(), s.state, s.reason) for s in spans]


def outcome(function, *args, **kwargs):  # type: ignore[no-untyped-def]
    """The result, or the exception's type and message."""
    try:
        return exact(function(*args, **kwargs))
    except ValueError as error:
        return ("raised", type(error), str(error))


def assert_same_mass(checks: Sequence[CheckTimeline], **kwargs: object) -> list[Span]:
    new = mass_failure_spans(checks, **kwargs)  # type: ignore[arg-type]
    old = old_mass_failure_spans(checks, **kwargs)  # type: ignore[arg-type]
    assert new == old
    assert exact(new) == exact(old)
    return new


def assert_same_path(checks: Sequence[CheckTimeline], **kwargs: object) -> list[Span]:
    new = network_path_fault_spans(checks, **kwargs)  # type: ignore[arg-type]
    old = old_network_path_fault_spans(checks, **kwargs)  # type: ignore[arg-type]
    assert new == old
    assert exact(new) == exact(old)
    return new


# --- random timelines -----------------------------------------------------------------

# DOWN drawn more often, and mostly for an unreachable kind, so that both rules fire often
STATES = [U, D, D, D, G, M, X]
REASONS = ["dns", "connect", "dns", "connect", "timeout", "status", "tls", None]
# hosts include None (the check counts as its own host) and a check id ("c0") that
# collides with the host of another check
HOSTS = ["h1", "h2", "h3", "c0", None]

piece = st.tuples(
    st.integers(0, 40),  # start minute: a small range so instants collide often
    st.integers(-1, 12),  # length: 0 and -1 make empty spans (dropped by normalize_spans)
    st.sampled_from(STATES),
    st.sampled_from(REASONS),
    st.sampled_from([UTC, BOGOTA, KOLKATA]),  # equal instants written in other zones
)


@st.composite
def timelines(draw: st.DrawFn, *, overlapping: bool = False) -> list[CheckTimeline]:
    n_providers = draw(st.integers(1, 5))
    out: list[CheckTimeline] = []
    n = 0
    for p in range(n_providers):
        for _ in range(draw(st.integers(1, 4))):
            pieces = draw(st.lists(piece, max_size=6))
            spans: list[Span] = []
            cursor = 0
            for lo, length, state, reason, zone in sorted(pieces, key=lambda x: x[:2]):
                if not overlapping:
                    # touching (lo == cursor) and gaps are both common
                    lo = max(lo, cursor) if length > 0 else lo
                hi = lo + length
                spans.append(Span(t(lo).astimezone(zone), t(hi).astimezone(zone), state, reason))
                if length > 0:
                    cursor = max(cursor, hi)
            spans = draw(st.permutations(spans))  # input order is not sorted
            host = draw(st.sampled_from(HOSTS))
            out.append(CheckTimeline(f"c{n}", f"p{p}", "v1", draw(st.booleans()), spans, host))
            n += 1
    return out


ratios = st.one_of(
    st.sampled_from([0, 0.0, 0.25, 1 / 3, 0.5, 0.6, 2 / 3, 0.75, 1, 1.0]),
    st.floats(0, 1, allow_nan=False),
)
kinds = st.one_of(
    st.just(("dns", "connect")),
    st.lists(st.sampled_from(["dns", "connect", "timeout", "status", "tls"]), unique=True),
)
settles = st.one_of(
    st.integers(0, 12).map(lambda m: timedelta(minutes=m)),
    st.integers(0, 900).map(lambda s: timedelta(seconds=s)),
)


@settings(max_examples=400, deadline=None)
@given(timelines(), ratios, st.integers(1, 5))
def test_mass_failure_sweep_equals_per_segment(
    checks: list[CheckTimeline], ratio: float, min_providers: int
) -> None:
    assert_same_mass(checks, min_ratio=ratio, min_providers=min_providers)


@settings(max_examples=400, deadline=None)
@given(timelines(), st.integers(1, 4), kinds, settles)
def test_network_path_sweep_equals_per_segment(
    checks: list[CheckTimeline], min_hosts: int, error_kinds: list[str], settle: timedelta
) -> None:
    assert_same_path(checks, min_hosts=min_hosts, error_kinds=error_kinds, settle=settle)


@settings(max_examples=150, deadline=None)
@given(timelines(overlapping=True), ratios, st.integers(1, 4), kinds, settles)
def test_sweeps_fail_like_the_reference(
    checks: list[CheckTimeline],
    ratio: float,
    min_count: int,
    error_kinds: list[str],
    settle: timedelta,
) -> None:
    """Timelines that may overlap: the same result, or the same ``ValueError``."""
    assert outcome(mass_failure_spans, checks, min_ratio=ratio, min_providers=min_count) == outcome(
        old_mass_failure_spans, checks, min_ratio=ratio, min_providers=min_count
    )
    path = {"min_hosts": min_count, "error_kinds": error_kinds, "settle": settle}
    assert outcome(network_path_fault_spans, checks, **path) == outcome(
        old_network_path_fault_spans, checks, **path
    )


@settings(max_examples=60, deadline=None)
@given(
    timelines(),
    st.sampled_from([-1.0, 1.5, 0.5]),
    st.integers(-1, 2),
    st.integers(-60, 60).map(lambda s: timedelta(seconds=s)),
    st.booleans(),
)
def test_sweeps_validate_like_the_reference(
    checks: list[CheckTimeline],
    ratio: float,
    minimum: int,
    settle: timedelta,
    two_vantages: bool,
) -> None:
    if two_vantages:
        checks = [*checks, check("other", "p0", vantage="v2")]
    assert outcome(mass_failure_spans, checks, min_ratio=ratio, min_providers=minimum) == (
        outcome(old_mass_failure_spans, checks, min_ratio=ratio, min_providers=minimum)
    )
    assert outcome(network_path_fault_spans, checks, min_hosts=minimum, settle=settle) == (
        outcome(old_network_path_fault_spans, checks, min_hosts=minimum, settle=settle)
    )


# --- hand-written cases -----------------------------------------------------------------


def test_a_provider_stays_failing_when_one_check_takes_over_from_another() -> None:
    # p0's check a is DOWN [0,10), its check b DOWN [10,20): p0 fails without a break at
    # 10 (one event ends, another starts at the same instant).
    checks = [
        check("a", "p0", sp(0, 10, D, "dns"), sp(10, 30, U)),
        check("b", "p0", sp(0, 10, U), sp(10, 20, D), sp(20, 30, U)),
        check("c", "p1", sp(0, 20, D), sp(20, 30, U)),
        check("d", "p2", sp(0, 30, U)),
    ]
    faults = assert_same_mass(checks, min_ratio=0.5, min_providers=2)
    assert [(f.start, f.end) for f in faults] == [(t(0), t(20))]
    assert all(f.state is X and f.reason == MONITOR_FAULT for f in faults)
    # 2 of 3 providers is not ≥ 0.7
    assert assert_same_mass(checks, min_ratio=0.7, min_providers=2) == []


def test_unknown_is_not_fresh_and_gaps_are_no_data() -> None:
    # p2 is UNKNOWN on [0,10) and has no span on [10,20): only p0 and p1 are fresh there.
    checks = [
        check("a", "p0", sp(0, 30, D)),
        check("b", "p1", sp(0, 30, D)),
        check("c", "p2", sp(0, 10, X), sp(20, 30, U)),
        check("d", "p2", sp(25, 30, X)),
    ]
    faults = assert_same_mass(checks, min_ratio=1, min_providers=2)
    assert [(f.start, f.end) for f in faults] == [(t(0), t(20))]
    # ratio 0: only the count matters
    assert [(f.start, f.end) for f in assert_same_mass(checks, min_ratio=0, min_providers=2)] == [
        (t(0), t(30))
    ]


def test_empty_unknown_only_and_zero_length_inputs() -> None:
    assert assert_same_mass([]) == []
    assert assert_same_path([]) == []
    unknown = [check("a", "p0", sp(0, 10, X)), check("b", "p1", sp(5, 15, X), host="h")]
    assert assert_same_mass(unknown, min_providers=1) == []
    assert assert_same_path(unknown, min_hosts=1) == []
    empty = [check("a", "p0", sp(5, 5, D, "dns")), check("b", "p1", sp(7, 7, D, "dns"))]
    assert assert_same_mass(empty, min_providers=1) == []
    assert assert_same_path(empty, min_hosts=1) == []


def test_network_path_counts_hosts_not_checks_and_ignores_maintenance() -> None:
    # a and b share host h1; c has no host (counts as host "c"); m in MAINTENANCE.
    checks = [
        check("a", "p0", sp(0, 10, U), sp(10, 40, D, "dns"), host="h1"),
        check("b", "p1", sp(0, 12, U), sp(12, 40, D, "connect"), host="h1"),
        check("c", "p1", sp(0, 20, U), sp(20, 30, D, "connect"), sp(30, 40, D, "timeout")),
        check("m", "p2", sp(0, 40, M, "window")),
    ]
    faults = assert_same_path(checks)
    assert [(f.start, f.end) for f in faults] == [(t(20), t(30))]
    # the settle widens both ends, clipped to the data's extent [0, 40)
    faults = assert_same_path(checks, settle=timedelta(minutes=25))
    assert [(f.start, f.end) for f in faults] == [(t(0), t(40))]
    # one host is enough with min_hosts=1: from 20 (c stops answering), and on [30, 40)
    # c's timeout is DOWN for another reason, which does not unblind
    faults = assert_same_path(checks, min_hosts=1)
    assert [(f.start, f.end) for f in faults] == [(t(20), t(40))]
    # a check answering, UP or DEGRADED, anywhere blinds nothing
    assert assert_same_path([*checks, check("u", "p3", sp(0, 40, U))], min_hosts=1) == []
    assert assert_same_path([*checks, check("g", "p3", sp(0, 40, G, "slow"))], min_hosts=1) == []


def test_a_down_check_with_another_reason_still_counts_as_down() -> None:
    # Only timeouts and an UNKNOWN: DOWN, but no unreachable host.
    checks = [
        check("a", "p0", sp(0, 10, D, "timeout"), host="h1"),
        check("b", "p1", sp(0, 10, X), host="h2"),
    ]
    assert assert_same_path(checks, min_hosts=1) == []
    # timeout counted as an unreachable kind: blind on [0, 10)
    faults = assert_same_path(checks, min_hosts=1, error_kinds=("timeout",))
    assert [(f.start, f.end) for f in faults] == [(t(0), t(10))]


def test_overlapping_spans_are_refused_by_both() -> None:
    checks = [check("a", "p0", sp(0, 10, D), sp(5, 15, U))]
    with pytest.raises(ValueError, match="overlapping spans"):
        mass_failure_spans(checks)
    with pytest.raises(ValueError, match="overlapping spans"):
        network_path_fault_spans(checks)
