"""The per-check state machine: debounce, back-dating, coverage, final vs provisional."""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.sla.derive import (
    CheckStateMachine,
    DerivePolicy,
    MachineSnapshot,
    OutOfOrderError,
    Verdict,
    classify,
    derive_spans,
)
from scd_monitor.sla.model import Span, State

T0 = datetime(2026, 11, 1, tzinfo=UTC)
STALE = 90  # seconds; the examples probe every 30 s
UP, DOWN, DEG, MAINT = State.UP, State.DOWN, State.DEGRADED, State.MAINTENANCE


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def policy(failures: int = 3, successes: int = 1, stale: int = STALE) -> DerivePolicy:
    return DerivePolicy(
        latency_threshold=timedelta(seconds=2),
        staleness=timedelta(seconds=stale),
        failures_to_open=failures,
        successes_to_close=successes,
    )


def res(seconds: int, kind: str = "ok") -> ProbeResult:
    """One result: ``ok``, ``slow``, ``maint``, ``internal`` or ``fail:<error kind>``."""
    duration = 0.5
    if kind == "ok":
        outcome = Outcome(ok=True, status_code=200)
    elif kind == "slow":
        outcome, duration = Outcome(ok=True, status_code=200), 5.0
    elif kind == "maint":
        outcome = Outcome.failure(
            ErrorKind.STATUS, "503", status_code=503, details={"maintenance": True}
        )
    elif kind == "internal":
        outcome = Outcome.failure(ErrorKind.INTERNAL, "probe bug")
    else:
        assert kind.startswith("fail:")
        outcome = Outcome.failure(ErrorKind(kind.removeprefix("fail:")), "failed")
    return ProbeResult(
        check_id="prov/svc/home",
        kind="http",
        vantage="bogota",
        started_at=at(seconds),
        duration=duration,
        outcome=outcome,
    )


def run(*events: tuple[int, str]) -> list[ProbeResult]:
    return [res(t, k) for t, k in events]


def sp(a: int, b: int, state: State, reason: str | None = None) -> Span:
    return Span(at(a), at(b), state, reason)


TO = "fail:timeout"


# --- classification -------------------------------------------------------------------


def test_classify() -> None:
    p = policy()
    assert classify(res(0, "ok"), p) is Verdict.OK
    assert classify(res(0, "slow"), p) is Verdict.SLOW
    assert classify(res(0, "maint"), p) is Verdict.MAINTENANCE
    assert classify(res(0, TO), p) is Verdict.FAIL
    assert classify(res(0, "internal"), p) is None
    at_threshold = ProbeResult("c", "http", "v", T0, 2.0, Outcome(ok=True))
    assert classify(at_threshold, p) is Verdict.OK


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError):
        policy(failures=0)
    with pytest.raises(ValueError):
        policy(successes=0)
    with pytest.raises(ValueError):
        policy(stale=0)


# --- the rules, by example ------------------------------------------------------------


def test_all_ok_is_one_up_span_to_staleness() -> None:
    assert derive_spans(run((0, "ok"), (30, "ok"), (60, "ok")), policy()) == [sp(0, 60 + STALE, UP)]


def test_blip_shorter_than_failures_to_open_is_no_down() -> None:
    spans = derive_spans(run((0, "ok"), (30, TO), (60, TO), (90, "ok")), policy())
    assert spans == [sp(0, 90 + STALE, UP)]


def test_confirmed_outage_is_back_dated_to_first_failure_and_ends_at_first_success() -> None:
    results = run(
        (0, "ok"), (30, "fail:dns"), (60, TO), (90, TO), (120, TO), (150, "ok"), (180, "ok")
    )
    assert derive_spans(results, policy()) == [
        sp(0, 30, UP),
        sp(30, 150, DOWN, "dns"),  # the reason is the outage's first failing probe
        sp(150, 180 + STALE, UP),
    ]


def test_failures_to_open_one_opens_at_once() -> None:
    spans = derive_spans(run((0, "ok"), (30, TO), (60, "ok")), policy(failures=1))
    assert spans == [sp(0, 30, UP), sp(30, 60, DOWN, "timeout"), sp(60, 60 + STALE, UP)]


