"""Prometheus metrics: per-target series built from a state snapshot at scrape time.

Per-target metrics come from :class:`SnapshotCollector`, which reads an immutable
:class:`~scd_monitor.analysis.views.Snapshot`; a check removed from the catalog is gone from
the next scrape. The daemon's own health uses ordinary client objects, without target
labels. Everything lives on one dedicated :class:`CollectorRegistry` built by the
composition root; nothing is registered globally.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from scd_monitor import __version__
from scd_monitor.analysis.selfcheck import CheckNow, SelfCheck, self_check
from scd_monitor.analysis.servicestate import service_state
from scd_monitor.analysis.views import Snapshot
from scd_monitor.catalog.models import Catalog, ResolvedCheck
from scd_monitor.clock import Clock
from scd_monitor.sla.bands import Band, BandBounds
from scd_monitor.sla.model import State
from scd_monitor.store.writer import WriterStats

if TYPE_CHECKING:
    from scd_monitor.analysis.reporting import SlaReport
    from scd_monitor.analysis.views import CheckStatus, SourceStatus
    from scd_monitor.probes.base import ProbeResult

TARGET_LABELS = ("provider", "service", "check", "kind", "vantage")

_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    """What the daemon knows about itself at scrape time."""

    writer: WriterStats
    catalog_loaded_timestamp: float
    scheduled_jobs: int
    catalog_reload_failures: int = 0
    """Reloads (SIGHUP) refused because the file was invalid; the old catalog stayed."""
    catalog_last_reload_ok: bool = True


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """One supervised background component (state tracker, SLA worker, discovery,
    incidents, outbox …) as the supervisor sees it now."""

    component: str
    up: bool
    restarts_total: int
    last_success_timestamp: float | None
    problem: str | None = None
    """Why it is down (for ``/readyz``); None while up."""


class SnapshotCollector(Collector):
    """Per-check series from the latest snapshot."""

    def __init__(
        self, snapshot: Callable[[], Snapshot], status: Callable[[], DaemonStatus]
    ) -> None:
        self._snapshot = snapshot
        self._status = status

    def collect(self) -> Iterable[Metric]:
        snap = self._snapshot()
        status = self._status()
        labels = list(TARGET_LABELS)
        success = GaugeMetricFamily(
            "scd_probe_success", "1 if the check's last probe succeeded, else 0.", labels=labels
        )
        duration = GaugeMetricFamily(
            "scd_probe_duration_seconds",
            "Wall-clock duration of the check's last probe.",
            labels=labels,
        )
        phase = GaugeMetricFamily(
            "scd_probe_phase_duration_seconds",
            "Duration of each phase (connect, tls, first_byte, transfer) of the last probe.",
            labels=[*labels, "phase"],
        )
        last_run = GaugeMetricFamily(
            "scd_probe_last_run_timestamp_seconds",
            "Unix time at which the check's last probe started.",
            labels=labels,
        )
        status_code = GaugeMetricFamily(
            "scd_probe_http_status_code",
            "HTTP status code of the last probe (absent when no response was received).",
            labels=labels,
        )
        cert_expiry = GaugeMetricFamily(
            "scd_probe_cert_expiry_timestamp_seconds",
            "Unix time at which the peer's certificate seen by the last probe expires.",
            labels=labels,
        )
        error = GaugeMetricFamily(
            "scd_probe_error",
            "1 for the error kind of the last probe when it failed.",
            labels=[*labels, "error_kind"],
        )
        runs = CounterMetricFamily(
            "scd_probes", "Probes run since the daemon started.", labels=labels
        )
        failures = CounterMetricFamily(
            "scd_probe_failures",
            "Failed probes since the daemon started, by error kind.",
            labels=[*labels, "error_kind"],
        )
        info = InfoMetricFamily(
            "scd_check",
            "Descriptive attributes of each check in the catalog.",
            labels=["provider", "service", "check", "kind"],
        )
        for check in snap.checks:
            key = [check.provider, check.service, check.check, check.kind, snap.vantage]
            info.add_metric(
                key[:4],
                {
                    "provider_name": check.provider_name,
                    "service_type": check.service_type,
                    "target": check.target,
                    "critical": "true" if check.critical else "false",
                    "interval_seconds": f"{check.interval.total_seconds():g}",
                    "timeout_seconds": f"{check.timeout.total_seconds():g}",
                    "availability_target": f"{check.sla.availability_target:g}",
                    "latency_threshold_seconds": f"{check.sla.latency_threshold.total_seconds():g}",
                },
            )
            result = snap.latest.get(check.id)
            if result is None:
                continue
            o = result.outcome
            success.add_metric(key, 1.0 if o.ok else 0.0)
            duration.add_metric(key, result.duration)
            last_run.add_metric(key, result.started_at.timestamp())
            for name, seconds in o.phases.items():
                phase.add_metric([*key, name], seconds)
            if o.status_code is not None:
                status_code.add_metric(key, float(o.status_code))
            if o.cert_not_after is not None:
                cert_expiry.add_metric(key, o.cert_not_after.timestamp())
            if not o.ok and o.error_kind is not None:
                error.add_metric([*key, o.error_kind.value], 1.0)
            counters = snap.counters.get(check.id)
            if counters is not None:
                runs.add_metric(key, float(counters.runs))
                for kind, n in sorted(counters.failures_by_kind.items()):
                    failures.add_metric([*key, kind], float(n))
        yield from (info, success, duration, phase, last_run, status_code, cert_expiry, error)
        yield from (runs, failures)

        writer = status.writer
        yield _gauge(
            "scd_store_pending_results",
            "Probe results waiting to be written to the store.",
            writer.pending,
        )
        yield _counter(
            "scd_store_written_results", "Probe results written to the store.", writer.written_total
        )
        yield _counter(
            "scd_store_write_errors", "Failed batch writes to the store.", writer.errors_total
        )
        yield _counter(
            "scd_store_dropped_results",
            "Probe results dropped because the in-memory buffer was full.",
            writer.dropped_total,
        )
        yield _gauge(
            "scd_store_healthy", "1 if the last write to the store succeeded.", int(writer.healthy)
        )
        yield _counter(
            "scd_store_poisoned_results",
            "Probe results stored in a changed form: unstorable values replaced, or "
            "isolated from a refused batch and stored with a note instead of their details.",
            writer.poisoned_total,
        )
        yield _counter(
            "scd_store_writer_restarts",
            "Times the store writer failed on its own error and was started again.",
            writer.restarts_total,
        )
        yield _gauge("scd_store_writer_up", "1 if the store writer thread runs.", int(writer.alive))
        yield _gauge(
            "scd_store_stalled_seconds",
            "Seconds since results were last written while some are waiting (0: none wait).",
            writer.stalled_seconds,
        )
        yield _counter(
            "scd_store_spool_errors",
            "Failures to append to, sync or clean the on-disk spool of unwritten results.",
            writer.journal_errors_total,
        )
        yield _gauge(
            "scd_store_spool_files",
            "Spool files holding results not yet known to be written to the store.",
            writer.spool_files,
        )
        yield _gauge(
            "scd_catalog_checks", "Enabled checks in the loaded catalog.", len(snap.checks)
        )
        yield _gauge(
            "scd_catalog_loaded_timestamp_seconds",
            "Unix time at which the catalog in use was loaded.",
            status.catalog_loaded_timestamp,
        )
        yield _counter(
            "scd_catalog_reload_failures",
            "Catalog reloads refused because the file was invalid (the old catalog stays).",
            status.catalog_reload_failures,
        )
        yield _gauge(
            "scd_catalog_last_reload_successful",
            "1 if the last catalog reload succeeded (or none was asked for), else 0.",
            int(status.catalog_last_reload_ok),
        )
        yield _gauge(
            "scd_scheduler_jobs", "Checks scheduled by this daemon.", status.scheduled_jobs
        )


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=float(value))


class DaemonMetrics:
    """The daemon's own instruments, on a registry of their own."""

    def __init__(self, *, vantage: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        build = Gauge(
            "scd_monitor_build_info",
            "Version of scd-monitor and the vantage it probes from.",
            ["version", "vantage"],
            registry=self.registry,
        )
        build.labels(version=__version__, vantage=vantage).set(1)
        self.scheduling_lag = Histogram(
            "scd_scheduler_lag_seconds",
            "Delay between a probe's scheduled time and its actual start.",
            buckets=_LAG_BUCKETS,
            registry=self.registry,
        )
        self.misfires = Counter(
            "scd_scheduler_misfires",
            "Scheduled runs missed by more than their grace time.",
            registry=self.registry,
        )
        self.skipped = Counter(
            "scd_scheduler_skipped_runs",
            "Runs skipped because the check's previous run was still going.",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "scd_probes_in_flight", "Probes running now.", registry=self.registry
        )
        self.store_write = Histogram(
            "scd_store_write_duration_seconds",
            "Time to write one batch of probe results.",
            buckets=_WRITE_BUCKETS,
            registry=self.registry,
        )
        self.scrape_errors = Counter(
            "scd_metrics_render_errors",
            "Errors while rendering /metrics.",
            registry=self.registry,
        )

    def add_collector(self, collector: Collector) -> None:
        self.registry.register(collector)

    def render(self) -> bytes:
        """The text exposition format of every metric in the registry."""
        return generate_latest(self.registry)


_WINDOW_LABELS = {3600: "1h", 21600: "6h", 86400: "1d", 259200: "3d"}


def _vantage_metrics(verdict: SelfCheck, vantage: str) -> Iterable[Metric]:
    trusted = GaugeMetricFamily(
        "scd_vantage_trusted",
        "1 while this vantage can trust its own view, 0 while its canaries, a mass failure "
        "or its network path say the monitor is at fault (its time is then unknown, never "
        "charged).",
        labels=["vantage"],
    )
    trusted.add_metric([vantage], 1.0 if verdict.trusted else 0.0)
    yield trusted
    fault = GaugeMetricFamily(
        "scd_vantage_fault",
        "1 for each self-check rule that holds now at this vantage (canaries, "
        "mass_failure, network_path).",
        labels=["vantage", "cause"],
    )
    causes = verdict.causes
    for cause in ("canaries", "mass_failure", "network_path"):
        fault.add_metric([vantage, cause], 1.0 if cause in causes else 0.0)
    yield fault


class StateCollector(Collector):
    """Check and service states now, and month-to-date SLA figures per service."""

    def __init__(
        self,
        *,
        checks: Callable[[], Sequence[ResolvedCheck]],
        catalog: Callable[[], Catalog],
        states: Callable[[], Mapping[str, CheckStatus]],
        sla: Callable[[], SlaReport | None],
        vantage: str,
        clock: Clock,
        latest: Callable[[], Mapping[str, ProbeResult]] | None = None,
    ) -> None:
        self._checks = checks
        self._catalog = catalog
        self._states = states
        self._sla = sla
        self._vantage = vantage
        self._clock = clock
        self._latest = latest

    def collect(self) -> Iterable[Metric]:
        states = self._states()
        vantage = self._vantage
        check_state = GaugeMetricFamily(
            "scd_check_state",
            "1 for the check's current state (up, down, degraded, maintenance, unknown).",
            labels=["provider", "service", "check", "vantage", "state"],
        )
        down_since = GaugeMetricFamily(
            "scd_check_down_since_timestamp_seconds",
            "Start of the check's current confirmed outage (first failing probe).",
            labels=["provider", "service", "check", "vantage"],
        )
        checks = self._checks()
        by_service: dict[tuple[str, str], list[tuple[ResolvedCheck, State]]] = {}
        latest = self._latest() if self._latest is not None else {}
        now_view: list[CheckNow] = []
        for check in checks:
            status = states.get(check.id)
            state = status.state if status is not None else State.UNKNOWN
            result = latest.get(check.id)
            failed = result is not None and not result.outcome.ok
            kind = result.outcome.error_kind if result is not None and failed else None
            now_view.append(
                CheckNow(
                    check.id,
                    check.provider,
                    check.host or check.id,
                    state,
                    kind.value if kind is not None else None,
                    canary=check.canary,
                )
            )
            labels = [check.provider, check.service, check.check, vantage]
            for s in State:
                check_state.add_metric([*labels, s.value], 1.0 if s is state else 0.0)
            if status is not None and status.since is not None:
                down_since.add_metric(labels, status.since.timestamp())
            if not check.canary:
                by_service.setdefault((check.provider, check.service), []).append((check, state))
        yield check_state
        yield down_since

        service_states = GaugeMetricFamily(
            "scd_service_state",
            "1 for the service's current state as seen from this vantage.",
            labels=["provider", "service", "vantage", "state"],
        )
        service_up = GaugeMetricFamily(
            "scd_service_up",
            "1 if the service is up (or degraded), 0 if down; absent when unknown or in "
            "maintenance. From this vantage, by the service's rule.",
            labels=["provider", "service", "vantage"],
        )
        catalog = self._catalog()
        now = self._clock.now()
        for (provider, service_id), members in by_service.items():
            service = catalog.service(provider, service_id)
            if service is None:
                continue
            state = service_state(service, members, now=now, tz=catalog.tz, vantage=vantage)
            for s in State:
                service_states.add_metric(
                    [provider, service_id, vantage, s.value], 1.0 if s is state else 0.0
                )
            if state in (State.UP, State.DEGRADED):
                service_up.add_metric([provider, service_id, vantage], 1.0)
            elif state is State.DOWN:
                service_up.add_metric([provider, service_id, vantage], 0.0)
        yield service_states
        yield service_up
        yield from _vantage_metrics(self_check(now_view, catalog.monitor), vantage)
        yield _service_info(catalog)
        yield from self._sla_metrics()

    def _sla_metrics(self) -> Iterable[Metric]:
        report = self._sla()
        labels = ["provider", "service"]
        availability = GaugeMetricFamily(
            "scd_sla_availability_ratio",
            "Month-to-date availability (eligible time not charged as downtime), rounded "
            "so that it compares with scd_sla_band_lower_ratio as the exact value does.",
            labels=labels,
        )
        target = GaugeMetricFamily(
            "scd_sla_target_ratio", "The service's availability target (ANS).", labels=labels
        )
        band_lower = GaugeMetricFamily(
            "scd_sla_band_lower_ratio",
            "Lowest availability in each rango de medicion (green = the target, amber).",
            labels=[*labels, "band"],
        )
        budget = GaugeMetricFamily(
            "scd_sla_error_budget_remaining_ratio",
            "Share of the month's error budget left (negative when overspent).",
            labels=labels,
        )
        burn = GaugeMetricFamily(
            "scd_sla_burn_rate",
            "Error budget burn rate over a trailing window (1 = on budget).",
            labels=[*labels, "window"],
        )
        coverage = GaugeMetricFamily(
            "scd_sla_measurement_coverage_ratio",
            "Month-to-date share of time with trustworthy measurements.",
            labels=labels,
        )
        downtime = GaugeMetricFamily(
            "scd_sla_charged_downtime_seconds",
            "Month-to-date downtime charged to the provider.",
            labels=labels,
        )
        outages = GaugeMetricFamily(
            "scd_sla_outages", "Month-to-date outages with charged time.", labels=labels
        )
        computed = GaugeMetricFamily(
            "scd_sla_computed_timestamp_seconds",
            "When the month-to-date SLA figures were last computed.",
        )
        if report is not None:
            catalog = self._catalog()
            computed.add_metric([], report.now.timestamp())
            for s in report.services:
                f = s.figures
                key = [s.provider, s.service]
                target.add_metric(key, f.target)
                spec = catalog.service(s.provider, s.service)
                bounds = BandBounds.of(f.target, None if spec is None else spec.sla.amber_from)
                band_lower.add_metric([*key, Band.GREEN.value], bounds.green_ratio)
                band_lower.add_metric([*key, Band.AMBER.value], bounds.amber_ratio)
                ratio = bounds.comparable_ratio(f.eligible, f.charged_downtime)
                if ratio is not None:
                    availability.add_metric(key, ratio)
                if f.error_budget is not None and f.error_budget.remaining_ratio is not None:
                    budget.add_metric(key, f.error_budget.remaining_ratio)
                for b in f.burn_rates:
                    name = _WINDOW_LABELS.get(int(b.window.total_seconds()))
                    if name is not None and b.rate is not None:
                        burn.add_metric([*key, name], b.rate)
                if f.coverage is not None:
                    coverage.add_metric(key, f.coverage)
                downtime.add_metric(key, f.charged_downtime.total_seconds())
                outages.add_metric(key, float(f.outage_count))
        yield from (availability, target, band_lower, budget, burn, coverage, downtime, outages)
        yield computed


def _service_info(catalog: Catalog) -> InfoMetricFamily:
    info = InfoMetricFamily(
        "scd_service",
        "Descriptive attributes of each service in the catalog (names, type, SLA terms).",
        labels=["provider", "service"],
    )
    for provider in catalog.providers:
        for service in provider.services:
            rule = (
                service.rule if isinstance(service.rule, str) else f"quorum:{service.rule.quorum}"
            )
            info.add_metric(
                [provider.id, service.id],
                {
                    "provider_name": provider.name,
                    "service_name": service.name or service.id,
                    "service_type": service.type,
                    "availability_target": f"{service.sla.availability_target:g}",
                    "latency_threshold_seconds": (
                        f"{service.sla.latency_threshold.total_seconds():g}"
                    ),
                    "rule": rule,
                    "vantage_quorum": str(service.vantage_quorum),
                },
            )
    return info


class DirectoryCollector(Collector):
    """X-Road directory discovery: what each source's last good directory holds, and how
    reading it goes. Built from the watcher's immutable statuses at scrape time, so a
    source removed from the catalog leaves ``/metrics`` with it."""

    def __init__(self, statuses: Callable[[], Mapping[str, SourceStatus]]) -> None:
        self._statuses = statuses

    def collect(self) -> Iterable[Metric]:
        labels = ["source", "instance", "member_class"]
        counts = {
            kind: GaugeMetricFamily(
                f"scd_xroad_directory_{kind}s",
                f"{doc} in the source's last good X-Road directory, by member class.",
                labels=labels,
            )
            for kind, doc in (
                ("member", "Members"),
                ("subsystem", "Subsystems"),
                ("service", "Services (REST and SOAP) of the subsystems"),
                ("security_server", "Security servers (by their owner's class)"),
            )
        }
        expiry = GaugeMetricFamily(
            "scd_xroad_globalconf_expiry_timestamp_seconds",
            "When the global configuration of the last good directory expires.",
            labels=["source", "instance"],
        )
        changes = CounterMetricFamily(
            "scd_xroad_directory_changes",
            "Directory events recorded since the daemon started (appeared, disappeared, "
            "changed, baseline, fetch_failed, expiring …).",
            labels=["source", "kind", "change"],
        )
        last_success = GaugeMetricFamily(
            "scd_xroad_directory_last_success_timestamp_seconds",
            "When the source's directory was last read successfully.",
            labels=["source"],
        )
        failures = CounterMetricFamily(
            "scd_xroad_directory_fetch_failures",
            "Failed reads of the source's directory since the daemon started.",
            labels=["source"],
        )
        duration = GaugeMetricFamily(
            "scd_xroad_directory_fetch_duration_seconds",
            "How long the source's last directory read took.",
            labels=["source"],
        )
        for ident, status in sorted(self._statuses().items()):
            directory = status.directory
            failures.add_metric([ident], float(status.failures_total))
            for (kind, change), n in sorted(status.changes_total.items()):
                changes.add_metric([ident, kind, change], float(n))
            if status.last_success is not None:
                last_success.add_metric([ident], status.last_success.timestamp())
            if status.last_duration_seconds is not None:
                duration.add_metric([ident], status.last_duration_seconds)
            if directory is None:
                continue
            for (kind, member_class), n in sorted(directory.counts_by_class().items()):
                counts[kind].add_metric([ident, directory.instance, member_class], float(n))
            if directory.globalconf_expires_at is not None:
                expiry.add_metric(
                    [ident, directory.instance], directory.globalconf_expires_at.timestamp()
                )
        yield from counts.values()
        yield from (expiry, changes, last_success, failures, duration)


class ComponentCollector(Collector):
    """The supervised background components: up or down, restarts, last good round."""

    def __init__(self, statuses: Callable[[], Mapping[str, ComponentStatus]]) -> None:
        self._statuses = statuses

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "scd_component_up",
            "1 while the background component works (its last round succeeded and none is "
            "stalled), 0 while it fails and is retried.",
            labels=["component"],
        )
        restarts = CounterMetricFamily(
            "scd_component_restarts",
            "Failed rounds of the component since the daemon started, each retried after "
            "a backoff.",
            labels=["component"],
        )
        last = GaugeMetricFamily(
            "scd_component_last_success_timestamp_seconds",
            "When every unit of the component last finished a round successfully.",
            labels=["component"],
        )
        for name, status in sorted(self._statuses().items()):
            up.add_metric([name], 1.0 if status.up else 0.0)
            restarts.add_metric([name], float(status.restarts_total))
            if status.last_success_timestamp is not None:
                last.add_metric([name], status.last_success_timestamp)
        yield from (up, restarts, last)
