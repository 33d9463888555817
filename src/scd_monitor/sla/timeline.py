"""A service's state over a period, from its checks' timelines seen from several vantages.

Everything is decided per *elementary segment*: the stretches between consecutive
boundaries of any input span (check spans, maintenance windows, monitor faults).
Inside a segment no input changes, so one evaluation per segment is exact.

**One vantage.** With ``n`` critical checks, let ``d``, ``m`` and ``u`` count the
critical checks that are DOWN, MAINTENANCE and UNKNOWN (no span = UNKNOWN), and ``k``
the number of critical checks the rule needs down: ``any`` → 1, ``all`` → ``n``,
``quorum: N`` → ``N``. The vantage's view is, first match wins:

1. every check of the service (critical or not) UNKNOWN → UNKNOWN;
2. ``d ≥ k`` → DOWN;
3. ``d + u ≥ k`` → UNKNOWN: the unknown checks could make it DOWN;
4. ``d + m ≥ k`` → MAINTENANCE: the down condition holds only thanks to checks
   observed in maintenance;
5. ``d + m + u ≥ k`` → UNKNOWN: DOWN is excluded, but whether the condition holds
   (MAINTENANCE) or not (UP) depends on unknown checks. The issue is silent on this
   case (it needs a rule other than ``any``); UNKNOWN is the answer that does not guess;
6. DEGRADED if any check is DEGRADED or any non-critical check is DOWN;
7. UP.

With no critical check at all (and an ``any`` or ``all`` rule), steps 2 to 5 never
apply. A check that a vantage has no timeline for, but another vantage has (or that
``expected_checks`` names), is UNKNOWN at that vantage.

**Across vantages.** A vantage is *fresh* where its view is not UNKNOWN. With ``f``
fresh vantages and ``required = min(vantage_quorum, f)``: no fresh vantage → UNKNOWN;
at least ``required`` fresh vantages DOWN → DOWN; else MAINTENANCE if a fresh vantage
says so, else DEGRADED if one says so, else UP.

**Raw and effective.** ``raw`` is that result from the data alone. ``effective`` is
what is charged: first each vantage's view is UNKNOWN (reason ``monitor_fault``)
inside that vantage's monitor faults, then the vantages are combined, then the
allowed maintenance windows are laid over the result as MAINTENANCE (reason = the
window's reason), so an outage that outlasts its window is charged from the window's
end. Note that because ``required`` shrinks with the number of fresh vantages, a
monitor fault on a vantage that saw the service up can make a DOWN seen by the other
vantages reach the (smaller) quorum: faults never add DOWN time with
``vantage_quorum == 1``, but can with a larger quorum. That is the definition
("a quorum of vantages *with fresh data*"), kept on purpose.

Reasons: a DOWN, DEGRADED or MAINTENANCE service span's reason lists the checks
responsible as ``check_id`` or ``check_id: check reason``, sorted, joined with ``, ``;
for maintenance observed on checks it is prefixed ``observed: `` (an allowed window's
span has the window's reason instead).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from operator import itemgetter

from scd_monitor.catalog.models import QuorumRule, ServiceRule
from scd_monitor.sla.intervals import (
    Interval,
    clip_spans,
    flatten,
    normalize,
    normalize_spans,
    overlay,
    subtract,
    to_utc,
    union,
)
from scd_monitor.sla.model import Period, Span, State

__all__ = [
    "MONITOR_FAULT",
    "CheckTimeline",
    "ServiceTimeline",
    "canary_fault_spans",
    "is_mass_failure",
    "mass_failure_spans",
    "monitor_fault_spans",
    "network_path_fault_spans",
    "service_timeline",
    "vantage_blind",
]

MONITOR_FAULT = "monitor_fault"
"""The reason of every UNKNOWN span caused by the monitor rather than the provider."""

# ``State.DOWN`` is a lookup through the enum's class (~0.1 µs): the per-span and
# per-check loops below compare with these instead.
_UP, _DOWN, _DEGRADED = State.UP, State.DOWN, State.DEGRADED
_MAINTENANCE, _UNKNOWN = State.MAINTENANCE, State.UNKNOWN

_View = tuple[State, frozenset[str]]
_Cell = tuple[State, str | None]
"""What a check's span tells :func:`_vantage_view`: its state and reason."""
_UNKNOWN_VIEW: _View = (State.UNKNOWN, frozenset())
_FAULT_VIEW: _View = (State.UNKNOWN, frozenset({MONITOR_FAULT}))

