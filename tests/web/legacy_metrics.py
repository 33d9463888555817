"""The per-check collectors as they were before /metrics was pre-rendered (issue 14):
the reference the pre-rendered exposition is compared with, sample for sample.

A verbatim copy of ``SnapshotCollector`` and ``StateCollector`` of
``scd_monitor.web.metrics`` at commit 7304ac1 (object by object, through
prometheus_client's ``generate_latest``). Do not "fix" it: it is the old behaviour.
"""

# ruff: noqa

from __future__ import annotations

from datetime import datetime

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from scd_monitor.analysis.selfcheck import CheckNow, SelfCheck, self_check
from scd_monitor.analysis.servicestate import service_state
from scd_monitor.analysis.views import Snapshot
from scd_monitor.catalog.models import Catalog, ResolvedCheck
from scd_monitor.clock import Clock
from scd_monitor.sla.bands import Band, BandBounds
from scd_monitor.sla.model import State
from scd_monitor.web.metrics import DaemonStatus

if TYPE_CHECKING:
    from scd_monitor.analysis.reporting import SlaReport
    from scd_monitor.analysis.views import CheckStatus
    from scd_monitor.probes.base import ProbeResult

TARGET_LABELS = ("provider", "service", "check", "kind", "vantage")


class LegacySnapshotCollector(Collector):
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
        failed_step = GaugeMetricFamily(
            "scd_oidc_failed_step",
            "1 for the step at which the last probe of an oidc check failed "
            "(discovery, jwks, authorization, token, userinfo, end_session, client_credentials).",
            labels=[*labels, "step"],
        )
        jwks_keys = GaugeMetricFamily(
            "scd_oidc_jwks_keys",
            "Keys in the JWKS of an oidc check's provider, as its last probe read it.",
            labels=labels,
        )
        x5c_expiry = GaugeMetricFamily(
            "scd_oidc_x5c_expiry_timestamp_seconds",
            "Unix time at which the earliest x5c certificate of the provider's JWKS expires.",
            labels=labels,
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
            if result.kind == "oidc":
                d = o.details
                if not o.ok and isinstance(d.get("step"), str):
                    failed_step.add_metric([*key, str(d["step"])], 1.0)
                if isinstance(d.get("jwks_keys"), int):
                    jwks_keys.add_metric(key, float(d["jwks_keys"]))
                if isinstance(d.get("x5c_not_after"), str):
                    at = datetime.fromisoformat(str(d["x5c_not_after"]))
                    x5c_expiry.add_metric(key, at.timestamp())
        yield from (info, success, duration, phase, last_run, status_code, cert_expiry, error)
        yield from (runs, failures, failed_step, jwks_keys, x5c_expiry)

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


class LegacyStateCollector(Collector):
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
