"""SLA reports from the store: load the stored facts, then hand them to the pure engine.

This is the only place that reads spans for the SLA. Loading is I/O; everything after
:func:`SlaReporter.report` has loaded its inputs is a pure function of them, so the
same facts always give the same figures.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import add, attrgetter
from typing import Any

import structlog

from scd_monitor import __version__
from scd_monitor.analysis.policy import derive_policy
from scd_monitor.catalog.models import Catalog, ResolvedCheck
from scd_monitor.clock import Clock
from scd_monitor.sla.calendar import month_of
from scd_monitor.sla.derive import CheckStateMachine
from scd_monitor.sla.engine import (
    BURN_WINDOWS,
    ProviderFigures,
    SlaFigures,
    provider_figures,
    sla_figures,
)
from scd_monitor.sla.latency import LatencyHistogram, LatencyStats
from scd_monitor.sla.maintenance import PlannedWindow, maintenance_spans
from scd_monitor.sla.model import Period, Span
from scd_monitor.sla.timeline import (
    CheckTimeline,
    canary_fault_spans,
    mass_failure_spans,
    monitor_fault_spans,
    network_path_fault_spans,
    service_timeline,
)
from scd_monitor.store import Store
from scd_monitor.store.rollups import LatencyRepository
from scd_monitor.store.spans import SpanRepository
from scd_monitor.timefmt import iso_utc

REPORT_VERSION = 1

log = structlog.get_logger("scd_monitor.analysis.reporting")


@dataclass(frozen=True, slots=True)
class ServiceReport:
    provider: str
    provider_name: str
    service: str
    service_name: str | None
    service_type: str
    figures: SlaFigures
    rejected_windows: tuple[PlannedWindow, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "provider_name": self.provider_name,
            "service": self.service,
            "service_name": self.service_name,
            "service_type": self.service_type,
            **self.figures.to_json(),
            "rejected_maintenance_windows": [
                {
                    "start": iso_utc(w.start),
                    "end": iso_utc(w.end),
                    "reason": w.reason,
                    "why": w.rejected,
                }
                for w in self.rejected_windows
            ],
        }


@dataclass(frozen=True, slots=True)
class ProviderReport:
    provider: str
    provider_name: str
    figures: ProviderFigures

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "provider_name": self.provider_name,
            **self.figures.to_json(),
        }


@dataclass(frozen=True, slots=True)
class SlaReport:
    period: Period
    now: datetime
    timezone: str
    catalog_version: str | None
    services: tuple[ServiceReport, ...]
    providers: tuple[ProviderReport, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "report_version": REPORT_VERSION,
            "software_version": __version__,
            "catalog_version": self.catalog_version,
            "timezone": self.timezone,
            "period": {"start": iso_utc(self.period.start), "end": iso_utc(self.period.end)},
            "as_of": iso_utc(self.now),
            "services": [s.to_json() for s in self.services],
            "providers": [p.to_json() for p in self.providers],
        }


class SlaReporter:
    """Builds :class:`SlaReport` values for any period from the store."""

    def __init__(self, store: Store, catalog: Catalog, clock: Clock) -> None:
        self._store = store
        self._spans = SpanRepository(store)
        self._rollups = LatencyRepository(store)
        self._catalog = catalog
        self._clock = clock

    def report(
        self,
        period: Period,
        *,
        provider: str | None = None,
        service: str | None = None,
        now: datetime | None = None,
    ) -> SlaReport:
        """Figures per service and per provider over ``period`` as of ``now``.

        The cyclic garbage collector is paused meanwhile (:func:`_collector_paused`).
        """
        with _collector_paused():
            return self._report(period, provider=provider, service=service, now=now)

    def _report(
        self,
        period: Period,
        *,
        provider: str | None,
        service: str | None,
        now: datetime | None,
    ) -> SlaReport:
        catalog = self._catalog
        tz = catalog.tz
        now = now or self._clock.now()
        end = min(period.end, now)
        month = month_of(max(period.start, end - timedelta(microseconds=1)), tz)
        lo = min(period.start, month.start, now - max(BURN_WINDOWS))
        hi = max(end, lo)
        window = Period(lo, hi)

        all_checks = catalog.resolved_checks()
        selected = [
            c
            for c in all_checks
            if not c.canary
            and (provider is None or c.provider == provider)
            and (service is None or c.service == service)
        ]
        # Monitor faults need every provider's checks (mass failure) and the canaries.
        timelines = self._timelines(all_checks, window, now)
        faults = self._monitor_faults(all_checks, timelines, window)
        latency = self._latency(selected, period.start, end)

        services: list[ServiceReport] = []
        by_provider: dict[str, list[SlaFigures]] = defaultdict(list)
        by_service: dict[tuple[str, str], list[ResolvedCheck]] = defaultdict(list)
        for c in selected:  # grouped once: a discovered catalog has ~10^4 services
            by_service[(c.provider, c.service)].append(c)
        for p in catalog.providers:
            if provider is not None and p.id != provider:
                continue
            for s in p.services:
                if service is not None and s.id != service:
                    continue
                checks = by_service.get((p.id, s.id), [])
                if not checks:
                    continue
                plan = maintenance_spans(s, window, tz)
                timeline = service_timeline(
                    [t for c in checks for t in timelines.get(c.id, [])],
                    rule=s.rule,
                    vantage_quorum=s.vantage_quorum,
                    period=window,
                    maintenance=plan.allowed,
                    monitor_faults=faults,
                    expected_checks={c.id: c.critical for c in checks},
                )
                figures = sla_figures(
                    timeline,
                    period=period,
                    now=now,
                    target=s.sla.availability_target,
                    latency=latency.get((p.id, s.id)),
                    month_period=month,
                )
                rejected = tuple(w for w in plan.rejected if w.start < end and w.end > period.start)
                services.append(
                    ServiceReport(
                        provider=p.id,
                        provider_name=p.name,
                        service=s.id,
                        service_name=s.name,
                        service_type=s.type,
                        figures=figures,
                        rejected_windows=rejected,
                    )
                )
                by_provider[p.id].append(figures)
        providers = tuple(
            ProviderReport(p.id, p.name, provider_figures(by_provider[p.id]))
            for p in catalog.providers
            if by_provider.get(p.id)
        )
        return SlaReport(
            period=period,
            now=now,
            timezone=catalog.timezone,
            catalog_version=catalog.version,
            services=tuple(services),
            providers=providers,
        )

    # -- loading ----------------------------------------------------------------------

    def _timelines(
        self, checks: Sequence[ResolvedCheck], window: Period, now: datetime
    ) -> dict[str, list[CheckTimeline]]:
        """Per check id, one timeline per vantage: stored final spans + provisional tail."""
        by_id = {c.id: c for c in checks}
        with self._store.transaction("reading state spans") as conn:
            spans = self._spans.spans(conn, window, check_ids=by_id)
            machines = self._spans.machines(conn, check_ids=by_id)
        for (check_id, vantage), snapshot in machines.items():
            machine = CheckStateMachine(derive_policy(self._catalog, by_id[check_id]), snapshot)
            spans.setdefault((check_id, vantage), []).extend(machine.provisional(until=now))
        out: dict[str, list[CheckTimeline]] = defaultdict(list)
        for (check_id, vantage), items in spans.items():
            check = by_id[check_id]
            out[check_id].append(
                CheckTimeline(
                    check_id=check_id,
                    provider=check.provider,
                    vantage=vantage,
                    critical=check.critical,
                    spans=_clip(items, window),
                    host=check.host,
                )
            )
        return out

    def _monitor_faults(
        self,
        checks: Sequence[ResolvedCheck],
        timelines: Mapping[str, Sequence[CheckTimeline]],
        window: Period,
    ) -> dict[str, list[Span]]:
        """Per vantage, where its own data is not to be trusted: its canaries down, a mass
        failure, or its network path failing (README, "SLA definition")."""
        mass = self._catalog.monitor.mass_failure
        path = self._catalog.monitor.network_path
        settle = network_settle(checks)
        canaries: dict[str, list[CheckTimeline]] = defaultdict(list)
        providers: dict[str, list[CheckTimeline]] = defaultdict(list)
        for check in checks:
            for t in timelines.get(check.id, []):
                (canaries if check.canary else providers)[t.vantage].append(t)
        faults: dict[str, list[Span]] = {}
        for vantage in set(canaries) | set(providers):
            watched = providers.get(vantage, [])
            faults[vantage] = monitor_fault_spans(
                canary_fault_spans(canaries.get(vantage, []), period=window),
                mass_failure_spans(
                    watched, min_ratio=mass.min_ratio, min_providers=mass.min_providers
                ),
                network_path_fault_spans(
                    watched,
                    min_hosts=path.min_hosts,
                    error_kinds=path.error_kinds,
                    settle=settle,
                )
                if path.enabled
                else [],
            )
        return faults

    def _latency(
        self, checks: Iterable[ResolvedCheck], start: datetime, end: datetime
    ) -> dict[tuple[str, str], LatencyStats]:
        """Latency per service from the hourly rollups of the hours that meet the period.

        Rollups are hourly, so a period that starts or ends mid-hour counts the whole
        first and last hours: latency figures have hour granularity (downtime does not).
        A service with a malformed stored rollup gets no latency figures (logged as an
        error); the other services and the downtime figures are unaffected.
        """
        service_of = {c.id: (c.provider, c.service) for c in checks}
        acc: dict[tuple[str, str], tuple[int, int, list[int]]] = {}
        broken: set[tuple[str, str]] = set()
        with self._store.transaction("reading latency rollups") as conn:
            # Summed per check by the database; per service here: the histogram is
            # validated once per service, not once per stored hour.
            for total in self._rollups.totals(conn, start, end, check_ids=service_of):
                key = service_of[total.check_id]
                if total.error is not None:
                    # One check's bad rows cost its service the latency figures, not
                    # the report: the other services are summed as usual.
                    broken.add(key)
                    log.error("latency rollups unreadable", check=total.check_id, error=total.error)
                    continue
                seen = acc.get(key)
                if seen is None:
                    acc[key] = (total.ok_count, total.under_threshold_count, total.counts)
                    continue
                ok, under, counts = seen
                acc[key] = (
                    ok + total.ok_count,
                    under + total.under_threshold_count,
                    list(map(add, counts, total.counts)),
                )
        stats: dict[tuple[str, str], LatencyStats] = {}
        for key, (ok, under, counts) in acc.items():
            if key in broken:
                continue
            try:
                stats[key] = LatencyStats(ok, under, LatencyHistogram(counts))
            except (TypeError, ValueError) as exc:
                log.error(
                    "latency rollups unreadable", provider=key[0], service=key[1], error=str(exc)
                )
        return stats


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused, then resumed if it was running.

    A month of a large catalog allocates millions of objects that live until the
    report is done (spans, timelines): the collector's passes over them find nothing to
    free, and its full passes cost about a second at 10,000 checks (``bench/README.md``,
    "SLA month report"). What the report allocates is freed by reference counting; the
    rare cycle waits for the next pass after it. As in
    :meth:`scd_monitor.runtime.catalogs.CatalogInForce._load`, this is process-wide: a
    report running in a thread pauses the collector for the whole process meanwhile.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def network_settle(checks: Iterable[ResolvedCheck]) -> timedelta:
    """How long a network failure takes to reach every check (and a recovery to reach
    them all): the longest interval plus timeout among the provider checks."""
    return max(
        (c.interval + c.timeout for c in checks if not c.canary),
        default=timedelta(0),
    )


def _clip(spans: Iterable[Span], window: Period) -> list[Span]:
    """``spans`` in start order, cut to ``window``; a span inside it is kept as is."""
    out = []
    lo, hi = window.start, window.end
    for s in sorted(spans, key=attrgetter("start")):
        if s.start >= lo and s.end <= hi:
            if s.start < s.end:
                out.append(s)
            continue
        start, end = max(s.start, lo), min(s.end, hi)
        if start < end:
            out.append(Span(start, end, s.state, s.reason))
    return out