_Run = tuple[datetime, datetime, int]
"""``(start, end, code)``: a stretch of one check's timeline with one contribution."""
_Event = tuple[datetime, int, int]
"""``(instant, delta, code)``: a contribution ``code`` starts (+1) or stops (-1)."""


@dataclass(frozen=True, slots=True)
class CheckTimeline:
    """One check's timeline as seen from one vantage."""

    check_id: str
    provider: str
    vantage: str
    critical: bool
    spans: Sequence[Span]
    """Sorted, non-overlapping; uncovered time is UNKNOWN."""
    host: str | None = None
    """The destination host the check connects to (the network self-check counts
    distinct hosts); ``None`` counts the check as a host of its own."""


@dataclass(frozen=True, slots=True)
class ServiceTimeline:
    """A service's state over ``period``; both lists cover the period exactly."""

    period: Period
    raw: list[Span]
    """From the check data alone: no maintenance windows, no monitor faults."""
    effective: list[Span]
    """What is charged: monitor faults and allowed maintenance windows applied."""
    vantages: dict[str, list[Span]]
    """Each vantage's view with its monitor faults applied (before the windows)."""


def service_timeline(
    checks: Sequence[CheckTimeline],
    *,
    rule: ServiceRule,
    vantage_quorum: int,
    period: Period,
    maintenance: Sequence[Span],
    monitor_faults: Mapping[str, Sequence[Span]],
    expected_checks: Mapping[str, bool] | None = None,
) -> ServiceTimeline:
    """Combine the checks of one service into its raw and effective timelines.

    ``checks`` holds one :class:`CheckTimeline` per (check, vantage); ``maintenance``
    the allowed windows (any state; possibly overlapping); ``monitor_faults`` per
    vantage the spans where that vantage's data is not to be trusted. See the module
    docstring for the exact rules.

    ``expected_checks`` (check id → critical), normally the service's enabled checks
    from the catalog, makes a check with no timeline at all count as UNKNOWN at every
    vantage; a timeline of a check not in it is a ``ValueError``. Without it the
    service's checks are those that have a timeline, and a ``quorum`` rule larger than
    their critical count counts the missing ones as UNKNOWN critical checks.
    """
    if vantage_quorum < 1:
        raise ValueError("vantage_quorum must be at least 1")
    span_period = Period(to_utc(period.start), to_utc(period.end))

    critical: dict[str, bool] = dict(expected_checks or {})
    for check in checks:
        if expected_checks is not None and check.check_id not in expected_checks:
            raise ValueError(f"check {check.check_id!r} is not one of the expected checks")
        if critical.setdefault(check.check_id, check.critical) != check.critical:
            raise ValueError(f"check {check.check_id!r} is critical at one vantage only")
    check_ids = sorted(critical)
    n_critical = sum(1 for c in check_ids if critical[c])
    needed, missing = _needed(rule, n_critical, strict=expected_checks is not None)

    per_vantage: dict[str, dict[str, list[Span]]] = {}
    for check in checks:
        row = per_vantage.setdefault(check.vantage, {})
        if check.check_id in row:
            raise ValueError(f"two timelines for check {check.check_id!r} at {check.vantage!r}")
        row[check.check_id] = clip_spans(check.spans, span_period)
    vantages = sorted(per_vantage)

    lists: list[list[Span]] = []
    for vantage in vantages:
        lists.extend(per_vantage[vantage].get(c, []) for c in check_ids)
    faults = [
        clip_spans(flatten(monitor_faults.get(v, ()), state=State.UNKNOWN), span_period)
        for v in vantages
    ]

    sweep = _Sweep(check_ids, critical, needed, missing, vantage_quorum)
    raw, effective, views = sweep.run(span_period, lists, faults)
    windows = clip_spans(flatten(maintenance, state=State.MAINTENANCE), span_period)
    # Each list covers the period exactly (one run per stretch of equal state and
    # reason), and so does the effective one with the windows laid over it.
    return ServiceTimeline(
        period=span_period,
        raw=raw,
        effective=overlay(effective, windows),
        vantages=dict(zip(vantages, views, strict=True)),
    )