def test_successes_to_close_two_with_a_failure_between() -> None:
    results = run(
        (0, TO), (30, TO), (60, TO),  # DOWN from 0
        (90, "ok"),  # a success run of one ...
        (120, "fail:connect"),  # ... cancelled: 90-120 stays DOWN
        (150, "ok"), (180, "ok"),  # closes, back-dated to 150
        (210, "ok"),
    )  # fmt: skip
    assert derive_spans(results, policy(successes=2)) == [
        sp(0, 150, DOWN, "timeout"),
        sp(150, 210 + STALE, UP),
    ]


def test_slow_is_degraded_per_observation() -> None:
    results = run((0, "ok"), (30, "slow"), (60, "slow"), (90, "ok"))
    assert derive_spans(results, policy()) == [
        sp(0, 30, UP),
        sp(30, 90, DEG, "slow"),
        sp(90, 90 + STALE, UP),
    ]


def test_slow_success_closes_an_outage_as_degraded() -> None:
    results = run((0, TO), (30, TO), (60, TO), (90, "slow"), (120, "ok"))
    assert derive_spans(results, policy()) == [
        sp(0, 90, DOWN, "timeout"),
        sp(90, 120, DEG, "slow"),
        sp(120, 120 + STALE, UP),
    ]


def test_slow_while_down_is_not_degraded_until_the_run_closes() -> None:
    results = run((0, TO), (30, TO), (60, TO), (90, "slow"), (120, TO), (150, "ok"), (180, "ok"))
    assert derive_spans(results, policy(successes=2)) == [
        sp(0, 150, DOWN, "timeout"),
        sp(150, 180 + STALE, UP),
    ]


def test_cancelled_failures_inside_degraded_read_up() -> None:
    results = run((0, "slow"), (30, TO), (60, "slow"))
    assert derive_spans(results, policy()) == [
        sp(0, 30, DEG, "slow"),
        sp(30, 60, UP),
        sp(60, 60 + STALE, DEG, "slow"),
    ]


def test_maintenance_is_immediate_and_resets_a_failure_run() -> None:
    results = run((0, "ok"), (30, TO), (60, TO), (90, "maint"), (120, TO), (150, TO), (180, "ok"))
    assert derive_spans(results, policy()) == [
        sp(0, 90, UP),  # the run of two is cancelled by the maintenance
        sp(90, 120, MAINT, "maintenance"),
        sp(120, 180 + STALE, UP),  # two failures after it: a new run, still a blip
    ]


def test_maintenance_needs_a_full_run_after_it_when_up() -> None:
    results = run((0, "ok"), (30, "maint"), (60, TO), (90, TO), (120, TO), (150, "ok"))
    assert derive_spans(results, policy()) == [
        sp(0, 30, UP),
        sp(30, 60, MAINT, "maintenance"),
        sp(60, 150, DOWN, "timeout"),
        sp(150, 150 + STALE, UP),
    ]


def test_an_outage_is_the_same_outage_after_maintenance() -> None:
    machine = CheckStateMachine(policy(successes=2))
    final: list[Span] = []
    for r in run((0, "fail:tls"), (30, TO), (60, TO), (90, "ok"), (120, "maint"), (150, "ok")):
        final += machine.feed(r)
    assert machine.state is DOWN  # a pending success after maintenance: still down
    assert machine.down_since == at(0)
    final += machine.feed(res(180, TO))
    assert machine.down_since == at(0)
    final += machine.feed(res(210, "ok"))
    final += machine.feed(res(240, "ok"))
    assert machine.state is UP and machine.down_since is None
    assert final + machine.provisional() == [
        sp(0, 120, DOWN, "tls"),  # the pending success at 90 was cancelled by maintenance
        sp(120, 150, MAINT, "maintenance"),
        sp(150, 210, DOWN, "tls"),  # same outage, same reason
        sp(210, 240 + STALE, UP),
    ]


def test_internal_failures_are_ignored() -> None:
    # Not a failure: two real failures around two internal ones are still a blip.
    results = run((0, "ok"), (30, TO), (40, "internal"), (50, "internal"), (60, TO), (90, "ok"))
    assert derive_spans(results, policy()) == [sp(0, 90 + STALE, UP)]
    # Not a success either: it does not cancel a failure run.
    results = run((0, TO), (30, TO), (45, "internal"), (60, TO), (90, "ok"))
    assert derive_spans(results, policy()) == [sp(0, 90, DOWN, "timeout"), sp(90, 180, UP)]


