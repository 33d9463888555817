"""ANS figures of a service over a period, from its :class:`ServiceTimeline`.

Pure functions: the time (``now``) is a parameter. Durations are exact ``timedelta``
arithmetic on UTC instants (microsecond resolution); ratios are computed from exact
fractions of microseconds and converted to ``float`` once, at the end (so they are
correctly rounded and identical on every platform). ``target`` is read as the decimal
it prints as (``0.995`` is 199/200), so ``1 - target`` is exact too.

Definitions, for the *evaluated* period ``[period.start, min(period.end, now))``
(``partial`` when ``now < period.end``: month-to-date):

- ``excluded_maintenance``: effective MAINTENANCE time (allowed windows and checks
  observed in maintenance); ``unknown``: effective UNKNOWN time (no data, monitor
  faults, or time the timeline does not cover);
- ``eligible`` = evaluated - maintenance - unknown; ``charged_downtime`` = effective
  DOWN time; ``availability`` = (eligible - charged) / eligible, ``None`` when nothing
  is eligible; ``met`` = availability ≥ target, compared exactly;
- ``coverage`` = (evaluated - unknown) / evaluated: the share of the period whose
  state is accounted for (measured, or excluded by an allowed window);
- outages: see :func:`outages`; ``outage_count`` counts those with charged time;
  ``mttr`` = their mean charged duration; ``mtbf`` = (eligible - charged) /
  ``outage_count``, the mean eligible up-time between charged outages; both ``None``
  without a charged outage and rounded to the microsecond (half to even);
- error budget (when ``month_period`` is given): the month's eligible time, counting
  time after ``now`` as eligible, times ``1 - target``; ``consumed`` = the month's
  charged downtime up to ``now``; ``remaining_ratio`` = 1 - consumed / budget (negative
  when overspent; ``None`` when the budget is zero, i.e. target 1);
- burn rate over a window ``w``: over ``[now - w, now)``, (charged / eligible) /
  (1 - target); ``None`` without eligible time in the window or with target 1. A burn
  rate of 1 spends the budget exactly over the period; 60 spends it 60 times faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from scd_monitor.sla.intervals import duration_in, fill_gaps, segments, to_utc
from scd_monitor.sla.latency import LatencyStats
from scd_monitor.sla.model import Period, Span, State
from scd_monitor.sla.timeline import ServiceTimeline
from scd_monitor.timefmt import iso_utc

__all__ = [
    "BURN_WINDOWS",
    "BurnRate",
    "ErrorBudget",
    "Outage",
    "ProviderFigures",
    "SlaFigures",
    "outages",
    "provider_figures",
    "sla_figures",
]

BURN_WINDOWS: tuple[timedelta, ...] = (
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
    timedelta(days=3),
)

_ZERO = timedelta(0)
_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Outage:
    """One outage within the evaluated period (cut to it; see :func:`outages`)."""

    start: datetime
    end: datetime | None
    """``None`` while ongoing: DOWN up to ``now`` in a month-to-date evaluation."""
    duration: timedelta
    """From ``start`` to ``end`` (or to ``now``), gaps inside included."""
    charged: timedelta
    excluded: dict[str, timedelta]
    """The rest of ``duration`` by why it is not charged: a maintenance reason,
    ``maintenance``, ``monitor_fault`` or ``unknown``. ``charged + sum(excluded) ==
    duration``."""
    reason: str | None
    """The reasons of its DOWN spans (the checks and their errors), ``; ``-joined."""


@dataclass(frozen=True, slots=True)
class BurnRate:
    window: timedelta
    charged: timedelta
    eligible: timedelta
    rate: float | None


@dataclass(frozen=True, slots=True)
class ErrorBudget:
    month: Period
    eligible: timedelta
    """The month's eligible time so far plus all of its time after ``now``."""
    budget: timedelta
    consumed: timedelta
    remaining: timedelta
    """``budget - consumed``; negative when overspent."""
    remaining_ratio: float | None