def _needed(rule: ServiceRule, n_critical: int, *, strict: bool) -> tuple[int | None, int]:
    """Critical checks that must be down for DOWN (``None``: it cannot happen), and how
    many critical checks are missing altogether (counted as UNKNOWN)."""
    if isinstance(rule, QuorumRule):
        if rule.quorum <= n_critical:
            return rule.quorum, 0
        if strict:
            raise ValueError(f"rule quorum {rule.quorum} exceeds the {n_critical} critical checks")
        return rule.quorum, rule.quorum - n_critical
    if rule not in ("any", "all"):
        raise ValueError(f"unknown service rule {rule!r}")
    if n_critical == 0:
        return None, 0
    return (1 if rule == "any" else n_critical), 0


def _label(check_id: str, reason: str | None) -> str:
    return f"{check_id}: {reason}" if reason else check_id


def _vantage_view(
    check_ids: Sequence[str],
    critical: Mapping[str, bool],
    row: Sequence[_Cell | None],
    needed: int | None,
    missing: int,
) -> _View:
    """One vantage's view of the service (module docstring) from what each of its
    checks says: ``row[i]`` is check ``check_ids[i]``'s state and reason, ``None`` when
    it has no span there."""
    down: list[str] = []
    maintenance: list[str] = []
    degraded: list[str] = []
    unknown = missing
    known = 0
    for check_id, cell in zip(check_ids, row, strict=True):
        if cell is None or cell[0] is _UNKNOWN:
            if critical[check_id]:
                unknown += 1
            continue
        known += 1
        state, reason = cell
        if state is _UP:
            continue  # counts as known, and for nothing else
        if critical[check_id]:
            if state is _DOWN:
                down.append(_label(check_id, reason))
            elif state is _MAINTENANCE:
                maintenance.append(_label(check_id, reason))
            elif state is _DEGRADED:
                degraded.append(_label(check_id, reason))
        elif state in (_DOWN, _DEGRADED):
            degraded.append(_label(check_id, reason))
    if known == 0:
        return _UNKNOWN_VIEW
    if needed is not None:
        d, m = len(down), len(maintenance)
        if d >= needed:
            return State.DOWN, frozenset(down)
        if d + unknown >= needed:
            return _UNKNOWN_VIEW
        if d + m >= needed:
            return State.MAINTENANCE, frozenset(maintenance)
        if d + m + unknown >= needed:
            return _UNKNOWN_VIEW
    if degraded:
        return State.DEGRADED, frozenset(degraded)
    return State.UP, frozenset()


def _combine(views: Sequence[_View], vantage_quorum: int) -> _View:
    if len(views) == 1:
        # One vantage: its view, as the general rule below would rebuild it.
        only = views[0]
        if only[0] is not State.UNKNOWN or only == _FAULT_VIEW:
            return only
        return _UNKNOWN_VIEW
    fresh = [v for v in views if v[0] is not State.UNKNOWN]
    if not fresh:
        if views and all(v == _FAULT_VIEW for v in views):
            return _FAULT_VIEW
        return _UNKNOWN_VIEW
    required = min(vantage_quorum, len(fresh))
    for state in (State.DOWN, State.MAINTENANCE, State.DEGRADED):
        matching = [v for v in fresh if v[0] is state]
        if matching and (state is not State.DOWN or len(matching) >= required):
            return state, frozenset().union(*(v[1] for v in matching))
    return State.UP, frozenset()


