"""ANS figures: hand-computed examples and properties (bounds, additivity, exclusions)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scd_monitor.sla.calendar import month_period
from scd_monitor.sla.engine import SlaFigures, outages, provider_figures, sla_figures
from scd_monitor.sla.latency import LatencyStats
from scd_monitor.sla.model import Period, Span, State
from scd_monitor.sla.timeline import CheckTimeline, ServiceTimeline, service_timeline

BOGOTA = ZoneInfo("America/Bogota")
NOV = month_period(2026, 11, BOGOTA)  # 2026-11-01T05:00Z .. 2026-12-01T05:00Z, 30 days
U, D, G, M, X = State.UP, State.DOWN, State.DEGRADED, State.MAINTENANCE, State.UNKNOWN


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def mins(n: float) -> timedelta:
    return timedelta(minutes=n)


def up_with(
    period: Period, *holes: tuple[datetime, datetime, State | None], reason: str | None = None
) -> list[Span]:
    """UP over ``period`` except the given (start, end, state) pieces (None = no data)."""
    spans: list[Span] = []
    cursor = period.start
    for start, end, state in sorted(holes, key=lambda h: h[0]):
        if start > cursor:
            spans.append(Span(cursor, start, U))
        if state is not None:
            spans.append(Span(start, end, state, reason if state is D else None))
        cursor = end
    if cursor < period.end:
        spans.append(Span(cursor, period.end, U))
    return spans


def one_check(
    spans: Sequence[Span],
    period: Period,
    *,
    maintenance: Sequence[Span] = (),
    faults: Sequence[Span] = (),
) -> ServiceTimeline:
    return service_timeline(
        [CheckTimeline("p/s/api", "p", "bog", True, list(spans))],
        rule="any",
        vantage_quorum=1,
        period=period,
        maintenance=maintenance,
        monitor_faults={"bog": faults},
    )


# --- hand-computed examples -----------------------------------------------------------------


def november_example() -> ServiceTimeline:
    """November 2026 in Bogotá (30 days = 43 200 min), one check, target 0.995:

    - DOWN 2026-11-10 07:00Z–07:54Z: 54 min, charged;
    - allowed window "upgrade" 2026-11-20 07:00Z–09:00Z (120 min); the check is DOWN
      07:30Z–09:30Z: 90 min excluded, the 30 min past the window's end charged;
    - no data 2026-11-25 05:00Z–06:00Z: 60 min UNKNOWN.
    """
    spans = up_with(
        NOV,
        (utc(2026, 11, 10, 7), utc(2026, 11, 10, 7, 54), D),
        (utc(2026, 11, 20, 7, 30), utc(2026, 11, 20, 9, 30), D),
        (utc(2026, 11, 25, 5), utc(2026, 11, 25, 6), None),
        reason="timeout",
    )
    window = Span(utc(2026, 11, 20, 7), utc(2026, 11, 20, 9), M, "upgrade")
    return one_check(spans, NOV, maintenance=[window])


def test_full_month_by_hand() -> None:
    timeline = november_example()
    f = sla_figures(
        timeline,
        period=NOV,
        now=utc(2026, 12, 2),
        target=0.995,
        latency=None,
        month_period=NOV,
    )
    assert not f.partial and f.period == NOV
    # maintenance 120, unknown 60 → eligible 43 200 − 180 = 43 020 min
    assert f.excluded_maintenance == mins(120)
    assert f.unknown == mins(60)
    assert f.eligible == mins(43_020)
    # charged 54 + 30 = 84 min; availability (43 020 − 84) / 43 020 = 42 936 / 43 020
    assert f.charged_downtime == mins(84)
    assert f.availability == float(Fraction(42_936, 43_020))  # 0.998047…
    assert f.met is True
    assert f.coverage == float(Fraction(43_140, 43_200))
    # two charged outages: MTTR 84 / 2 = 42 min; MTBF (43 020 − 84) / 2 = 21 468 min
    assert f.outage_count == 2 and f.outages_total == 2
    assert f.mttr == mins(42)
    assert f.mtbf == mins(21_468)
    first, second = f.outages
    assert (first.start, first.end, first.charged) == (
        utc(2026, 11, 10, 7),
        utc(2026, 11, 10, 7, 54),
        mins(54),
    )
    assert first.reason == "p/s/api: timeout"
    assert (second.start, second.end) == (utc(2026, 11, 20, 7, 30), utc(2026, 11, 20, 9, 30))
    assert second.duration == mins(120)
    assert second.charged == mins(30)  # from the window's end (09:00Z) to 09:30Z
    assert second.excluded == {"upgrade": mins(90)}
    # budget: 43 020 min × 0.005 = 215.1 min = 12 906 s; consumed 84 min
    budget = f.error_budget
    assert budget is not None
    assert budget.budget == timedelta(seconds=12_906)
    assert budget.consumed == mins(84)
    assert budget.remaining == timedelta(seconds=12_906 - 84 * 60)
    assert budget.remaining_ratio == float(1 - Fraction(84 * 60, 12_906))  # 0.6094…


def test_exactly_on_target_is_met() -> None:
    # 30 days, 216 min down, nothing excluded: (43 200 − 216) / 43 200 = 0.995 exactly.
    spans = up_with(NOV, (utc(2026, 11, 3), utc(2026, 11, 3, 3, 36), D))
    f = sla_figures(
        one_check(spans, NOV), period=NOV, now=utc(2027, 1, 1), target=0.995, latency=None
    )
    assert f.charged_downtime == mins(216)
    assert f.met is True
    one_more_second = up_with(NOV, (utc(2026, 11, 3), utc(2026, 11, 3, 3, 36, 1), D))
    f = sla_figures(
        one_check(one_more_second, NOV), period=NOV, now=utc(2027, 1, 1), target=0.995, latency=None
    )
    assert f.met is False


def test_error_budget_for_a_30_day_month_is_216_minutes() -> None:
    # (1 − 0.995) × 30 d = 0.005 × 43 200 min = 216 min.
    f = sla_figures(
        one_check(up_with(NOV), NOV),
        period=NOV,
        now=NOV.end,
        target=0.995,
        latency=None,
        month_period=NOV,
    )
    assert f.error_budget is not None
    assert f.error_budget.budget == mins(216)
    assert f.error_budget.remaining_ratio == 1.0


def test_month_to_date_counts_the_rest_of_the_month_as_eligible() -> None:
    # now = 2026-11-16T05:00Z: 15 days elapsed, all measured, 54 min down. The budget is
    # over the whole 30-day month: 216 min; 54 consumed → 1 − 54/216 = 0.75 remaining.
    now = utc(2026, 11, 16, 5)
    elapsed = Period(NOV.start, now)
    spans = up_with(elapsed, (utc(2026, 11, 5), utc(2026, 11, 5, 0, 54), D))
    f = sla_figures(
        one_check(spans, NOV), period=NOV, now=now, target=0.995, latency=None, month_period=NOV
    )
    assert f.partial
    assert f.period == elapsed and f.requested_end == NOV.end
    assert f.unknown == timedelta(0)  # time after now is not evaluated, not UNKNOWN
    assert f.eligible == timedelta(days=15)
    budget = f.error_budget
    assert budget is not None
    assert budget.eligible == timedelta(days=30)
    assert budget.budget == mins(216)
    assert budget.remaining_ratio == 0.75
    assert f.to_json()["period"]["partial"] is True


def test_burn_rates_by_hand() -> None:
    # target 0.99 (budget 1 %). now = 2026-11-16T05:00Z, DOWN for the last 36 min
    # (04:24Z → now, ongoing), UP before since the 1st.
    #   1 h: (36/60)/0.01 = 60.0     6 h: (36/360)/0.01 = 10.0
    #   1 d: (36/1440)/0.01 = 2.5    3 d: (36/4320)/0.01 = 0.8333…
    now = utc(2026, 11, 16, 5)
    spans = up_with(Period(NOV.start, now), (utc(2026, 11, 16, 4, 24), now, D))
    f = sla_figures(one_check(spans, NOV), period=NOV, now=now, target=0.99, latency=None)
    rates = [b.rate for b in f.burn_rates]
    assert rates == [60.0, 10.0, 2.5, float(Fraction(36, 4320) / Fraction(1, 100))]
    assert f.burn_rates[0].charged == mins(36) and f.burn_rates[0].eligible == mins(60)
    (outage,) = f.outages
    assert outage.end is None  # still down at now
    assert outage.duration == mins(36)
    assert f.to_json()["outages"][0]["end"] is None


def test_burn_rate_windows_without_eligible_time_are_none() -> None:
    # Maintenance over the whole last hour, then data stops: 1 h window has nothing
    # eligible. A burn window reaching before the timeline counts that part as UNKNOWN.
    now = utc(2026, 11, 16, 5)
    spans = up_with(Period(NOV.start, now))
    window = Span(utc(2026, 11, 16, 4), now, M, "night")
    f = sla_figures(
        one_check(spans, NOV, maintenance=[window]), period=NOV, now=now, target=0.99, latency=None
    )
    assert f.burn_rates[0].rate is None
    assert f.burn_rates[1].rate == 0.0 and f.burn_rates[1].eligible == timedelta(hours=5)
    early = utc(2026, 11, 1, 6)  # one hour into the month; the 3 d window reaches October
    f = sla_figures(
        one_check(up_with(Period(NOV.start, early)), NOV),
        period=NOV,
        now=early,
        target=0.99,
        latency=None,
    )
    assert f.burn_rates[3].eligible == timedelta(hours=1)


def test_outages_separated_by_unknown_or_maintenance_are_one() -> None:
    # DOWN [0,10), no data [10,20), DOWN [20,30), MAINT (observed) [30,35), DOWN [35,40),
    # UP [40,50), DOWN [50,55): two outages; the first lasts 40 min, 25 charged.
    t0 = NOV.start
    period = Period(t0, t0 + mins(60))

    def s(a: int, b: int, state: State) -> Span:
        return Span(t0 + mins(a), t0 + mins(b), state)

    spans = [
        s(0, 10, D),
        s(20, 30, D),
        s(30, 35, M),
        s(35, 40, D),
        s(40, 50, U),
        s(50, 55, D),
        s(55, 60, U),
    ]
    f = sla_figures(
        one_check(spans, period), period=period, now=NOV.end, target=0.995, latency=None
    )
    first, second = f.outages
    assert (first.start, first.end, first.duration) == (t0, t0 + mins(40), mins(40))
    assert first.charged == mins(25)
    assert first.excluded == {"observed: p/s/api": mins(5), "unknown": mins(10)}
    assert (second.duration, second.charged) == (mins(5), mins(5))
    assert f.charged_downtime == mins(30)
    assert f.mttr == mins(15)
    # eligible = 60 − 10 unknown − 5 maintenance = 45; MTBF = (45 − 30) / 2 = 7.5 min
    assert f.mtbf == mins(7.5)


def test_an_outage_entirely_inside_a_window_is_reported_but_not_counted() -> None:
    t0 = NOV.start
    period = Period(t0, t0 + mins(60))
    spans = up_with(period, (t0 + mins(10), t0 + mins(20), D))
    f = sla_figures(
        one_check(spans, period, maintenance=[Span(t0, t0 + mins(30), M, "planned")]),
        period=period,
        now=NOV.end,
        target=0.995,
        latency=None,
    )
    assert f.outages_total == 1 and f.outage_count == 0
    assert f.outages[0].excluded == {"planned": mins(10)}
    assert f.mttr is None and f.mtbf is None
    assert f.availability == 1.0


def test_latency_figures_pass_through() -> None:
    stats = LatencyStats.of([0.1] * 19 + [3.0], timedelta(seconds=2))
    f = sla_figures(
        one_check(up_with(NOV), NOV), period=NOV, now=NOV.end, target=0.995, latency=stats
    )
    assert f.latency_compliance == 0.95
    assert f.latency_p95 == 0.105838
    assert f.latency_samples == 20


def test_nothing_eligible_gives_no_availability() -> None:
    f = sla_figures(one_check([], NOV), period=NOV, now=NOV.end, target=0.995, latency=None)
    assert f.availability is None and f.met is None
    assert f.unknown == timedelta(days=30) and f.coverage == 0.0
    before = sla_figures(
        one_check([], NOV), period=NOV, now=utc(2026, 10, 1), target=0.995, latency=None
    )
    assert before.period.duration == timedelta(0) and before.coverage is None
    with pytest.raises(ValueError, match="target"):
        sla_figures(one_check([], NOV), period=NOV, now=NOV.end, target=0.0, latency=None)


def test_json_is_stable_and_in_seconds() -> None:
    def figures() -> dict[str, object]:
        return sla_figures(
            november_example(),
            period=NOV,
            now=utc(2026, 12, 2),
            target=0.995,
            latency=LatencyStats.of([0.2, 0.3], timedelta(seconds=2)),
            month_period=NOV,
        ).to_json()

    a, b = figures(), figures()
    assert json.dumps(a) == json.dumps(b)
    assert list(a) == [
        "period",
        "now",
        "target",
        "availability",
        "met",
        "eligible_seconds",
        "charged_downtime_seconds",
        "excluded_maintenance_seconds",
        "unknown_seconds",
        "coverage",
        "outage_count",
        "outages_total",
        "mttr_seconds",
        "mtbf_seconds",
        "latency",
        "error_budget",
        "burn_rates",
        "outages",
    ]
    assert a["period"] == {
        "start": "2026-11-01T05:00:00Z",
        "end": "2026-12-01T05:00:00Z",
        "requested_end": "2026-12-01T05:00:00Z",
        "partial": False,
    }
    assert a["charged_downtime_seconds"] == 5040 and isinstance(a["eligible_seconds"], int)
    assert a["error_budget"]["budget_seconds"] == 12_906  # type: ignore[index]
    assert a["outages"][1]["excluded_seconds"] == {"upgrade": 5400}  # type: ignore[index]
    assert [w["window_seconds"] for w in a["burn_rates"]] == [3600, 21600, 86400, 259200]  # type: ignore[attr-defined]


def test_provider_figures_weight_by_eligible_time() -> None:
    # Service A: 43 200 eligible min, 216 down (0.995). Service B: half the month
    # UNKNOWN, 21 600 eligible, 0 down (1.0). Provider: (64 800 − 216) / 64 800.
    a_spans = up_with(NOV, (utc(2026, 11, 3), utc(2026, 11, 3, 3, 36), D))
    b_spans = up_with(NOV, (utc(2026, 11, 16, 5), NOV.end, None))
    fa = sla_figures(one_check(a_spans, NOV), period=NOV, now=NOV.end, target=0.995, latency=None)
    fb = sla_figures(one_check(b_spans, NOV), period=NOV, now=NOV.end, target=0.999, latency=None)
    p = provider_figures([fa, fb])
    assert p.eligible == mins(64_800) and p.charged_downtime == mins(216)
    assert p.availability == float(Fraction(64_800 - 216, 64_800))
    assert p.coverage == 0.75
    assert (p.met, p.missed, p.undetermined) == (2, 0, 0)
    assert next(iter(p.to_json())) == "services"


# --- properties -----------------------------------------------------------------------------

H = 240
T0 = NOV.start
WINDOW = Period(T0, T0 + mins(H))


def at(minute: int) -> datetime:
    return T0 + mins(minute)


@st.composite
def check_spans(draw: st.DrawFn) -> list[Span]:
    cuts = sorted(draw(st.sets(st.integers(0, H), max_size=9)))
    out = []
    for lo, hi in pairwise(cuts):
        state = draw(st.sampled_from([U, U, D, D, G, M, X, None]))
        if state is not None:
            out.append(Span(at(lo), at(hi), state))
    return out


pieces = st.lists(st.tuples(st.integers(0, H - 1), st.integers(1, 90)), max_size=3)


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[CheckTimeline], list[Span], dict[str, list[Span]]]:
    n_vantages = draw(st.integers(1, 2))
    checks = [
        CheckTimeline(f"c{i}", "p", f"v{v}", i == 0 or draw(st.booleans()), draw(check_spans()))
        for v in range(n_vantages)
        for i in range(draw(st.integers(1, 2)) if v == 0 else 1)
    ]
    windows = [Span(at(a), at(min(H, a + n)), M, "w") for a, n in draw(pieces)]
    faults = {"v0": [Span(at(a), at(min(H, a + n)), X, "monitor_fault") for a, n in draw(pieces)]}
    return checks, windows, faults


def timeline_of(
    checks: list[CheckTimeline],
    windows: Sequence[Span] = (),
    faults: dict[str, list[Span]] | None = None,
    period: Period = WINDOW,
) -> ServiceTimeline:
    return service_timeline(
        checks,
        rule="any",
        vantage_quorum=1,
        period=period,
        maintenance=windows,
        monitor_faults=faults or {},
    )


def figures(
    timeline: ServiceTimeline, period: Period = WINDOW, now: datetime = NOV.end
) -> SlaFigures:
    return sla_figures(timeline, period=period, now=now, target=0.99, latency=None)


@settings(max_examples=120, deadline=None)
@given(cases(), st.integers(0, H))
def test_bounds_partition_and_additivity(
    case: tuple[list[CheckTimeline], list[Span], dict[str, list[Span]]], split: int
) -> None:
    checks, windows, faults = case
    timeline = timeline_of(checks, windows, faults)
    whole = figures(timeline)
    assert whole.availability is None or 0 <= whole.availability <= 1
    assert whole.eligible + whole.excluded_maintenance + whole.unknown == WINDOW.duration
    assert timedelta(0) <= whole.charged_downtime <= whole.eligible
    # every charged minute is in exactly one outage; each outage is fully explained
    assert sum((o.charged for o in whole.outages), timedelta(0)) == whole.charged_downtime
    for o in whole.outages:
        assert o.charged + sum(o.excluded.values(), timedelta(0)) == o.duration
    # [a, m) + [m, b) = [a, b), whether sliced from one timeline or built separately
    left_p, right_p = Period(T0, at(split)), Period(at(split), WINDOW.end)
    left, right = figures(timeline, left_p), figures(timeline, right_p)
    built_left = figures(timeline_of(checks, windows, faults, left_p), left_p)
    built_right = figures(timeline_of(checks, windows, faults, right_p), right_p)
    for a, b in ((left, right), (built_left, built_right)):
        assert a.charged_downtime + b.charged_downtime == whole.charged_downtime
        assert a.eligible + b.eligible == whole.eligible
        assert a.excluded_maintenance + b.excluded_maintenance == whole.excluded_maintenance
        assert a.unknown + b.unknown == whole.unknown


@settings(max_examples=120, deadline=None)
@given(cases())
def test_maintenance_and_monitor_faults_never_add_charged_downtime(
    case: tuple[list[CheckTimeline], list[Span], dict[str, list[Span]]],
) -> None:
    checks, windows, faults = case
    plain = figures(timeline_of(checks)).charged_downtime
    assert figures(timeline_of(checks, windows)).charged_downtime <= plain
    assert figures(timeline_of(checks, faults=faults)).charged_downtime <= plain
    assert figures(timeline_of(checks, windows, faults)).charged_downtime <= plain


@settings(max_examples=60, deadline=None)
@given(cases(), st.integers(0, H))
def test_month_to_date_equals_the_period_cut_at_now(
    case: tuple[list[CheckTimeline], list[Span], dict[str, list[Span]]], cut: int
) -> None:
    checks, windows, faults = case
    timeline = timeline_of(checks, windows, faults)
    mtd = figures(timeline, now=at(cut))
    closed = figures(timeline, period=Period(T0, at(cut)))
    assert mtd.partial == (cut < H)
    assert (mtd.charged_downtime, mtd.eligible, mtd.unknown) == (
        closed.charged_downtime,
        closed.eligible,
        closed.unknown,
    )


def test_outages_function_directly() -> None:
    t0 = NOV.start
    period = Period(t0, t0 + mins(30))
    raw = [Span(t0, t0 + mins(30), D, "x")]
    effective = [Span(t0, t0 + mins(10), X, "monitor_fault"), Span(t0 + mins(10), t0 + mins(30), D)]
    (outage,) = outages(raw, effective, period=period, ongoing_at=period.end)
    assert outage.end is None
    assert outage.charged == mins(20) and outage.excluded == {"monitor_fault": mins(10)}
    assert outage.reason == "x"


@given(
    st.integers(0, 100),
    st.integers(1, 60),
    st.integers(0, 59),
    st.integers(1, 60),
)
def test_an_outage_that_overruns_its_window_is_charged_from_the_window_end(
    window_start: int, window_length: int, into_window: int, overrun: int
) -> None:
    # The check goes DOWN inside the window and stays down ``overrun`` minutes past its
    # end: exactly ``overrun`` minutes are charged, as one outage.
    into_window = min(into_window, window_length - 1)
    w_lo, w_hi = at(window_start), at(window_start + window_length)
    down_from, down_to = at(window_start + into_window), w_hi + mins(overrun)
    spans = up_with(WINDOW, (down_from, down_to, D))
    timeline = one_check(spans, WINDOW, maintenance=[Span(w_lo, w_hi, M, "w")])
    f = figures(timeline)
    assert f.charged_downtime == mins(overrun)
    (outage,) = f.outages
    assert (outage.start, outage.end) == (down_from, down_to)
    assert outage.charged == mins(overrun)
    assert outage.excluded == {"w": w_hi - down_from}
