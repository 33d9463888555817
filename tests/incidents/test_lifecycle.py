"""The lifecycle state machine: examples, then properties over any sequence of signals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from scd_monitor.catalog.incident_kinds import Severity, SignalKind
from scd_monitor.incidents.lifecycle import Phase, TrackerState, Transition, resolve, step
from scd_monitor.incidents.model import Signal
from tests.incidents.conftest import T0

R = timedelta(minutes=5)
Q = timedelta(minutes=30)

KINDS = {
    "outage": (SignalKind.OUTAGE, Severity.CRITICAL, timedelta(0)),
    "degradation": (SignalKind.DEGRADATION, Severity.MEDIUM, timedelta(minutes=10)),
    "sla_burn:1h": (SignalKind.SLA_AT_RISK, Severity.MEDIUM, timedelta(0)),
    "cert:a/b/c": (SignalKind.CERT_EXPIRING, Severity.MEDIUM, timedelta(0)),
}


def sig(key: str, *, severity: Severity | None = None) -> Signal:
    kind, default, after = KINDS[key]
    return Signal(
        provider="p",
        service="s",
        kind=kind,
        key=key,
        severity=severity or default,
        summary=key,
        after=after,
    )


def run(
    state: TrackerState, keys: list[str], minutes: float
) -> tuple[TrackerState, list[Transition]]:
    return step(
        state,
        [sig(k) for k in keys],
        T0 + timedelta(minutes=minutes),
        resolve_after=R,
        quiet_period=Q,
    )


def test_outage_opens_then_resolves_after_the_quiet_hold() -> None:
    s, ev = run(TrackerState(), ["outage"], 0)
    assert [(e.kind, e.reason, e.notify) for e in ev] == [("opened", "opened", True)]
    assert s.phase is Phase.OPEN and s.generation == 1
    s, ev = run(s, ["outage"], 1)
    assert ev == []
    s, ev = run(s, [], 2)
    assert [(e.kind, e.reason, e.notify) for e in ev] == [("updated", "cleared", False)]
    s, ev = run(s, [], 6)
    assert ev == [] and s.phase is Phase.RECOVERING
    s, ev = run(s, [], 7)
    assert [(e.kind, e.notify) for e in ev] == [("resolved", True)]
    assert s.cleared_at == T0 + timedelta(minutes=2)


def test_flapping_within_the_hold_is_one_incident_without_reports() -> None:
    s, _ = run(TrackerState(), ["outage"], 0)
    s, _ = run(s, [], 1)
    s, ev = run(s, ["outage"], 3)
    assert [(e.reason, e.notify) for e in ev] == [("recurred", False)]
    s, ev = run(s, [], 4)
    s, ev = run(s, [], 8)
    assert ev == []
    s, ev = run(s, [], 9)
    assert [e.kind for e in ev] == ["resolved"] and s.generation == 1


def test_reopening_within_the_quiet_period_continues_the_incident() -> None:
    s, _ = run(TrackerState(), ["outage"], 0)
    s, _ = run(s, [], 1)
    s, _ = run(s, [], 6)
    assert s.phase is Phase.RESOLVED
    s, ev = run(s, ["outage"], 20)
    assert [(e.kind, e.reason, e.generation) for e in ev] == [("updated", "reopened", 1)]
    s, _ = run(s, [], 21)
    s, _ = run(s, [], 27)
    s, ev = run(s, ["outage"], 27 + 31)
    assert [(e.kind, e.generation) for e in ev] == [("opened", 2)]


def test_degradation_needs_its_duration_and_keeps_its_onset() -> None:
    s, ev = run(TrackerState(), ["degradation"], 0)
    assert ev == [] and s.onsets["degradation"] == T0
    restored = TrackerState.from_json(s.to_json())
    s, ev = run(restored, ["degradation"], 9)
    assert ev == []
    s, ev = run(s, ["degradation"], 10)
    assert [e.kind for e in ev] == ["opened"] and s.started_at == T0


def test_escalation_and_new_condition_are_reported_updates() -> None:
    s, _ = run(TrackerState(), ["degradation"], 0)
    s, _ = run(s, ["degradation"], 10)
    s, ev = run(s, ["degradation", "outage"], 11)
    assert [(e.reason, e.notify) for e in ev] == [("escalated", True)]
    assert s.kind is SignalKind.OUTAGE and s.severity is Severity.CRITICAL
    s, ev = run(s, ["degradation", "outage", "cert:a/b/c"], 12)
    assert [(e.reason, e.notify) for e in ev] == [("new_condition", True)]
    assert s.kind is SignalKind.OUTAGE  # a medium condition does not change the type


def test_sla_echo_neither_holds_the_incident_nor_opens_another() -> None:
    s, _ = run(TrackerState(), ["outage", "sla_burn:1h"], 0)
    s, ev = run(s, ["sla_burn:1h"], 1)
    assert [e.reason for e in ev] == ["cleared"]
    s, ev = run(s, ["sla_burn:1h"], 7)
    assert [e.kind for e in ev] == ["resolved"]
    for minute in (8, 40, 100):
        s, ev = run(s, ["sla_burn:1h"], minute)
        assert ev == []
    s, ev = run(s, [], 101)
    s, ev = run(s, ["sla_burn:1h"], 102)
    assert [(e.kind, e.generation) for e in ev] == [("opened", 2)]


def test_an_sla_only_incident_lasts_while_the_condition_does() -> None:
    s, ev = run(TrackerState(), ["sla_burn:1h"], 0)
    assert [e.kind for e in ev] == ["opened"]
    s, ev = run(s, ["sla_burn:1h"], 30)
    assert ev == [] and s.phase is Phase.OPEN


def test_manual_resolution_suppresses_the_conditions_present_until_they_clear() -> None:
    s, _ = run(TrackerState(), ["outage"], 0)
    s, event = resolve(s, T0 + timedelta(minutes=1))
    assert event is not None and event.reason == "manual" and s.phase is Phase.RESOLVED
    s, ev = run(s, ["outage"], 2)
    assert ev == []
    s, ev = run(s, [], 3)
    s, ev = run(s, ["outage"], 4)
    assert [(e.reason, e.generation) for e in ev] == [("reopened", 1)]
    assert resolve(TrackerState(), T0)[1] is None


def test_no_data_is_no_news() -> None:
    s, _ = run(TrackerState(), ["outage"], 0)
    for minute in (1, 30, 300):
        s, ev = step(
            s, [], T0 + timedelta(minutes=minute), resolve_after=R, quiet_period=Q, hold=True
        )
        assert ev == [] and s.phase is Phase.OPEN
    s, ev = run(s, [], 301)
    assert [e.reason for e in ev] == ["cleared"]
    s, _ = run(TrackerState(), ["degradation"], 0)
    s, _ = step(s, [], T0 + timedelta(minutes=5), resolve_after=R, quiet_period=Q, hold=True)
    s, ev = run(s, ["degradation"], 10)  # the onset survived the gap in data
    assert [e.kind for e in ev] == ["opened"]


# -- properties -----------------------------------------------------------------------

STEPS = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=40),
        st.sets(st.sampled_from(sorted(KINDS))),
        st.booleans(),
        st.sampled_from([None, Severity.LOW, Severity.HIGH, Severity.CRITICAL]),
        st.booleans(),
    ),
    min_size=1,
    max_size=60,
)


@dataclass
class Ledger:
    """What a receiver of the events can tell about incidents."""

    open_generation: int | None = None
    last_generation: int = 0
    resolved_generation: int | None = None
    peak: int = -1

    def apply(self, e: Transition) -> None:
        if e.kind == "opened":
            assert self.open_generation is None, "opened while another is open"
            assert e.generation == self.last_generation + 1
            self.open_generation = self.last_generation = e.generation
            self.resolved_generation = None
            self.peak = e.severity.rank
        elif e.kind == "resolved":
            assert self.open_generation == e.generation, "resolved before being opened"
            self.open_generation = None
            self.resolved_generation = e.generation
        elif e.reason == "reopened":
            assert self.open_generation is None and self.resolved_generation == e.generation
            self.open_generation = e.generation
        else:
            assert self.open_generation == e.generation, "updated while not open"
        assert e.severity.rank >= self.peak, "severity went down within an incident"
        self.peak = e.severity.rank


@settings(max_examples=300, deadline=None)
@given(STEPS)
def test_any_sequence_gives_at_most_one_open_incident(steps: list) -> None:  # type: ignore[type-arg]
    state = TrackerState()
    ledger = Ledger()
    minute = 0.0
    for advance, keys, manual, severity, hold in steps:
        minute += advance
        now = T0 + timedelta(minutes=minute)
        if manual:
            state, event = resolve(state, now)
            if event is not None:
                ledger.apply(event)
        signals = [sig(k, severity=severity if k == "outage" else None) for k in sorted(keys)]
        restored = TrackerState.from_json(state.to_json())
        assert restored == state
        state, events = step(state, signals, now, resolve_after=R, quiet_period=Q, hold=hold)
        again, same = step(restored, signals, now, resolve_after=R, quiet_period=Q, hold=hold)
        if hold:
            assert not any(e.kind == "resolved" or e.reason == "cleared" for e in events)
        assert (again, same) == (state, events), "a restart would change the outcome"
        for event in events:
            ledger.apply(event)
        assert state.is_open == (ledger.open_generation is not None)
        if state.generation:
            assert state.started_at is not None and state.detected_at is not None
            assert state.started_at <= state.detected_at
        if state.phase is Phase.RESOLVED:
            assert state.cleared_at is not None and state.resolved_at is not None
            assert state.cleared_at <= state.resolved_at


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=0.01, max_value=30), min_size=2, max_size=40),
    st.sets(st.sampled_from(["degradation", "cert:a/b/c"])),
)
def test_a_problem_present_throughout_never_opens_two_incidents(
    gaps: list[float], others: set[str]
) -> None:
    state = TrackerState()
    minute = 0.0
    opened = 0
    for gap in gaps:
        minute += gap
        state, events = run(state, ["outage", *sorted(others)], minute)
        opened += sum(1 for e in events if e.kind == "opened")
        assert not any(e.kind == "resolved" for e in events)
    assert opened == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(min_value=0.01, max_value=20), st.booleans()), max_size=50))
def test_resolution_only_after_the_conditions_stayed_clear_for_resolve_after(
    steps: list[tuple[float, bool]],
) -> None:
    state = TrackerState()
    minute = 0.0
    last_present: float | None = None
    for gap, present in steps:
        minute += gap
        state, events = run(state, ["outage"] if present else [], minute)
        if present:
            last_present = minute
        for e in events:
            if e.kind == "resolved":
                assert last_present is not None
                assert minute - last_present >= R.total_seconds() / 60 - 1e-9