def _state_reason(view: _View) -> tuple[State, str | None]:
    state, labels = view
    reason = ", ".join(sorted(labels)) if labels else None
    if state is State.MAINTENANCE and reason is not None:
        reason = f"observed: {reason}"
    return state, reason


class _Sweep:
    """The views of one service over a period, evaluated once per elementary segment.

    A vantage's view depends on each of its checks' spans only through their state and
    reason (:func:`_vantage_view`), and not at all on UNKNOWN spans or gaps. So each
    check's spans become *events*: at a span's start the check takes the span's
    *code* (the number of its ``(state, reason)``), at its end code 0 (UNKNOWN); an
    UNKNOWN span makes none. A vantage's monitor faults likewise: code 1 inside one.
    Between two consecutive event instants nothing changes: those are the elementary
    segments, and the tuple of every list's code decides the segment. It is evaluated
    once per distinct tuple and looked up after (a month of one service has hundreds of
    segments and a few dozen distinct tuples), into the *label* of each resulting
    stream: the ``(state, reason)`` of its spans (:func:`_state_reason`), numbered.
    The spans are built as runs: a span ends only where its label changes, so they come
    out merged, as :func:`~scd_monitor.sla.intervals.merge_adjacent` would make them.
    """

    __slots__ = (
        "_cells",
        "_check_ids",
        "_codes",
        "_critical",
        "_label_ids",
        "_labels",
        "_missing",
        "_needed",
        "_quorum",
        "_segments",
        "_view_labels",
        "_views",
    )

    def __init__(
        self,
        check_ids: Sequence[str],
        critical: Mapping[str, bool],
        needed: int | None,
        missing: int,
        vantage_quorum: int,
    ) -> None:
        self._check_ids = check_ids
        self._critical = critical
        self._needed = needed
        self._missing = missing
        self._quorum = vantage_quorum
        self._codes: dict[_Cell, int] = {}
        self._cells: list[_Cell | None] = [None]  # by code; code 0 is UNKNOWN
        self._views: dict[tuple[int, ...], _View] = {}  # a vantage's checks' codes → its view
        self._segments: dict[tuple[int, ...], tuple[int, ...]] = {}  # codes → stream labels
        self._label_ids: dict[tuple[State, str | None], int] = {}
        self._labels: list[tuple[State, str | None]] = []  # by label number
        self._view_labels: dict[_View, int] = {}

    def run(
        self, period: Period, lists: Sequence[Sequence[Span]], faults: Sequence[Sequence[Span]]
    ) -> tuple[list[Span], list[Span], list[list[Span]]]:
        """The raw and effective (monitor faults applied, no windows) service spans and
        each vantage's view (faults applied), each covering ``period`` (UTC) exactly.

        ``lists`` holds the normalized span lists of every (vantage, check), vantage by
        vantage, each vantage's checks in ``check_ids`` order, cut to ``period``;
        ``faults`` each vantage's normalized monitor-fault spans, also cut to it.
        """
        lo, hi = period.start, period.end
        n_vantages = len(faults)
        if len(lists) != len(self._check_ids) * n_vantages:
            raise ValueError("one span list per check and vantage expected")
        # The streams: raw, effective, each vantage's view. Per stream its finished
        # spans, and the start and label number of the run it is in.
        outputs: list[list[Span]] = [[] for _ in range(n_vantages + 2)]
        if not lo < hi:
            return outputs[0], outputs[1], outputs[2:]

        # ``(instant, list, code)``: from ``instant`` on, that list has that code. Each
        # list's events are made in time order (at an instant where a span ends and the
        # next begins, the end first), and the sort is stable.
        events: list[tuple[datetime, int, int]] = []
        for index, spans in enumerate(lists):
            for span in spans:
                if span.state is not _UNKNOWN:
                    events.append((span.start, index, self._code(span.state, span.reason)))
                    events.append((span.end, index, 0))
        for vantage, spans in enumerate(faults, start=len(lists)):
            for span in spans:
                events.append((span.start, vantage, 1))
                events.append((span.end, vantage, 0))
        events.sort(key=itemgetter(0))

        current = [0] * (len(lists) + n_vantages)
        memo, labels = self._segments, self._labels
        run_starts = [lo] * len(outputs)
        run_labels: tuple[int, ...] = ()  # none before the first segment

        def close(end: datetime, following: tuple[int, ...]) -> None:
            """End at ``end`` the runs of the streams whose label changes to
            ``following``'s (every stream's when it is empty): a span each, one span for
            streams whose runs are alike (with one vantage raw, effective and the
            vantage's view mostly are; spans are immutable)."""
            made: Span | None = None
            made_label = -1
            for stream, before in enumerate(run_labels):
                if following and following[stream] == before:
                    continue
                begun = run_starts[stream]
                if made is None or made_label != before or made.start != begun:
                    made, made_label = Span(begun, end, *labels[before]), before
                outputs[stream].append(made)
                run_starts[stream] = end

        start = lo
        for at, index, code in [*events, (hi, -1, 0)]:
            if at > start:  # the segment [start, at): evaluated once its events are applied
                key = tuple(current)
                now = memo.get(key)
                if now is None:
                    now = memo[key] = self._evaluate(key, n_vantages)
                if now != run_labels:
                    close(start, now)
                    run_labels = now
                start = at
            if index >= 0:
                current[index] = code
        close(hi, ())
        return outputs[0], outputs[1], outputs[2:]

    def _code(self, state: State, reason: str | None) -> int:
        """The number of a check's ``(state, reason)``, from 1 on."""
        cell = (state, reason)
        code = self._codes.get(cell)
        if code is None:
            code = self._codes[cell] = len(self._cells)
            self._cells.append(cell)
        return code

    def _evaluate(self, codes: tuple[int, ...], n_vantages: int) -> tuple[int, ...]:
        """The label numbers of the streams (raw, effective, each vantage's view) where
        the checks' codes are ``codes``, vantage by vantage, then the faults'."""
        width = len(self._check_ids)
        raw: list[_View] = []
        eff: list[_View] = []
        for vantage in range(n_vantages):
            key = codes[vantage * width : (vantage + 1) * width]
            view = self._views.get(key)
            if view is None:
                row = [self._cells[code] for code in key]
                view = self._views[key] = _vantage_view(
                    self._check_ids, self._critical, row, self._needed, self._missing
                )
            raw.append(view)
            eff.append(_FAULT_VIEW if codes[n_vantages * width + vantage] else view)
        streams = [_combine(raw, self._quorum), _combine(eff, self._quorum), *eff]
        return tuple(self._label(view) for view in streams)

    def _label(self, view: _View) -> int:
        """The number of ``view``'s label (views of equal label share it)."""
        number = self._view_labels.get(view)
        if number is None:
            label = _state_reason(view)
            number = self._label_ids.get(label)
            if number is None:
                number = self._label_ids[label] = len(self._labels)
                self._labels.append(label)
            self._view_labels[view] = number
        return number


