"""Service timelines: rules over checks, vantage quorum, maintenance, monitor faults."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scd_monitor.catalog.models import QuorumRule, ServiceRule
from scd_monitor.sla.intervals import duration_in, intervals_of, total, union
from scd_monitor.sla.model import Period, Span, State
from scd_monitor.sla.timeline import (
    CheckTimeline,
    ServiceTimeline,
    canary_fault_spans,
    mass_failure_spans,
    monitor_fault_spans,
    network_path_fault_spans,
    service_timeline,
    vantage_blind,
)

T0 = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)
H = 120  # minutes in the test period
PERIOD = Period(T0, T0 + timedelta(minutes=H))
U, D, G, M, X = State.UP, State.DOWN, State.DEGRADED, State.MAINTENANCE, State.UNKNOWN


def t(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def mins(n: int) -> timedelta:
    return timedelta(minutes=n)


def sp(lo: int, hi: int, state: State, reason: str | None = None) -> Span:
    return Span(t(lo), t(hi), state, reason)


def check(
    check_id: str,
    *spans: Span,
    vantage: str = "v1",
    critical: bool = True,
    provider: str = "p",
) -> CheckTimeline:
    return CheckTimeline(check_id, provider, vantage, critical, list(spans))


def build(
    checks: Sequence[CheckTimeline],
    rule: ServiceRule = "any",
    *,
    vantage_quorum: int = 1,
    maintenance: Sequence[Span] = (),
    faults: Mapping[str, Sequence[Span]] | None = None,
    period: Period = PERIOD,
    expected: Mapping[str, bool] | None = None,
) -> ServiceTimeline:
    return service_timeline(
        checks,
        rule=rule,
        vantage_quorum=vantage_quorum,
        period=period,
        maintenance=maintenance,
        monitor_faults=faults or {},
        expected_checks=expected,
    )


def states(spans: Sequence[Span]) -> list[tuple[int, int, State]]:
    """``(start minute, end minute, state)``, touching spans of one state joined
    (service spans also split where the reason changes)."""
    out: list[tuple[int, int, State]] = []
    for s in spans:
        lo, hi = (s.start - T0) // mins(1), (s.end - T0) // mins(1)
        if out and out[-1][1] == lo and out[-1][2] is s.state:
            out[-1] = (out[-1][0], hi, s.state)
        else:
            out.append((lo, hi, s.state))
    return out


def at(spans: Sequence[Span], minute: int) -> State:
    for span in spans:
        if span.start <= t(minute) < span.end:
            return span.state
    return X


# --- rules over the checks of one vantage ------------------------------------------------


def test_rule_any_all_and_quorum_by_hand() -> None:
    # a DOWN [10,40), b DOWN [20,50), c DOWN [30,60); all UP elsewhere in [0,120).
    a = check("a", sp(0, 10, U), sp(10, 40, D), sp(40, 120, U))
    b = check("b", sp(0, 20, U), sp(20, 50, D), sp(50, 120, U))
    c = check("c", sp(0, 30, U), sp(30, 60, D), sp(60, 120, U))
    # any: DOWN wherever one is: [10, 60) = 50 min
    assert states(build([a, b, c], "any").raw) == [(0, 10, U), (10, 60, D), (60, 120, U)]
    # all: DOWN where all three are: [30, 40) = 10 min
    assert states(build([a, b, c], "all").raw) == [(0, 30, U), (30, 40, D), (40, 120, U)]
    # quorum 2: [20, 50) = 30 min
    assert states(build([a, b, c], QuorumRule(quorum=2)).raw) == [
        (0, 20, U),
        (20, 50, D),
        (50, 120, U),
    ]


def test_unknown_checks_make_the_service_unknown_only_when_they_could_make_it_down() -> None:
    a_up = check("a", sp(0, 120, U))
    a_down = check("a", sp(0, 120, D))
    b_gap = check("b", sp(0, 60, U))  # no data after minute 60
    # any: b unknown could be down → UNKNOWN
    assert states(build([a_up, b_gap], "any").raw) == [(0, 60, U), (60, 120, X)]
    # all: a is up, so the service cannot be down whatever b is → UP
    assert states(build([a_up, b_gap], "all").raw) == [(0, 120, U)]
    # all: a down, b unknown could complete it → UNKNOWN
    assert states(build([a_down, b_gap], "all").raw) == [(0, 60, U), (60, 120, X)]


def test_maintenance_checks_count_towards_down_but_report_maintenance() -> None:
    a_maint = check("a", sp(0, 120, M, "xroad 503"))
    b_up = check("b", sp(0, 120, U))
    b_down = check("b", sp(0, 120, D, "timeout"))
    # any: a in maintenance → MAINTENANCE (the condition holds only thanks to it)
    timeline = build([a_maint, b_up], "any")
    assert states(timeline.raw) == [(0, 120, M)]
    assert timeline.raw[0].reason == "observed: a: xroad 503"
    # any: b down on its own → DOWN, charged
    timeline = build([a_maint, b_down], "any")
    assert states(timeline.effective) == [(0, 120, D)]
    assert timeline.effective[0].reason == "b: timeout"
    # all: only one of them is really down → MAINTENANCE, not charged
    assert states(build([a_maint, b_down], "all").effective) == [(0, 120, M)]
    # all with b unknown: DOWN is impossible, MAINTENANCE or UP depends on b → UNKNOWN
    assert states(build([a_maint, check("b")], "all").raw) == [(0, 120, X)]


def test_non_critical_checks_only_degrade() -> None:
    a = check("a", sp(0, 120, U))
    extra = check("extra", sp(0, 30, U), sp(30, 60, D), sp(60, 90, G), critical=False)
    timeline = build([a, extra], "any")
    assert states(timeline.raw) == [(0, 30, U), (30, 90, G), (90, 120, U)]
    assert timeline.raw[1].reason == "extra"
    slow = check("a", sp(0, 50, U), sp(50, 70, G, "slow"), sp(70, 120, U))
    assert states(build([slow], "any").raw) == [(0, 50, U), (50, 70, G), (70, 120, U)]


def test_no_data_at_all_is_unknown_even_without_critical_checks() -> None:
    only_optional = check("o", sp(0, 60, U), critical=False)
    assert states(build([only_optional], "any").raw) == [(0, 60, U), (60, 120, X)]
    assert states(build([check("a")], "any").raw) == [(0, 120, X)]


def test_expected_checks_without_any_data_are_unknown() -> None:
    a = check("a", sp(0, 120, U))
    both = {"a": True, "b": True}
    # any: b never reported, it could be down → UNKNOWN
    assert states(build([a], "any", expected=both).raw) == [(0, 120, X)]
    # all: a is up, so b cannot make it down → UP
    assert states(build([a], "all", expected=both).raw) == [(0, 120, U)]
    # a missing non-critical check changes nothing
    assert states(build([a], "any", expected={"a": True, "opt": False}).raw) == [(0, 120, U)]
    with pytest.raises(ValueError, match="not one of the expected"):
        build([a], expected={"b": True})
    with pytest.raises(ValueError, match="quorum 3 exceeds"):
        build([a], QuorumRule(quorum=3), expected=both)


def test_without_expected_checks_a_quorum_shortfall_counts_as_unknown() -> None:
    # quorum 2 but only check a has data: the missing critical check is UNKNOWN, so
    # a DOWN is undecided (UNKNOWN) and a UP stays UP.
    a = check("a", sp(0, 60, D), sp(60, 120, U))
    assert states(build([a], QuorumRule(quorum=2)).raw) == [(0, 60, X), (60, 120, U)]


# --- vantages ------------------------------------------------------------------------------


def test_vantage_quorum_counts_only_vantages_with_fresh_data() -> None:
    # Three vantages, quorum 2. v1 sees DOWN [0,60); v2 sees DOWN [30,90);
    # v3 sees UP until 60 and has no data after.
    v1 = check("a", sp(0, 60, D), sp(60, 120, U), vantage="v1")
    v2 = check("a", sp(0, 30, U), sp(30, 90, D), sp(90, 120, U), vantage="v2")
    v3 = check("a", sp(0, 60, U), vantage="v3")
    timeline = build([v1, v2, v3], vantage_quorum=2)
    # [0,30): 1 of 3 fresh down → UP; [30,60): 2 of 3 → DOWN; [60,90): v2 down, v1 up,
    # v3 stale → 1 of 2 fresh, required 2 → UP; [90,120): UP.
    assert states(timeline.raw) == [(0, 30, U), (30, 60, D), (60, 120, U)]
    # Without v1's data after 60 the only fresh vantage (v2) decides: required = 1.
    v1_gap = check("a", sp(0, 60, D), vantage="v1")
    timeline = build([v1_gap, v2, v3], vantage_quorum=2)
    assert states(timeline.raw) == [(0, 30, U), (30, 90, D), (90, 120, U)]


def test_no_fresh_vantage_is_unknown() -> None:
    timeline = build([check("a", vantage="v1"), check("a", vantage="v2")], vantage_quorum=2)
    assert states(timeline.raw) == [(0, 120, X)]


def test_not_down_across_vantages_prefers_maintenance_then_degraded() -> None:
    v1 = check("a", sp(0, 120, D), vantage="v1")
    v2 = check("a", sp(0, 60, M), sp(60, 120, G), vantage="v2")
    v3 = check("a", sp(0, 120, U), vantage="v3")
    timeline = build([v1, v2, v3], vantage_quorum=2)
    assert states(timeline.raw) == [(0, 60, M), (60, 120, G)]


def test_a_monitor_fault_makes_that_vantage_unknown_in_the_effective_timeline() -> None:
    v1 = check("a", sp(0, 120, D, "timeout"), vantage="v1")
    v2 = check("a", sp(0, 120, D, "timeout"), vantage="v2")
    fault = [Span(t(0), t(60), X, "monitor_fault")]
    # v1 faulted on [0,60): v2 still sees it down → still charged
    timeline = build([v1, v2], faults={"v1": fault})
    assert states(timeline.effective) == [(0, 120, D)]
    assert states(timeline.vantages["v1"]) == [(0, 60, X), (60, 120, D)]
    # both faulted on [0,60): nothing fresh → UNKNOWN, reason monitor_fault
    timeline = build([v1, v2], faults={"v1": fault, "v2": fault})
    assert states(timeline.raw) == [(0, 120, D)]
    assert states(timeline.effective) == [(0, 60, X), (60, 120, D)]
    assert timeline.effective[0].reason == "monitor_fault"


def test_with_a_larger_vantage_quorum_a_fault_can_add_down_time() -> None:
    # Documented consequence of required = min(quorum, fresh): quorum 2, v1 DOWN,
    # v2 UP → UP; v2 faulted → only v1 fresh, required 1 → DOWN.
    v1 = check("a", sp(0, 120, D), vantage="v1")
    v2 = check("a", sp(0, 120, U), vantage="v2")
    timeline = build([v1, v2], vantage_quorum=2, faults={"v2": [sp(0, 30, X)]})
    assert states(timeline.raw) == [(0, 120, U)]
    assert states(timeline.effective) == [(0, 30, D), (30, 120, U)]


def test_maintenance_window_excludes_and_an_overrun_is_charged_from_its_end() -> None:
    # Down from 10 to 70; the window is [0, 45): charged [45, 70) = 25 min.
    a = check("a", sp(0, 10, U), sp(10, 70, D), sp(70, 120, U))
    timeline = build([a], maintenance=[Span(t(0), t(45), M, "upgrade")])
    assert states(timeline.raw) == [(0, 10, U), (10, 70, D), (70, 120, U)]
    assert states(timeline.effective) == [(0, 45, M), (45, 70, D), (70, 120, U)]
    assert timeline.effective[0].reason == "upgrade"
    assert duration_in(timeline.effective, D) == mins(25)


def test_inconsistent_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="critical at one vantage"):
        build([check("a", vantage="v1"), check("a", vantage="v2", critical=False)])
    with pytest.raises(ValueError, match="two timelines"):
        build([check("a"), check("a")])
    with pytest.raises(ValueError, match="overlapping"):
        build([check("a", sp(0, 10, U), sp(5, 20, D))])


# --- properties -------------------------------------------------------------------------


@st.composite
def timelines(draw: st.DrawFn) -> list[Span]:
    cuts = sorted(draw(st.sets(st.integers(0, H), max_size=7)))
    out = []
    for lo, hi in pairwise(cuts):
        state = draw(st.sampled_from([U, U, D, D, G, M, X, None]))
        if state is not None:
            out.append(sp(lo, hi, state))
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[CheckTimeline], ServiceRule, int]:
    n_checks = draw(st.integers(1, 3))
    n_vantages = draw(st.integers(1, 3))
    critical = [draw(st.booleans()) for _ in range(n_checks)]
    critical[0] = True
    checks = [
        check(f"c{i}", *draw(timelines()), vantage=f"v{v}", critical=critical[i])
        for v in range(n_vantages)
        for i in range(n_checks)
    ]
    n_critical = sum(critical)
    rules: list[ServiceRule] = ["any", "all"]
    rules += [QuorumRule(quorum=n) for n in range(1, n_critical + 1)]
    rule = draw(st.sampled_from(rules))
    return checks, rule, draw(st.integers(1, 3))


@st.composite
def windows(draw: st.DrawFn) -> list[Span]:
    items = draw(st.lists(st.tuples(st.integers(0, H - 1), st.integers(1, 60)), max_size=3))
    return [sp(a, min(H, a + n), M, "w") for a, n in items]


def oracle(checks: Sequence[CheckTimeline], rule: ServiceRule, quorum: int, minute: int) -> State:
    """The definition, restated per minute without any sweeping."""
    ids = sorted({c.check_id for c in checks})
    critical = {c.check_id: c.critical for c in checks}
    crit = [i for i in ids if critical[i]]
    k = rule.quorum if isinstance(rule, QuorumRule) else 1 if rule == "any" else len(crit)
    views = []
    for vantage in sorted({c.vantage for c in checks}):
        st_ = {c.check_id: at(c.spans, minute) for c in checks if c.vantage == vantage}
        got = {i: st_.get(i, X) for i in ids}
        d = sum(got[i] is D for i in crit)
        m = sum(got[i] is M for i in crit)
        u = sum(got[i] is X for i in crit)
        if all(s is X for s in got.values()):
            views.append(X)
        elif d >= k:
            views.append(D)
        elif d + u >= k:
            views.append(X)
        elif d + m >= k:
            views.append(M)
        elif d + m + u >= k:
            views.append(X)
        elif any(s is G for s in got.values()) or any(got[i] is D for i in ids if not critical[i]):
            views.append(G)
        else:
            views.append(U)
    fresh = [v for v in views if v is not X]
    if not fresh:
        return X
    if sum(v is D for v in fresh) >= min(quorum, len(fresh)):
        return D
    return M if M in fresh else G if G in fresh else U


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_the_sweep_agrees_with_the_definition_minute_by_minute(
    scenario: tuple[list[CheckTimeline], ServiceRule, int],
) -> None:
    checks, rule, quorum = scenario
    timeline = build(checks, rule, vantage_quorum=quorum)
    for spans in (timeline.raw, timeline.effective):
        assert spans[0].start == PERIOD.start and spans[-1].end == PERIOD.end
        assert all(a.end == b.start for a, b in pairwise(spans))
    for minute in range(H):
        assert at(timeline.raw, minute) == oracle(checks, rule, quorum, minute), minute
    assert timeline.raw == timeline.effective  # no faults, no windows


@given(
    st.lists(timelines(), min_size=1, max_size=4), st.lists(st.booleans(), min_size=4, max_size=4)
)
def test_one_vantage_any_rule_down_time_is_the_union_of_critical_down_time(
    spans: list[list[Span]], critical: list[bool]
) -> None:
    critical[0] = True
    checks = [check(f"c{i}", *s, critical=critical[i]) for i, s in enumerate(spans)]
    timeline = build(checks, "any")
    expected = union(*(intervals_of(c.spans, D) for c in checks if c.critical))
    assert intervals_of(timeline.raw, D) == expected


@settings(max_examples=100, deadline=None)
@given(scenarios(), windows(), windows())
def test_windows_and_faults_never_add_charged_time_with_vantage_quorum_one(
    scenario: tuple[list[CheckTimeline], ServiceRule, int],
    maintenance: list[Span],
    fault_spans: list[Span],
) -> None:
    checks, rule, _ = scenario
    vantages = sorted({c.vantage for c in checks})
    faults = {vantages[0]: [Span(s.start, s.end, X, "monitor_fault") for s in fault_spans]}
    plain = build(checks, rule)
    with_windows = build(checks, rule, maintenance=maintenance)
    with_faults = build(checks, rule, faults=faults)
    with_both = build(checks, rule, maintenance=maintenance, faults=faults)
    down = intervals_of(plain.effective, D)
    for timeline in (with_windows, with_faults, with_both):
        extra = intervals_of(timeline.effective, D)
        assert total(extra) <= total(down)
        assert union(extra, down) == down  # a subset, instant by instant
    # no instant inside an allowed window is ever charged
    window_time = union((s.start, s.end) for s in maintenance)
    for timeline in (with_windows, with_both):
        charged = intervals_of(timeline.effective, D)
        assert total(union(charged, window_time)) == total(charged) + total(window_time)
    # raw ignores both
    assert with_both.raw == plain.raw


@given(scenarios())
def test_all_rule_down_is_within_any_rule_down(
    scenario: tuple[list[CheckTimeline], ServiceRule, int],
) -> None:
    checks, _, quorum = scenario
    any_down = intervals_of(build(checks, "any", vantage_quorum=quorum).raw, D)
    all_down = intervals_of(build(checks, "all", vantage_quorum=quorum).raw, D)
    assert union(any_down, all_down) == any_down


# --- monitor faults ------------------------------------------------------------------------


def test_mass_failure_needs_enough_providers_and_a_large_enough_share() -> None:
    # Providers p1..p6, one check each, all with data on [0,120).
    # [10,20): p1,p2 down → 2 providers < 3 → no fault.
    # [30,40): p1,p2,p3 down → 3 ≥ 3 and 3/6 ≥ 0.5 → fault.
    # [50,60): p1,p2,p3 down but p4..p6 have no data → 3/3 → fault.
    down = {
        "p1": [(10, 20), (30, 40), (50, 60)],
        "p2": [(10, 20), (30, 40), (50, 60)],
        "p3": [(30, 40), (50, 60)],
    }
    checks = []
    for n in range(1, 7):
        provider = f"p{n}"
        marks = down.get(provider, [])
        spans = []
        cursor = 0
        for lo, hi in marks:
            spans += [sp(cursor, lo, U), sp(lo, hi, D)]
            cursor = hi
        spans.append(sp(cursor, 120, U))
        if provider in ("p4", "p5", "p6"):
            spans = [sp(0, 50, U), sp(60, 120, U)]
        checks.append(check(f"{provider}/s/c", *spans, provider=provider))
    faults = mass_failure_spans(checks)
    assert states(faults) == [(30, 40, X), (50, 60, X)]
    assert all(f.reason == "monitor_fault" for f in faults)
    # a stricter ratio: 3 of 6 is not ≥ 0.6, 3 of 3 is
    assert states(mass_failure_spans(checks, min_ratio=0.6)) == [(50, 60, X)]
    with pytest.raises(ValueError, match="one vantage"):
        mass_failure_spans([*checks, check("x", vantage="other")])


def test_canary_faults_are_down_time_and_gaps_after_first_data() -> None:
    # No data before 10 (not a fault), UP [10,30), DOWN [30,40), gap [40,50),
    # DEGRADED [50,70) (not a fault), UP [70,90), nothing after 90 (fault to period end).
    canary = check(
        "canary", sp(10, 30, U), sp(30, 40, D), sp(50, 70, G), sp(70, 90, U), provider="canary"
    )
    assert states(canary_fault_spans([canary], period=PERIOD)) == [
        (30, 50, X),
        (90, 120, X),
    ]
    assert states(canary_fault_spans([canary])) == [(30, 50, X)]
    # two canaries: the union of their faults
    other = check("canary2", sp(0, 60, U), sp(60, 65, D), sp(65, 120, U), provider="canary")
    assert states(canary_fault_spans([canary, other], period=PERIOD)) == [
        (30, 50, X),
        (60, 65, X),
        (90, 120, X),
    ]
    assert canary_fault_spans([check("never")], period=PERIOD) == []


def test_monitor_fault_spans_unions_sources() -> None:
    merged = monitor_fault_spans([sp(0, 10, X)], [sp(5, 20, X), sp(30, 40, X)])
    assert states(merged) == [(0, 20, X), (30, 40, X)]


# --- the built-in network self-check (issue 11) --------------------------------------


def on(host: str, check_id: str, *spans: Span, provider: str = "p") -> CheckTimeline:
    return CheckTimeline(check_id, provider, "v1", True, list(spans), host=host)


def test_vantage_blind_needs_everything_down_and_two_unreachable_hosts() -> None:
    kinds = ("dns", "connect")

    def blind(*views: tuple[str, State, str | None]) -> bool:
        return vantage_blind(views, min_hosts=2, error_kinds=kinds)

    assert blind(("a", D, "dns"), ("b", D, "connect"))
    assert blind(("a", D, "dns"), ("b", D, "dns"), ("c", D, "timeout"), ("d", X, None))
    assert blind(("a", D, "dns"), ("b", D, "connect"), ("c", M, "maintenance"))
    assert not blind(("a", D, "dns"), ("a", D, "connect"))  # one host: may be the provider's
    assert not blind(("a", D, "dns"), ("b", D, "connect"), ("c", U, None))  # c answers
    assert not blind(("a", D, "dns"), ("b", D, "connect"), ("c", G, "slow"))
    assert not blind(("a", D, "status"), ("b", D, "status"))  # they answered: not us
    assert not blind(("a", X, None), ("b", X, None))  # nothing known: nothing to excuse
    assert not blind()


def test_network_path_faults_cover_the_outage_and_settle_at_both_ends() -> None:
    """Three hosts of two providers fail by DNS one after the other (probes at different
    instants) and recover one after the other: the whole outage is a monitor fault."""
    a = on("a.example", "p/s/a", sp(0, 30, U), sp(30, 62, D, "dns"), sp(62, 120, U))
    b = on("b.example", "p/s/b", sp(0, 31, U), sp(31, 61, D, "connect"), sp(61, 120, U))
    c = on("c.example", "q/s/c", sp(0, 32, U), sp(32, 60, D, "dns"), sp(60, 120, U), provider="q")
    assert states(network_path_fault_spans([a, b, c])) == [(32, 60, X)]
    faults = network_path_fault_spans([a, b, c], settle=mins(3))
    assert states(faults) == [(29, 63, X)]
    assert all(f.reason == "monitor_fault" for f in faults)
    # Charged: nothing of the outage, with the settle; without it, the stragglers.
    timeline = build([a, b, c], faults={"v1": faults})
    assert duration_in(timeline.effective, D) == timedelta()
    bare = build([a, b, c], faults={"v1": network_path_fault_spans([a, b, c])})
    assert duration_in(bare.effective, D) > timedelta()
    # One host only, or another destination still answering: no fault.
    assert network_path_fault_spans([a]) == []
    d = on("d.example", "q/s/d", sp(0, 120, U), provider="q")
    assert network_path_fault_spans([a, b, c, d], settle=mins(3)) == []


def test_network_path_faults_ignore_destinations_that_answer_badly() -> None:
    a = on("a.example", "p/s/a", sp(0, 30, U), sp(30, 60, D, "status"))
    b = on("b.example", "p/s/b", sp(0, 30, U), sp(30, 60, D, "tls"))
    assert network_path_fault_spans([a, b]) == []
    assert states(network_path_fault_spans([a, b], error_kinds=("status", "tls"))) == [(30, 60, X)]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["h1", "h2", "h3"]),
            st.lists(
                st.tuples(
                    st.integers(0, 119),
                    st.integers(1, 30),
                    st.sampled_from([U, D, G, M, X]),
                    st.sampled_from(["dns", "connect", "timeout", "status"]),
                ),
                max_size=4,
            ),
        ),
        min_size=1,
        max_size=4,
    ),
    st.integers(0, 5),
)
def test_network_path_faults_are_exactly_the_blind_instants_widened(
    raw: list[tuple[str, list[tuple[int, int, State, str]]]], settle: int
) -> None:
    checks = []
    for n, (host, pieces) in enumerate(raw):
        spans: list[Span] = []
        cursor = 0
        for lo, length, state, why in sorted(pieces):
            lo = max(lo, cursor)
            hi = min(lo + length, H)
            if lo >= hi:
                continue
            spans.append(sp(lo, hi, state, why if state is D else None))
            cursor = hi
        checks.append(on(host, f"p/s/{n}", *spans))
    faults = network_path_fault_spans(checks, settle=mins(settle))
    blind_minutes = set()
    for minute in range(H):
        views = []
        for c in checks:
            for s in c.spans:
                if s.start <= t(minute) < s.end:
                    views.append((c.host or c.check_id, s.state, s.reason))
        if vantage_blind(views, min_hosts=2, error_kinds=("dns", "connect")):
            blind_minutes.add(minute)
    covered = {m for m in range(H) for f in faults if f.start <= t(m) < f.end}
    assert blind_minutes <= covered
    for m in covered - blind_minutes:  # only widening, within settle of a blind minute
        assert any(abs(m - b) <= settle for b in blind_minutes)
