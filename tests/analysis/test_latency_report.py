"""The month report's latency figures from rollups the state tracker wrote: whole UTC
days from the daily rows, the month's edges from the hourly ones, the same figures as
counting the probes; and a malformed stored rollup costs only its service the figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from scd_monitor.analysis.reporting import SlaReporter
from scd_monitor.catalog import parse_catalog
from scd_monitor.clock import FixedClock
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.runtime.tracker import StateTracker
from scd_monitor.sla.calendar import month_of
from scd_monitor.store import ResultRepository, Store
from scd_monitor.store.tables import latency_hourly

CATALOG = parse_catalog(
    """
defaults: {interval: 20m, timeout: 10s}
providers:
  - id: p
    name: P
    services:
      - id: s
        type: otro
        sla: {latency_threshold: 1s}
        checks:
          - {id: a, kind: tls, host: a.example}
      - id: t
        type: otro
        sla: {latency_threshold: 1s}
        checks:
          - {id: b, kind: tls, host: b.example}
"""
)
# November 2026 in Bogota: 05:00 UTC on the 1st to 05:00 UTC on 1 December.
MONTH = month_of(datetime(2026, 11, 15, tzinfo=UTC), CATALOG.tz)
END = MONTH.end + timedelta(hours=1)


def history(check: str) -> list[ProbeResult]:
    """Every 20 minutes from a day before the month to an hour after it: one failure in
    ten, a slow success (1.5 s) in seven; so every UTC day and every edge hour counts."""
    out = []
    at = MONTH.start - timedelta(days=1)
    i = 0
    while at < END:
        ok = i % 10 != 3
        out.append(
            ProbeResult(
                check_id=check,
                kind="tls",
                vantage="v1",
                started_at=at,
                duration=1.5 if i % 7 == 0 else 0.2,
                outcome=Outcome(ok=ok, error_kind=None if ok else ErrorKind.TIMEOUT),
            )
        )
        at += timedelta(minutes=20)
        i += 1
    return out


def in_month(results: list[ProbeResult]) -> tuple[int, int]:
    """Successes whose hour meets the month, and those at or under 1 s."""
    inside = [r for r in results if MONTH.start <= r.started_at < MONTH.end and r.outcome.ok]
    return len(inside), sum(1 for r in inside if r.duration <= 1.0)


def test_the_month_latency_equals_counting_the_probes(store: Store) -> None:
    results = {c: history(c) for c in ("p/s/a", "p/t/b")}
    ResultRepository(store).write([r for rs in results.values() for r in rs])
    tracker = StateTracker(store, vantage="v1", clock=FixedClock(END), batch_limit=500)
    tracker.set_catalog(CATALOG)
    tracker.run_until_idle()
    reporter = SlaReporter(store, CATALOG, FixedClock(END))

    report = reporter.report(MONTH, now=END)

    figures = {s.service: s.figures for s in report.services}
    for service, check in (("s", "p/s/a"), ("t", "p/t/b")):
        ok, under = in_month(results[check])
        assert ok > 1900  # 30 days x 72 probes, less one in ten
        assert figures[service].latency_samples == ok
        assert figures[service].latency_compliance is not None
        assert abs(figures[service].latency_compliance - under / ok) < 1e-9

    # One malformed hour of check a at the month's edge (read from the hourly rows):
    # service s has no latency figures, service t and the downtime figures are unchanged.
    with store.engine.begin() as conn:
        conn.execute(
            update(latency_hourly)
            .where(latency_hourly.c.check_id == "p/s/a", latency_hourly.c.hour == MONTH.start)
            .values(histogram=[1, 2, 3])
        )
    again = reporter.report(MONTH, now=END)
    spoiled = {s.service: s.figures for s in again.services}
    assert spoiled["s"].latency_samples == 0
    assert spoiled["s"].latency_compliance is None
    assert spoiled["t"] == figures["t"]
    assert spoiled["s"].availability == figures["s"].availability