# --- monitor faults ---------------------------------------------------------------------


def _one_vantage(timelines: Sequence[CheckTimeline]) -> None:
    found = {t.vantage for t in timelines}
    if len(found) > 1:
        raise ValueError(f"timelines of one vantage expected, got {sorted(found)}")


def _extent(lists: Sequence[Sequence[Span]]) -> Period | None:
    """From the first start to the last end of normalized span lists (``None``: no span)."""
    firsts = [spans[0].start for spans in lists if spans]
    if not firsts:
        return None
    return Period(min(firsts), max(spans[-1].end for spans in lists if spans))


def _runs(spans: Sequence[Span], code_of: Callable[[Span], int | None]) -> Iterator[_Run]:
    """``(start, end, code)`` runs of a normalized span list: each span's ``code_of``,
    spans coded ``None`` left out, touching spans of one code joined into one run."""
    run: _Run | None = None
    for span in spans:
        code = code_of(span)
        if code is None:
            continue
        if run is not None and run[1] == span.start and run[2] == code:
            run = (run[0], span.end, code)
            continue
        if run is not None:
            yield run
        run = (span.start, span.end, code)
    if run is not None:
        yield run


def _sweep(
    events: list[_Event], apply: Callable[[int, int], None], holds: Callable[[], bool]
) -> list[Interval]:
    """The stretches where ``holds()`` is true, sweeping state-change events in time order.

    Each event ``(instant, delta, code)`` is passed to ``apply(delta, code)``; all the
    events of one instant are applied before ``holds()`` is asked about the stretch up
    to the next instant. Outside the events' extent nothing is asked (there every
    counter is zero). Sorts ``events`` in place.
    """
    events.sort(key=itemgetter(0))
    hits: list[Interval] = []
    count = len(events)
    i = 0
    while i < count:
        instant = events[i][0]
        while i < count and events[i][0] == instant:
            _, delta, code = events[i]
            apply(delta, code)
            i += 1
        if i < count and holds():
            following = events[i][0]
            if hits and hits[-1][1] == instant:
                hits[-1] = (hits[-1][0], following)
            else:
                hits.append((instant, following))
    return hits


