"""SLA figures for tests, built field by field."""

from __future__ import annotations

from datetime import datetime, timedelta

from scd_monitor.sla.engine import BurnRate, ErrorBudget, Outage, SlaFigures
from scd_monitor.sla.model import Period


def figures(
    now: datetime,
    *,
    availability: float = 0.999,
    target: float = 0.995,
    burn: dict[timedelta, float] | None = None,
    charged: timedelta = timedelta(minutes=3),
    outage_start: datetime | None = None,
) -> SlaFigures:
    month = Period(
        datetime(2026, 5, 1, 5, tzinfo=now.tzinfo), datetime(2026, 6, 1, 5, tzinfo=now.tzinfo)
    )
    eligible = now - month.start
    budget = (month.end - month.start) * (1 - target)
    outages = ()
    if outage_start is not None:
        outages = (
            Outage(
                start=outage_start,
                end=None,
                duration=now - outage_start,
                charged=now - outage_start,
                excluded={},
                reason="oidc:timeout",
            ),
        )
    return SlaFigures(
        period=Period(month.start, now),
        requested_end=month.end,
        partial=True,
        now=now,
        target=target,
        availability=availability,
        met=availability >= target,
        eligible=eligible,
        charged_downtime=charged,
        excluded_maintenance=timedelta(0),
        unknown=timedelta(0),
        coverage=1.0,
        outages=outages,
        outage_count=len(outages),
        outages_total=len(outages),
        mttr=None,
        mtbf=None,
        latency_samples=0,
        latency_compliance=None,
        latency_p95=None,
        error_budget=ErrorBudget(
            month=month,
            eligible=month.end - month.start,
            budget=budget,
            consumed=charged,
            remaining=budget - charged,
            remaining_ratio=1 - charged / budget,
        ),
        burn_rates=tuple(
            BurnRate(window=w, charged=charged, eligible=w, rate=(burn or {}).get(w, 0.5))
            for w in (timedelta(hours=1), timedelta(hours=6), timedelta(days=1), timedelta(days=3))
        ),
    )