@dataclass(frozen=True, slots=True)
class SlaFigures:
    """Everything the ANS report says about one service over one period."""

    period: Period
    """The evaluated period: ends at ``min(requested end, now)``."""
    requested_end: datetime
    partial: bool
    """True when ``now`` cut the period short (month-to-date)."""
    now: datetime
    target: float
    availability: float | None
    met: bool | None
    eligible: timedelta
    charged_downtime: timedelta
    excluded_maintenance: timedelta
    unknown: timedelta
    coverage: float | None
    outages: tuple[Outage, ...]
    outage_count: int
    """Outages with charged time."""
    outages_total: int
    mttr: timedelta | None
    mtbf: timedelta | None
    latency_samples: int
    latency_compliance: float | None
    latency_p95: float | None
    """Seconds, conservative (bucket upper bound); ``math.inf`` beyond 60 s."""
    error_budget: ErrorBudget | None
    burn_rates: tuple[BurnRate, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: stable key order, seconds as numbers, UTC ISO-8601 times.

        Whole seconds are integers, others floats; a p95 beyond the last bucket is the
        string ``"+Inf"``. ``json.dumps`` of it is byte-identical for the same input.
        """
        budget = self.error_budget
        return {
            "period": {
                "start": iso_utc(self.period.start),
                "end": iso_utc(self.period.end),
                "requested_end": iso_utc(self.requested_end),
                "partial": self.partial,
            },
            "now": iso_utc(self.now),
            "target": self.target,
            "availability": self.availability,
            "met": self.met,
            "eligible_seconds": _secs(self.eligible),
            "charged_downtime_seconds": _secs(self.charged_downtime),
            "excluded_maintenance_seconds": _secs(self.excluded_maintenance),
            "unknown_seconds": _secs(self.unknown),
            "coverage": self.coverage,
            "outage_count": self.outage_count,
            "outages_total": self.outages_total,
            "mttr_seconds": _secs(self.mttr),
            "mtbf_seconds": _secs(self.mtbf),
            "latency": {
                "samples": self.latency_samples,
                "compliance": self.latency_compliance,
                "p95_seconds": _number(self.latency_p95),
            },
            "error_budget": None
            if budget is None
            else {
                "month_start": iso_utc(budget.month.start),
                "month_end": iso_utc(budget.month.end),
                "eligible_seconds": _secs(budget.eligible),
                "budget_seconds": _secs(budget.budget),
                "consumed_seconds": _secs(budget.consumed),
                "remaining_seconds": _secs(budget.remaining),
                "remaining_ratio": budget.remaining_ratio,
            },
            "burn_rates": [
                {
                    "window_seconds": _secs(b.window),
                    "charged_seconds": _secs(b.charged),
                    "eligible_seconds": _secs(b.eligible),
                    "rate": b.rate,
                }
                for b in self.burn_rates
            ],
            "outages": [
                {
                    "start": iso_utc(o.start),
                    "end": None if o.end is None else iso_utc(o.end),
                    "duration_seconds": _secs(o.duration),
                    "charged_seconds": _secs(o.charged),
                    "excluded_seconds": {k: _secs(o.excluded[k]) for k in sorted(o.excluded)},
                    "reason": o.reason,
                }
                for o in self.outages
            ],
        }


def sla_figures(
    timeline: ServiceTimeline,
    *,
    period: Period,
    now: datetime,
    target: float,
    latency: LatencyStats | None,
    month_timeline: ServiceTimeline | None = None,
    month_period: Period | None = None,
    burn_windows: Sequence[timedelta] = BURN_WINDOWS,
    burn_timeline: ServiceTimeline | None = None,
) -> SlaFigures:
    """The figures of one service over ``period`` as of ``now`` (module docstring).

    ``timeline`` may cover more or less than ``period``: it is cut to the evaluated
    period and anything it does not cover is UNKNOWN. The error budget uses
    ``month_timeline`` (default ``timeline``) over ``month_period`` and is ``None``
    without ``month_period``. Burn rates use ``burn_timeline``, else
    ``month_timeline``, else ``timeline``; pass one that reaches back
    ``max(burn_windows)`` before ``now`` (early in a month, into the previous one),
    or the uncovered part of a window counts as UNKNOWN (not eligible).
    """
    exact_target = _exact_target(target)
    now = to_utc(now)
    start, requested_end = to_utc(period.start), to_utc(period.end)
    evaluated = Period(start, max(start, min(requested_end, now)))
    effective = fill_gaps(timeline.effective, evaluated)
    raw = fill_gaps(timeline.raw, evaluated)

    charged = duration_in(effective, State.DOWN)
    maintenance = duration_in(effective, State.MAINTENANCE)
    unknown = duration_in(effective, State.UNKNOWN)
    eligible = evaluated.duration - maintenance - unknown
    availability: float | None = None
    met: bool | None = None
    if eligible > _ZERO:
        ratio = _ratio(eligible - charged, eligible)
        availability = float(ratio)
        met = ratio >= exact_target
    coverage = (
        float(_ratio(evaluated.duration - unknown, evaluated.duration))
        if evaluated.duration > _ZERO
        else None
    )

    found = outages(
        raw, effective, period=evaluated, ongoing_at=now if now < requested_end else None
    )
    charged_outages = [o for o in found if o.charged > _ZERO]
    count = len(charged_outages)
    mttr = sum((o.charged for o in charged_outages), _ZERO) / count if count else None
    mtbf = (eligible - charged) / count if count else None

    budget: ErrorBudget | None = None
    if month_period is not None:
        budget = _error_budget(month_timeline or timeline, month_period, now, exact_target)
    burn_source = burn_timeline or month_timeline or timeline
    burns = tuple(_burn_rate(burn_source, w, now, exact_target) for w in burn_windows)

    return SlaFigures(
        period=evaluated,
        requested_end=requested_end,
        partial=now < requested_end,
        now=now,
        target=target,
        availability=availability,
        met=met,
        eligible=eligible,
        charged_downtime=charged,
        excluded_maintenance=maintenance,
        unknown=unknown,
        coverage=coverage,
        outages=tuple(found),
        outage_count=count,
        outages_total=len(found),
        mttr=mttr,
        mtbf=mtbf,
        latency_samples=latency.ok_count if latency is not None else 0,
        latency_compliance=latency.compliance if latency is not None else None,
        latency_p95=latency.p95 if latency is not None else None,
        error_budget=budget,
        burn_rates=burns,
    )


def outages(
    raw: Sequence[Span],
    effective: Sequence[Span],
    *,
    period: Period,
    ongoing_at: datetime | None = None,
) -> list[Outage]:
    """The outages of ``period``: maximal DOWN runs, with their charged part.

    An instant is *down* when ``raw`` or ``effective`` is DOWN there (effective is
    DOWN where raw is not only where a monitor fault shrinks the vantage quorum; see
    :mod:`scd_monitor.sla.timeline`), so every charged instant lies in an outage and
    the outages' charged times add up to the charged downtime. An outage runs from
    the first down instant to the last one of a stretch in which the instants that
    are not down are all raw UNKNOWN or MAINTENANCE (one outage, gaps included);
    raw UP or DEGRADED ends it. Outages are cut to ``period``: one that began before
    it starts at ``period.start``. ``charged`` is its effective DOWN time. When
    ``ongoing_at`` equals ``period.end`` (month-to-date) an outage still down at
    that instant has ``end=None``.
    """
    start, end = to_utc(period.start), to_utc(period.end)
    clipped = Period(start, end)
    raw_spans = fill_gaps(raw, clipped)
    eff_spans = fill_gaps(effective, clipped)
    found: list[Outage] = []
    group: list[tuple[datetime, datetime, Span, Span]] = []
    pending: list[tuple[datetime, datetime, Span, Span]] = []
    for lo, hi, (r, e) in segments(clipped, [raw_spans, eff_spans]):
        assert r is not None and e is not None  # both cover the period
        if r.state is State.DOWN or e.state is State.DOWN:
            group.extend(pending)
            pending.clear()
            group.append((lo, hi, r, e))
        elif r.state in (State.UNKNOWN, State.MAINTENANCE):
            if group:
                pending.append((lo, hi, r, e))
        else:
            if group:
                found.append(_outage(group, end, ongoing_at))
            group, pending = [], []
    if group:
        found.append(_outage(group, end, ongoing_at))
    return found


def _outage(
    group: list[tuple[datetime, datetime, Span, Span]],
    period_end: datetime,
    ongoing_at: datetime | None,
) -> Outage:
    start, end = group[0][0], group[-1][1]
    charged = _ZERO
    excluded: dict[str, timedelta] = {}
    reasons: list[str] = []
    for lo, hi, r, e in group:
        if e.state is State.DOWN:
            charged += hi - lo
        else:
            key = _excluded_key(e)
            excluded[key] = excluded.get(key, _ZERO) + (hi - lo)
        for span in (r, e):
            if span.state is State.DOWN and span.reason and span.reason not in reasons:
                reasons.append(span.reason)
    ongoing = ongoing_at is not None and end == period_end and to_utc(ongoing_at) == period_end
    return Outage(
        start=start,
        end=None if ongoing else end,
        duration=end - start,
        charged=charged,
        excluded={k: excluded[k] for k in sorted(excluded)},
        reason="; ".join(reasons) if reasons else None,
    )


def _excluded_key(span: Span) -> str:
    if span.state is State.MAINTENANCE:
        return span.reason or "maintenance"
    if span.state is State.UNKNOWN:
        return span.reason or "unknown"
    # Raw says down (or unknown / maintenance) but the effective view does not: only a
    # monitor fault removing the vantage that saw it down does that.
    return "monitor_fault"


def _error_budget(
    timeline: ServiceTimeline, month: Period, now: datetime, target: Fraction
) -> ErrorBudget:
    lo, hi = to_utc(month.start), to_utc(month.end)
    cut = min(max(now, lo), hi)
    elapsed = Period(lo, cut)
    spans = fill_gaps(timeline.effective, elapsed)
    consumed = duration_in(spans, State.DOWN)
    elapsed_eligible = (
        elapsed.duration - duration_in(spans, State.MAINTENANCE) - duration_in(spans, State.UNKNOWN)
    )
    eligible = elapsed_eligible + (hi - cut)
    allowance = _micros(eligible) * (1 - target)
    budget = round(allowance) * _US
    ratio = float(1 - _micros(consumed) / allowance) if allowance > 0 else None
    return ErrorBudget(
        month=Period(lo, hi),
        eligible=eligible,
        budget=budget,
        consumed=consumed,
        remaining=budget - consumed,
        remaining_ratio=ratio,
    )


def _burn_rate(
    timeline: ServiceTimeline, window: timedelta, now: datetime, target: Fraction
) -> BurnRate:
    if window <= _ZERO:
        raise ValueError("burn windows must be positive")
    span = Period(now - window, now)
    spans = fill_gaps(timeline.effective, span)
    charged = duration_in(spans, State.DOWN)
    eligible = window - duration_in(spans, State.MAINTENANCE) - duration_in(spans, State.UNKNOWN)
    rate: float | None = None
    if eligible > _ZERO and target < 1:
        rate = float(_ratio(charged, eligible) / (1 - target))
    return BurnRate(window=window, charged=charged, eligible=eligible, rate=rate)


# --- provider aggregate -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderFigures:
    """A provider's services taken together.

    Durations are sums over the services. ``availability`` = (Σ eligible - Σ charged)
    / Σ eligible, which is each service's availability weighted by its eligible time
    (a service with no eligible time weighs nothing); ``coverage`` = (Σ evaluated -
    Σ unknown) / Σ evaluated. ``met``, ``missed`` and ``undetermined`` count services
    by their own target (targets can differ, so there is no provider-level target).
    """

    services: int
    evaluated: timedelta
    eligible: timedelta
    charged_downtime: timedelta
    excluded_maintenance: timedelta
    unknown: timedelta
    availability: float | None
    coverage: float | None
    outage_count: int
    met: int
    missed: int
    undetermined: int

    def to_json(self) -> dict[str, Any]:
        return {
            "services": self.services,
            "evaluated_seconds": _secs(self.evaluated),
            "eligible_seconds": _secs(self.eligible),
            "charged_downtime_seconds": _secs(self.charged_downtime),
            "excluded_maintenance_seconds": _secs(self.excluded_maintenance),
            "unknown_seconds": _secs(self.unknown),
            "availability": self.availability,
            "coverage": self.coverage,
            "outage_count": self.outage_count,
            "met": self.met,
            "missed": self.missed,
            "undetermined": self.undetermined,
        }


def provider_figures(figures: Sequence[SlaFigures]) -> ProviderFigures:
    """Aggregate the figures of a provider's services (see :class:`ProviderFigures`)."""
    evaluated = sum((f.period.duration for f in figures), _ZERO)
    eligible = sum((f.eligible for f in figures), _ZERO)
    charged = sum((f.charged_downtime for f in figures), _ZERO)
    unknown = sum((f.unknown for f in figures), _ZERO)
    return ProviderFigures(
        services=len(figures),
        evaluated=evaluated,
        eligible=eligible,
        charged_downtime=charged,
        excluded_maintenance=sum((f.excluded_maintenance for f in figures), _ZERO),
        unknown=unknown,
        availability=float(_ratio(eligible - charged, eligible)) if eligible > _ZERO else None,
        coverage=float(_ratio(evaluated - unknown, evaluated)) if evaluated > _ZERO else None,
        outage_count=sum(f.outage_count for f in figures),
        met=sum(1 for f in figures if f.met is True),
        missed=sum(1 for f in figures if f.met is False),
        undetermined=sum(1 for f in figures if f.met is None),
    )


# --- exact arithmetic and JSON ------------------------------------------------------------


def _micros(value: timedelta) -> int:
    return value // _US


def _ratio(numerator: timedelta, denominator: timedelta) -> Fraction:
    return Fraction(_micros(numerator), _micros(denominator))


def _exact_target(target: float) -> Fraction:
    exact = Fraction(repr(float(target)))
    if not 0 < exact <= 1:
        raise ValueError(f"target must be within (0, 1], got {target}")
    return exact


def _secs(value: timedelta | None) -> int | float | None:
    if value is None:
        return None
    micros = _micros(value)
    if micros % 1_000_000 == 0:
        return micros // 1_000_000
    return micros / 1_000_000


def _number(value: float | None) -> float | str | None:
    if value is None:
        return None
    if value == float("inf"):
        return "+Inf"
    return value