def _fault_spans(intervals: Sequence[Interval]) -> list[Span]:
    return [Span(s, e, State.UNKNOWN, MONITOR_FAULT) for s, e in intervals]


def is_mass_failure(
    failing: int, fresh: int, *, min_ratio: float | Fraction, min_providers: int
) -> bool:
    """Whether ``failing`` providers out of ``fresh`` (with fresh data) are a mass failure:
    at least ``min_providers`` of them *and* at least ``min_ratio`` of ``fresh``
    (compared exactly, ``min_ratio`` read as the decimal it prints as)."""
    ratio = min_ratio if isinstance(min_ratio, Fraction) else Fraction(str(min_ratio))
    return failing >= min_providers and failing >= ratio * fresh


def mass_failure_spans(
    checks_of_one_vantage: Sequence[CheckTimeline],
    *,
    min_ratio: float = 0.5,
    min_providers: int = 3,
) -> list[Span]:
    """Where one vantage sees so many providers down that the monitor is the suspect.

    At an instant, a provider *has fresh data* when at least one of its checks is not
    UNKNOWN, and *is failing* when at least one of its checks (critical or not) is
    DOWN. The instant is a monitor fault when the failing providers number at least
    ``min_providers`` *and* at least ``min_ratio`` of the providers with fresh data
    (compared exactly, ``min_ratio`` read as the decimal it prints as). The result is
    normalized ``Span(UNKNOWN, reason="monitor_fault")`` spans.

    Pass every check of the vantage (all providers), not one service's. A genuine
    simultaneous outage of that many providers is not charged either: that is the
    price of never charging the monitor's own network failures, and it is bounded by
    the two thresholds.
    """
    _one_vantage(checks_of_one_vantage)
    if min_providers < 1:
        raise ValueError("min_providers must be at least 1")
    ratio = Fraction(str(min_ratio))
    if not 0 <= ratio <= 1:
        raise ValueError("min_ratio must be within [0, 1]")
    lists = [normalize_spans(t.spans) for t in checks_of_one_vantage]
    if _extent(lists) is None:
        return []
    # A sweep over the instants where a check starts or stops being fresh or DOWN, with
    # per provider the number of its checks fresh and DOWN, and the number of providers
    # with at least one of each: O(n log n) in the spans, whatever the catalog's size.
    index: dict[str, int] = {}
    events: list[_Event] = []
    for timeline, spans in zip(checks_of_one_vantage, lists, strict=True):
        provider = index.setdefault(timeline.provider, len(index))
        for start, end, code in _runs(spans, _fresh_code):
            code = 2 * provider + code
            events.append((start, 1, code))
            events.append((end, -1, code))
    fresh = [0] * len(index)  # per provider, its checks with fresh data
    down = [0] * len(index)  # per provider, its checks DOWN
    totals = [0, 0]  # providers with fresh data, providers failing
    verdict: dict[tuple[int, int], bool] = {}

    # A counter never goes below zero: a run's end comes after its start (spans are not
    # empty), so its +1 is applied first; 0 → 1 and 1 → 0 are the changes of a total.
    def apply(delta: int, code: int) -> None:
        provider, failing = divmod(code, 2)
        if failing:
            before = down[provider]
            down[provider] = before + delta
            if before == 0 or before + delta == 0:
                totals[1] += delta
        before = fresh[provider]
        fresh[provider] = before + delta
        if before == 0 or before + delta == 0:
            totals[0] += delta

    def holds() -> bool:
        key = (totals[1], totals[0])
        hit = verdict.get(key)
        if hit is None:
            hit = verdict[key] = is_mass_failure(
                key[0], key[1], min_ratio=ratio, min_providers=min_providers
            )
        return hit

    return _fault_spans(normalize(_sweep(events, apply, holds)))