def test_internal_failures_do_not_extend_coverage() -> None:
    machine = CheckStateMachine(policy())
    machine.feed(res(0, "ok"))
    assert machine.feed(res(30, "internal")) == []
    assert machine.feed(res(60, "internal")) == []
    assert machine.last_observation_at == at(0)
    assert machine.close_until(at(120)) == [sp(0, STALE, UP)]  # then UNKNOWN: a gap


def test_gap_has_no_span_and_the_outage_continues_across_it() -> None:
    results = run((0, TO), (30, TO), (1000, TO), (1030, "ok"))
    assert derive_spans(results, policy()) == [
        sp(0, 30 + STALE, DOWN, "timeout"),  # confirmed by the failure after the gap
        sp(1000, 1030, DOWN, "timeout"),
        sp(1030, 1030 + STALE, UP),
    ]
    machine = CheckStateMachine(policy())
    for r in results[:3]:
        machine.feed(r)
    assert machine.down_since == at(0)


def test_staleness_clips_coverage_and_spans_do_not_merge_across_gaps() -> None:
    assert derive_spans(run((0, "ok"), (500, "ok")), policy()) == [
        sp(0, STALE, UP),
        sp(500, 500 + STALE, UP),
    ]
    # Exactly at the staleness limit there is no gap.
    assert derive_spans(run((0, "ok"), (STALE, "ok")), policy()) == [sp(0, 2 * STALE, UP)]


def test_initial_state_is_unknown_until_confirmed() -> None:
    machine = CheckStateMachine(policy())
    assert machine.state is State.UNKNOWN and machine.last_observation_at is None
    assert machine.feed(res(0, TO)) == []
    assert machine.feed(res(30, TO)) == []
    assert machine.state is State.UNKNOWN and machine.down_since is None
    assert machine.provisional() == [sp(0, 30 + STALE, State.UNKNOWN, "unconfirmed")]
    assert machine.feed(res(60, TO)) == []  # DOWN, but the span is still open
    assert machine.state is DOWN and machine.down_since == at(0)
    assert machine.provisional() == [sp(0, 60 + STALE, DOWN, "timeout")]


def test_pending_success_run_reads_down() -> None:
    machine = CheckStateMachine(policy(successes=2))
    for r in run((0, TO), (30, TO), (60, TO), (90, "ok")):
        machine.feed(r)
    assert machine.state is DOWN
    assert machine.provisional(until=at(100)) == [sp(0, 100, DOWN, "timeout")]


def test_final_spans_are_complete_and_provisional_is_the_rest() -> None:
    machine = CheckStateMachine(policy())
    assert machine.feed(res(0, "ok")) == []
    assert machine.feed(res(30, "ok")) == []  # UP continues: not complete yet
    assert machine.feed(res(60, TO)) == []  # may be a blip: UP 30-60 could still join it
    assert machine.provisional() == [sp(0, 60 + STALE, UP)]
    assert machine.feed(res(90, TO)) == []
    assert machine.feed(res(120, TO)) == [sp(0, 60, UP)]  # confirmed: UP is complete
    assert machine.provisional() == [sp(60, 120 + STALE, DOWN, "timeout")]
    assert machine.feed(res(150, "ok")) == [sp(60, 150, DOWN, "timeout")]
    assert machine.feed(res(180, "ok")) == []  # UP continues
    assert machine.feed(res(210, "maint")) == [sp(150, 210, UP)]
    assert machine.provisional(until=at(230)) == [sp(210, 230, MAINT, "maintenance")]


def test_close_until_ends_coverage_after_staleness() -> None:
    machine = CheckStateMachine(policy())
    machine.feed(res(0, "ok"))
    assert machine.close_until(at(60)) == []  # still fresh
    assert machine.close_until(at(STALE)) == []  # a result at exactly 90 would join it
    assert machine.provisional() == [sp(0, STALE, UP)]
    assert machine.close_until(at(STALE + 1)) == [sp(0, STALE, UP)]
    assert machine.provisional() == []
    with pytest.raises(OutOfOrderError):
        machine.feed(res(STALE, "ok"))
    assert machine.feed(res(200, "ok")) == []
    assert machine.provisional() == [sp(200, 200 + STALE, UP)]