def _fresh_code(span: Span) -> int | None:
    """A check's contribution to :func:`mass_failure_spans`: ``None`` if UNKNOWN (not
    fresh), 1 if DOWN (fresh and failing), 0 otherwise (fresh)."""
    state = span.state
    if state is _UNKNOWN:
        return None
    return 1 if state is _DOWN else 0


def vantage_blind(
    views: Iterable[tuple[str, State, str | None]],
    *,
    min_hosts: int,
    error_kinds: Collection[str],
) -> bool:
    """Whether one vantage, at one instant, cannot trust its own network path.

    ``views`` holds one ``(host, state, reason)`` per check of the vantage (canaries
    excluded), ``reason`` being the error kind of a DOWN check. The vantage is *blind*
    when at least one check is DOWN, no check is UP or DEGRADED (UNKNOWN and
    MAINTENANCE checks say nothing), and the DOWN checks whose reason is one of
    ``error_kinds`` (by default ``dns`` and ``connect``: the destination could not be
    reached at all) point at ``min_hosts`` distinct hosts or more. Destinations that
    fail to resolve or refuse connections all at once, with nothing answering, are the
    monitor's resolver or network failing, however few providers there are.
    """
    down = False
    hosts: set[str] = set()
    for host, state, reason in views:
        if state is State.UP or state is State.DEGRADED:
            return False
        if state is State.DOWN:
            down = True
            if reason in error_kinds:
                hosts.add(host)
    return down and len(hosts) >= min_hosts


def network_path_fault_spans(
    checks_of_one_vantage: Sequence[CheckTimeline],
    *,
    min_hosts: int = 2,
    error_kinds: Collection[str] = ("dns", "connect"),
    settle: timedelta = timedelta(0),
) -> list[Span]:
    """Where one vantage is blind (:func:`vantage_blind`), as monitor-fault spans.

    Checks are probed at different instants, so a network failure reaches them one
    after the other, and they recover one after the other: each blind stretch is
    widened by ``settle`` on both sides (pass the longest probe interval plus timeout
    of the vantage's checks), so that the first checks to fail (their outages are
    back-dated to their first failing probe) and the last to recover are not charged
    while the rest catch up. Widening never charges anything; it only excuses. The
    result is clipped to the data's extent.
    """
    _one_vantage(checks_of_one_vantage)
    if min_hosts < 1:
        raise ValueError("min_hosts must be at least 1")
    if settle < timedelta(0):
        raise ValueError("settle must not be negative")
    lists = [normalize_spans(t.spans) for t in checks_of_one_vantage]
    extent = _extent(lists)
    if extent is None:
        return []
    kinds = frozenset(error_kinds)
    # A sweep keeping the numbers of checks answering (UP or DEGRADED) and DOWN, per host
    # the number of DOWN checks whose reason is one of ``kinds``, and the number of such
    # hosts: :func:`vantage_blind` on counters, O(n log n) in the spans. Codes: 0 answering,
    # 1 DOWN for another reason, 2 + h DOWN for one of ``kinds`` at host h; UNKNOWN and
    # MAINTENANCE say nothing and make no event.
    index: dict[str, int] = {}
    events: list[_Event] = []
    for timeline, spans in zip(checks_of_one_vantage, lists, strict=True):
        host = index.setdefault(
            timeline.host if timeline.host is not None else timeline.check_id, len(index)
        )

        def code_of(span: Span, host: int = host) -> int | None:
            state = span.state
            if state is _UP or state is _DEGRADED:
                return 0
            if state is _DOWN:
                return 2 + host if span.reason in kinds else 1
            return None

        for start, end, code in _runs(spans, code_of):
            events.append((start, 1, code))
            events.append((end, -1, code))
    per_host = [0] * len(index)
    counts = [0, 0, 0]  # checks answering, checks DOWN, hosts unreachable

    def apply(delta: int, code: int) -> None:
        if code == 0:
            counts[0] += delta
            return
        counts[1] += delta
        if code > 1:
            before = per_host[code - 2]
            per_host[code - 2] = before + delta
            if before == 0 or before + delta == 0:
                counts[2] += delta

    def holds() -> bool:
        return counts[0] == 0 and counts[1] > 0 and counts[2] >= min_hosts

    hits = _sweep(events, apply, holds)
    lo, hi = to_utc(extent.start), to_utc(extent.end)
    widened = [(max(lo, s - settle), min(hi, e + settle)) for s, e in normalize(hits)]
    return _fault_spans(union(widened))


def canary_fault_spans(
    canary_timelines: Sequence[CheckTimeline], *, period: Period | None = None
) -> list[Span]:
    """Where the vantage's canary checks say the monitor itself is failing.

    A canary is a check of something that is always up (a well-known public site, the
    monitor's own gateway). For each canary, a fault is every instant where it is
    DOWN, and every instant where it is UNKNOWN *after its first data* (from the start
    of its first non-UNKNOWN span on; before that the canary did not exist yet). A
    DEGRADED or MAINTENANCE canary is not a fault. "UNKNOWN" includes time no span
    covers; the trailing stretch after the last span counts up to ``period.end`` when
    ``period`` is given (without it, only up to the last span's end). Any canary's
    fault is a fault of the vantage: the union is returned, clipped to ``period``
    when given, as normalized ``Span(UNKNOWN, reason="monitor_fault")`` spans.

    Pass the whole history you have, not spans already clipped to the period: the
    "after its first data" rule needs to see the data before the period starts.
    """
    _one_vantage(canary_timelines)
    faults: list[Interval] = []
    for canary in canary_timelines:
        spans = normalize_spans(canary.spans)
        known = [s for s in spans if s.state is not State.UNKNOWN]
        if not known:
            continue
        horizon = spans[-1].end
        if period is not None:
            horizon = max(horizon, to_utc(period.end))
        seen = [(known[0].start, horizon)]
        faults.extend(subtract(seen, [(s.start, s.end) for s in known]))
        faults.extend((s.start, s.end) for s in spans if s.state is State.DOWN)
    merged = union(faults)
    if period is not None:
        merged = [
            (max(s, to_utc(period.start)), min(e, to_utc(period.end)))
            for s, e in merged
            if s < to_utc(period.end) and e > to_utc(period.start)
        ]
    return _fault_spans(merged)


def monitor_fault_spans(*groups: Sequence[Span]) -> list[Span]:
    """The union of several fault span lists (e.g. canary and mass failure) as one."""
    return _fault_spans(union((s.start, s.end) for g in groups for s in g))