def test_close_until_does_not_settle_a_pending_run() -> None:
    machine = CheckStateMachine(policy())
    machine.feed(res(0, "ok"))
    machine.feed(res(30, TO))
    assert machine.close_until(at(1000)) == []  # 30-120 waits for the run's verdict
    machine.feed(res(1000, TO))
    assert machine.feed(res(1030, TO)) == [sp(0, 30, UP), sp(30, 120, DOWN, "timeout")]


def test_duplicates_and_out_of_order_online() -> None:
    machine = CheckStateMachine(policy())
    machine.feed(res(30, "ok"))
    assert machine.feed(res(30, TO)) == []  # same instant: dropped, first wins
    with pytest.raises(OutOfOrderError):
        machine.feed(res(0, "ok"))
    assert machine.provisional() == [sp(30, 30 + STALE, UP)]


def test_naive_datetimes_are_refused() -> None:
    machine = CheckStateMachine(policy())
    with pytest.raises(ValueError):
        machine.close_until(datetime(2026, 11, 1))


def test_other_time_zones_are_normalized_to_utc() -> None:
    bogota = timezone(timedelta(hours=-5))
    r = res(0, "ok")
    shifted = ProbeResult(
        r.check_id, r.kind, r.vantage, T0.astimezone(bogota), r.duration, r.outcome
    )
    spans = derive_spans([shifted], policy())
    assert spans == [sp(0, STALE, UP)]
    assert spans[0].start.tzinfo is UTC


def test_derive_spans_sorts_dedupes_and_uses_results_past_until() -> None:
    results = run((60, TO), (0, TO), (30, TO), (30, TO), (90, "ok"))
    # Confirmed by the result at 60, after `until`: the DOWN still starts at 0.
    assert derive_spans(results, policy(), until=at(50)) == [sp(0, 50, DOWN, "timeout")]
    assert derive_spans(results, policy(), until=at(0)) == []


def test_same_instant_conflict_is_resolved_the_same_in_any_order() -> None:
    results = run((0, TO), (30, TO), (60, TO), (60, "ok"), (60, "internal"), (90, TO))
    # The success wins the instant 60: the failures before it are a blip, unconfirmed.
    expected = [sp(0, 60, State.UNKNOWN, "unconfirmed"), sp(60, 90 + STALE, UP)]
    assert derive_spans(results, policy()) == expected
    assert derive_spans(reversed(results), policy()) == expected


def test_snapshot_json_round_trip() -> None:
    machine = CheckStateMachine(policy(successes=2))
    for r in run((0, "ok"), (30, TO), (60, TO), (90, TO), (120, "slow")):
        machine.feed(r)
    machine.close_until(at(125))
    snap = machine.snapshot()
    text = json.dumps(snap.to_json())
    again = MachineSnapshot.from_json(json.loads(text))
    assert again == snap
    assert json.loads(text)["outage_start"] == "2026-11-01T00:00:30+00:00"
    resumed = CheckStateMachine(policy(successes=2), again)
    assert resumed.state is DOWN and resumed.down_since == at(30)
    assert resumed.provisional() == machine.provisional()


def test_snapshot_from_json_refuses_garbage() -> None:
    good = CheckStateMachine(policy()).snapshot().to_json()
    with pytest.raises(ValueError):
        MachineSnapshot.from_json({**good, "version": 99})
    with pytest.raises(ValueError):
        MachineSnapshot.from_json({k: v for k, v in good.items() if k != "down"})
    with pytest.raises(ValueError):
        MachineSnapshot.from_json({**good, "closed_until": 12})


# --- properties -----------------------------------------------------------------------

KINDS = ["ok", "ok", "slow", TO, TO, TO, "fail:dns", "maint", "internal"]
KINDS_NO_MAINT = [k for k in KINDS if k != "maint"]

events_st = st.lists(
    st.tuples(st.integers(min_value=1, max_value=200), st.sampled_from(KINDS)), max_size=40
)
policy_st = st.builds(
    policy,
    failures=st.integers(min_value=1, max_value=4),
    successes=st.integers(min_value=1, max_value=3),
)
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def timeline(events: Sequence[tuple[int, str]]) -> list[ProbeResult]:
    """Results at cumulative offsets (strictly increasing instants)."""
    t, out = 0, []
    for gap, kind in events:
        t += gap
        out.append(res(t, kind))
    return out


def secs(d: datetime) -> int:
    return int((d - T0).total_seconds())


def kept(results: Sequence[ProbeResult]) -> list[tuple[int, str]]:
    """(seconds, kind) of the observations that count, in order (no internal)."""
    return [
        (secs(r.started_at), kind_of(r))
        for r in sorted(results, key=lambda r: r.started_at)
        if kind_of(r) != "internal"
    ]


def kind_of(r: ProbeResult) -> str:
    if r.outcome.ok:
        return "slow" if r.duration > 2 else "ok"
    if r.outcome.details.get("maintenance") is True:
        return "maint"
    assert r.error_kind is not None
    return "internal" if r.error_kind is ErrorKind.INTERNAL else f"fail:{r.error_kind.value}"


def reference(
    obs: Sequence[tuple[int, str]], p: DerivePolicy
) -> tuple[list[Span], list[tuple[int, int | None]]]:
    """An independent look-ahead implementation: per-observation labels, then coverage.

    Returns the spans and the outages as (first failure, first success of the closing
    run or None) in seconds.
    """
    n = len(obs)
    labels: list[tuple[State, str | None]] = [(UP, None)] * n
    outages: list[tuple[int, int | None]] = []

    def is_success(k: int) -> bool:
        return obs[k][1] in ("ok", "slow")

    def success_label(k: int) -> tuple[State, str | None]:
        return (DEG, "slow") if obs[k][1] == "slow" else (UP, None)

    unconfirmed = (State.UNKNOWN, "unconfirmed")
    down, known, reason, i = False, False, None, 0
    while i < n:
        kind = obs[i][1]
        if kind == "maint":
            labels[i] = (MAINT, "maintenance")
            i += 1
        elif not down and kind.startswith("fail:"):
            j = i
            while j < n and obs[j][1].startswith("fail:"):
                j += 1
            if j - i >= p.failures_to_open:  # confirmed
                down, known, reason = True, True, kind.removeprefix("fail:")
                outages.append((obs[i][0], None))
                labels[i:j] = [(DOWN, reason)] * (j - i)
            else:  # cancelled, or pending at the end: reads as the state it interrupted
                labels[i:j] = [(UP, None) if known else unconfirmed] * (j - i)
            i = j
        elif not down and known:
            labels[i] = success_label(i)
            i += 1
        elif is_success(i):  # a run that confirms the check up (down or unknown before)
            j = i
            while j < n and is_success(j):
                j += 1
            if j - i >= p.successes_to_close:  # back-dated to the run's start
                if down:
                    outages[-1] = (outages[-1][0], obs[i][0])
                down, known = False, True
                labels[i:j] = [success_label(k) for k in range(i, j)]
            else:
                labels[i:j] = [(DOWN, reason) if down else unconfirmed] * (j - i)
            i = j
        else:
            labels[i] = (DOWN, reason)
            i += 1

    stale = int(p.staleness.total_seconds())
    spans: list[Span] = []
    for k, (t, _) in enumerate(obs):
        end = t + stale if k + 1 == n else min(obs[k + 1][0], t + stale)
        state, why = labels[k]
        if (
            spans
            and secs(spans[-1].end) == t
            and (spans[-1].state, spans[-1].reason)
            == (
                state,
                why,
            )
        ):
            spans[-1] = sp(secs(spans[-1].start), end, state, why)
        else:
            spans.append(sp(t, end, state, why))
    return spans, outages


def down_seconds(spans: Sequence[Span]) -> int:
    return sum(secs(s.end) - secs(s.start) for s in spans if s.state is DOWN)


def assert_well_formed(spans: Sequence[Span]) -> None:
    for s in spans:
        assert s.start < s.end
    for a, b in pairwise(spans):
        assert a.end <= b.start
        assert not (a.end == b.start and (a.state, a.reason) == (b.state, b.reason))


@FAST
@given(events_st, policy_st)
def test_spans_are_sorted_disjoint_and_merged(
    events: list[tuple[int, str]], p: DerivePolicy
) -> None:
    spans = derive_spans(timeline(events), p)
    assert_well_formed(spans)
    # UNKNOWN only before the first confirmed state (and never after it).
    unknown = [i for i, s in enumerate(spans) if s.state is State.UNKNOWN]
    confirmed = [i for i, s in enumerate(spans) if s.state in (UP, DOWN, DEG)]
    assert all(s.reason == "unconfirmed" for s in spans if s.state is State.UNKNOWN)
    if unknown and confirmed:
        assert max(unknown) < min(confirmed)


@FAST
@given(events_st, policy_st, st.data())
def test_order_and_duplicates_do_not_matter(
    events: list[tuple[int, str]], p: DerivePolicy, data: st.DataObject
) -> None:
    results = timeline(events)
    expected = derive_spans(results, p)
    copies = data.draw(st.lists(st.sampled_from(results), max_size=10)) if results else []
    shuffled = data.draw(st.permutations(results + copies))
    spans = derive_spans(shuffled, p)
    assert spans == expected
    assert down_seconds(spans) == down_seconds(expected)


@FAST
@given(events_st, policy_st, st.data())
def test_conflicting_results_at_one_instant_do_not_depend_on_order(
    events: list[tuple[int, str]], p: DerivePolicy, data: st.DataObject
) -> None:
    results = timeline(events)
    twins = data.draw(st.lists(st.sampled_from(results), max_size=5)) if results else []
    rivals = [res(secs(r.started_at), data.draw(st.sampled_from(KINDS))) for r in twins]
    first = derive_spans(data.draw(st.permutations(results + rivals)), p)
    second = derive_spans(data.draw(st.permutations(results + rivals)), p)
    assert first == second


@FAST
@given(events_st, policy_st)
def test_matches_an_independent_reference(events: list[tuple[int, str]], p: DerivePolicy) -> None:
    results = timeline(events)
    spans = derive_spans(results, p)
    obs = kept(results)
    expected, outages = reference(obs, p)
    assert spans == expected

    # DOWN time, second by second: inside an outage [first failure, first success of
    # the closing run), covered by an observation, and that observation not maintenance.
    stale = int(p.staleness.total_seconds())
    times = [t for t, _ in obs]
    total = 0
    for start, end in outages:
        stop = end if end is not None else times[-1] + stale
        for s in range(start, stop):
            k = bisect.bisect_right(times, s) - 1
            covered = s < times[k] + stale
            if covered and obs[k][1] != "maint":
                total += 1
    assert down_seconds(spans) == total


def outages_by_observation(
    obs: Sequence[tuple[int, str]], spans: Sequence[Span]
) -> list[tuple[int, int | None, int]]:
    """(start, end, observations) of each maximal run of observations that read DOWN."""
    starts = [s.start for s in spans]

    def state_at(t: int) -> State:
        k = bisect.bisect_right(starts, at(t)) - 1
        assert k >= 0 and spans[k].start <= at(t) < spans[k].end
        return spans[k].state

    out: list[tuple[int, int | None, int]] = []
    i = 0
    while i < len(obs):
        if state_at(obs[i][0]) is not DOWN:
            i += 1
            continue
        j = i
        while j < len(obs) and state_at(obs[j][0]) is DOWN:
            j += 1
        out.append((obs[i][0], obs[j][0] if j < len(obs) else None, j - i))
        i = j
    return out


@FAST
@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=200), st.sampled_from(KINDS_NO_MAINT)),
        max_size=40,
    ),
    st.integers(min_value=2, max_value=4),
)
def test_debounce_never_moves_an_outage(events: list[tuple[int, str]], failures: int) -> None:
    results = timeline(events)
    obs = kept(results)
    debounced = derive_spans(results, policy(failures=failures))
    immediate = derive_spans(results, policy(failures=1))
    long_enough = [
        o for o in outages_by_observation(obs, immediate) if o[2] >= failures
    ]  # the outages whose failure run is long enough to be confirmed
    assert outages_by_observation(obs, debounced) == long_enough
    down_immediate = {s for s in immediate if s.state is DOWN}
    assert {s for s in debounced if s.state is DOWN} <= down_immediate


@FAST
@given(events_st, policy_st)
def test_debounce_never_moves_an_outage_end_with_maintenance(
    events: list[tuple[int, str]], p: DerivePolicy
) -> None:
    results = timeline(events)
    obs = kept(results)
    immediate = outages_by_observation(
        obs, derive_spans(results, policy(failures=1, successes=p.successes_to_close))
    )
    for start, end, _ in outages_by_observation(obs, derive_spans(results, p)):
        assert any(s <= start and e == end for s, e, _ in immediate)


@FAST
@given(events_st, policy_st, st.data())
def test_snapshot_resume_and_close_until_match_one_batch_run(
    events: list[tuple[int, str]], p: DerivePolicy, data: st.DataObject
) -> None:
    results = timeline(events)
    cut = data.draw(st.integers(min_value=0, max_value=len(results)))
    machine = CheckStateMachine(p)
    final: list[Span] = []
    for i, r in enumerate(results):
        if i == cut:
            text = json.dumps(machine.snapshot().to_json())
            machine = CheckStateMachine(p, MachineSnapshot.from_json(json.loads(text)))
        final.extend(machine.feed(r))
        # A close_until bound no later than the next result's start.
        room = secs(results[i + 1].started_at) - secs(r.started_at) if i + 1 < len(results) else 300
        if data.draw(st.booleans()):
            now = r.started_at + timedelta(seconds=data.draw(st.integers(0, room)))
            final.extend(machine.close_until(now))
        timeline_now = final + machine.provisional()
        assert_well_formed(timeline_now)
    if cut == len(results):
        machine = CheckStateMachine(p, MachineSnapshot.from_json(machine.snapshot().to_json()))
    assert final + machine.provisional() == derive_spans(results, p)


def first_confirmation(obs: Sequence[tuple[int, str]], p: DerivePolicy) -> int | None:
    """Index of the observation that ends the first run confirming a state, if any:
    ``failures_to_open`` failures or ``successes_to_close`` successes in a row."""
    fails = oks = 0
    for k, (_, kind) in enumerate(obs):
        if kind.startswith("fail:"):
            fails, oks = fails + 1, 0
        elif kind in ("ok", "slow"):
            fails, oks = 0, oks + 1
        else:
            fails = oks = 0
        if fails >= p.failures_to_open or oks >= p.successes_to_close:
            return k
    return None


@FAST
@given(events_st, policy_st)
def test_unknown_until_the_first_confirmed_result(
    events: list[tuple[int, str]], p: DerivePolicy
) -> None:
    """Issue 11: before its first confirmed result a check is UNKNOWN (online and
    rebuilt), and charged downtime never starts before the first failing probe of a
    confirmed outage, nor exceeds the time after it."""
    results = timeline(events)
    obs = kept(results)
    confirmed_at = first_confirmation(obs, p)

    machine = CheckStateMachine(p)
    states = []
    for r in results:
        machine.feed(r)
        if kind_of(r) != "internal":
            states.append(machine.state)
    cut = len(obs) if confirmed_at is None else confirmed_at
    assert all(s in (State.UNKNOWN, MAINT) for s in states[:cut])
    if confirmed_at is not None:
        assert states[confirmed_at] is not State.UNKNOWN

    spans = derive_spans(results, p)
    first_fail_of_outage = None
    if confirmed_at is not None and obs[confirmed_at][1].startswith("fail:"):
        run_start = confirmed_at - p.failures_to_open + 1
        first_fail_of_outage = at(obs[run_start][0])
    for s in spans:
        if s.state is DOWN:
            # Every outage is back-dated to a failing probe, never before the first one
            # of the first confirmed outage (or of a later one).
            assert confirmed_at is not None
            first = first_fail_of_outage or at(obs[0][0])
            assert s.start >= first
    down = sum((s.duration for s in spans if s.state is DOWN), timedelta())
    if spans:
        first_fail = next((at(t) for t, k in obs if k.startswith("fail:")), None)
        if first_fail is None:
            assert down == timedelta()
        else:
            assert down <= spans[-1].end - first_fail
    if confirmed_at is None:  # never confirmed: nothing but UNKNOWN and MAINTENANCE
        assert all(s.state in (State.UNKNOWN, MAINT) for s in spans)


def test_a_version_1_snapshot_resumes_known_if_it_had_observed() -> None:
    """Snapshots written before unknown-until-known: an observed check was confirmed."""
    machine = CheckStateMachine(policy())
    machine.feed(res(0, "ok"))
    v2 = machine.snapshot().to_json()
    v1 = {k: v for k, v in v2.items() if k != "known"} | {"version": 1}
    resumed = CheckStateMachine(policy(), MachineSnapshot.from_json(v1))
    assert resumed.state is UP
    resumed.feed(res(30, TO))  # a blip of an up check reads UP, not UNKNOWN
    assert resumed.state is UP
    fresh = {**v1, "last_observation_at": None, "tail": [], "current": None, "last_state": None}
    assert not MachineSnapshot.from_json(fresh).known
    with pytest.raises(ValueError, match="known must be a boolean"):
        MachineSnapshot.from_json({**v2, "known": "yes"})
