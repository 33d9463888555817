"""Prometheus metrics: per-target series from immutable state snapshots, pre-rendered.

Per-target metrics come from :class:`SnapshotCollector` (each check's latest result and
counters, from the immutable :class:`~scd_monitor.analysis.views.Snapshot` the daemon
publishes before each scrape) and :class:`StateCollector` (check and service states, SLA
figures). At tens of thousands of checks they cannot be rebuilt object by object at
every scrape: each check's text is rendered once per change of its inputs and cached
as bytes, one block per metric family (:mod:`scd_monitor.web.exposition`), and a scrape
joins the blocks per family. A check removed from the catalog is gone from the next
scrape. The daemon's own health uses ordinary client objects, without target labels.
Everything lives on one :class:`DaemonMetrics` built by the composition root; nothing
is registered globally.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from scd_monitor import __version__
from scd_monitor.analysis.selfcheck import CheckNow, SelfCheck, self_check
from scd_monitor.analysis.servicestate import service_state
from scd_monitor.analysis.views import CheckCounters, Snapshot
from scd_monitor.catalog.models import Catalog, MonitorSelf, ResolvedCheck, Service
from scd_monitor.clock import Clock
from scd_monitor.sla.bands import Band, BandBounds
from scd_monitor.sla.model import State
from scd_monitor.store.writer import WriterStats
from scd_monitor.web.exposition import (
    Chunk,
    FamilyTable,
    esc,
    fmt,
    gzip_chunks,
    header,
    join_text,
    scalar,
)

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


class PreRenderedCollector(Collector):
    """A collector whose text is rendered by itself and cached (:mod:`.exposition`).

    :meth:`expose` gives the chunks :class:`DaemonMetrics` serves. :meth:`collect`, for an
    ordinary prometheus_client registry (tests, tools), parses that same text back into
    families: one rendering, whichever way it is read.
    """

    def expose(self) -> list[Chunk]:
        raise NotImplementedError

    def collect(self) -> Iterable[Metric]:
        yield from text_string_to_metric_families(join_text(self.expose()).decode("utf-8"))


_PROBE_FAMILIES = (
    ("scd_check_info", "Descriptive attributes of each check in the catalog.", "gauge"),
    ("scd_probe_success", "1 if the check's last probe succeeded, else 0.", "gauge"),
    ("scd_probe_duration_seconds", "Wall-clock duration of the check's last probe.", "gauge"),
    (
        "scd_probe_phase_duration_seconds",
        "Duration of each phase (connect, tls, first_byte, transfer) of the last probe.",
        "gauge",
    ),
    (
        "scd_probe_last_run_timestamp_seconds",
        "Unix time at which the check's last probe started.",
        "gauge",
    ),
    (
        "scd_probe_http_status_code",
        "HTTP status code of the last probe (absent when no response was received).",
        "gauge",
    ),
    (
        "scd_probe_cert_expiry_timestamp_seconds",
        "Unix time at which the peer's certificate seen by the last probe expires.",
        "gauge",
    ),
    ("scd_probe_error", "1 for the error kind of the last probe when it failed.", "gauge"),
    ("scd_probes_total", "Probes run since the daemon started.", "counter"),
    (
        "scd_probe_failures_total",
        "Failed probes since the daemon started, by error kind.",
        "counter",
    ),
    (
        "scd_oidc_failed_step",
        "1 for the step at which the last probe of an oidc check failed "
        "(discovery, jwks, authorization, token, userinfo, end_session, client_credentials).",
        "gauge",
    ),
    (
        "scd_oidc_jwks_keys",
        "Keys in the JWKS of an oidc check's provider, as its last probe read it.",
        "gauge",
    ),
    (
        "scd_oidc_x5c_expiry_timestamp_seconds",
        "Unix time at which the earliest x5c certificate of the provider's JWKS expires.",
        "gauge",
    ),
)
_NO_RESULT = (b"",) * (len(_PROBE_FAMILIES) - 1)


@dataclass(slots=True)
class _ProbeEntry:
    """What one check's cached blocks were rendered from (compared by identity)."""

    check: ResolvedCheck
    labels: tuple[str, str, str]
    """``check="…"``, ``kind="…"`` and ``provider="…",service="…",vantage="…"``: the
    target labels escaped, in the order the text format sorts them around the extras."""
    info: bytes
    result: ProbeResult | None
    counters: CheckCounters | None


def _check_info(check: ResolvedCheck) -> bytes:
    sla = check.sla
    return (
        "scd_check_info{"
        f'availability_target="{esc(f"{sla.availability_target:g}")}",'
        f'check="{esc(check.check)}",'
        f'critical="{"true" if check.critical else "false"}",'
        f'interval_seconds="{esc(f"{check.interval.total_seconds():g}")}",'
        f'kind="{esc(check.kind)}",'
        f'latency_threshold_seconds="{esc(f"{sla.latency_threshold.total_seconds():g}")}",'
        f'provider="{esc(check.provider)}",'
        f'provider_name="{esc(check.provider_name)}",'
        f'service="{esc(check.service)}",'
        f'service_type="{esc(check.service_type)}",'
        f'target="{esc(check.target)}",'
        f'timeout_seconds="{esc(f"{check.timeout.total_seconds():g}")}"'
        "} 1.0\n"
    ).encode()


def _probe_blocks(entry: _ProbeEntry) -> tuple[bytes, ...]:
    """The check's text in each family of :data:`_PROBE_FAMILIES`."""
    result = entry.result
    if result is None:
        return (entry.info, *_NO_RESULT)
    c, k, rest = entry.labels
    key = f"{{{c},{k},{rest}}} "
    o = result.outcome
    phases = "".join(
        f'scd_probe_phase_duration_seconds{{{c},{k},phase="{esc(name)}",{rest}}} {fmt(seconds)}\n'
        for name, seconds in o.phases.items()
    )
    status = (
        f"scd_probe_http_status_code{key}{fmt(float(o.status_code))}\n"
        if o.status_code is not None
        else ""
    )
    expiry = (
        f"scd_probe_cert_expiry_timestamp_seconds{key}{fmt(o.cert_not_after.timestamp())}\n"
        if o.cert_not_after is not None
        else ""
    )
    error = (
        f'scd_probe_error{{{c},error_kind="{esc(o.error_kind.value)}",{k},{rest}}} 1.0\n'
        if not o.ok and o.error_kind is not None
        else ""
    )
    runs = failures = ""
    counters = entry.counters
    if counters is not None:
        runs = f"scd_probes_total{key}{fmt(float(counters.runs))}\n"
        failures = "".join(
            f'scd_probe_failures_total{{{c},error_kind="{esc(kind)}",{k},{rest}}} {fmt(float(n))}\n'
            for kind, n in sorted(counters.failures_by_kind.items())
        )
    step = jwks_keys = x5c = ""
    if result.kind == "oidc":
        details = o.details
        failed = details.get("step")
        if not o.ok and isinstance(failed, str):
            step = f'scd_oidc_failed_step{{{c},{k},{rest},step="{esc(failed)}"}} 1.0\n'
        keys = details.get("jwks_keys")
        if isinstance(keys, int) and not isinstance(keys, bool):
            jwks_keys = f"scd_oidc_jwks_keys{key}{fmt(float(keys))}\n"
        x5c_at = _timestamp(details.get("x5c_not_after"))
        if x5c_at is not None:
            x5c = f"scd_oidc_x5c_expiry_timestamp_seconds{key}{fmt(x5c_at)}\n"
    return (
        entry.info,
        f"scd_probe_success{key}{'1.0' if o.ok else '0.0'}\n".encode(),
        f"scd_probe_duration_seconds{key}{fmt(result.duration)}\n".encode(),
        phases.encode(),
        f"scd_probe_last_run_timestamp_seconds{key}{fmt(result.started_at.timestamp())}\n".encode(),
        status.encode(),
        expiry.encode(),
        error.encode(),
        runs.encode(),
        failures.encode(),
        step.encode(),
        jwks_keys.encode(),
        x5c.encode(),
    )


def _timestamp(value: object) -> float | None:
    """Unix time of an ISO 8601 text with an offset (a probe's detail), else None."""
    if not isinstance(value, str):
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return None
    return instant.timestamp() if instant.tzinfo is not None else None


class SnapshotCollector(PreRenderedCollector):
    """Per-check series from the latest snapshot, plus the store and catalog figures.

    Each check's blocks are rendered again only when its latest result, its counters or
    its catalog entry (a new object after a reload) changed since the previous scrape;
    every other check's cached text is reused as it is.
    """

    def __init__(
        self, snapshot: Callable[[], Snapshot], status: Callable[[], DaemonStatus]
    ) -> None:
        self._snapshot = snapshot
        self._status = status
        self._lock = threading.Lock()
        self._table = FamilyTable([header(*f) for f in _PROBE_FAMILIES])
        self._entries: dict[str, _ProbeEntry] = {}
        self._checks: Sequence[ResolvedCheck] | None = None
        self._ids: list[str] = []
        self._vantage: str | None = None

    @property
    def table(self) -> FamilyTable:
        return self._table

    def expose(self) -> list[Chunk]:
        snap = self._snapshot()
        status = self._status()
        with self._lock:
            self._refresh(snap)
            chunks = self._table.chunks()
        chunks.append(Chunk(_daemon_status(status, len(snap.checks))))
        return chunks

    def _refresh(self, snap: Snapshot) -> None:
        checks, vantage, table = snap.checks, snap.vantage, self._table
        if checks is not self._checks or vantage != self._vantage:
            ids = [c.id for c in checks]
            if vantage != self._vantage:
                self._entries = {}
                table.sync(())
            table.sync(ids)
            self._entries = {i: e for i in ids if (e := self._entries.get(i)) is not None}
            self._checks, self._ids, self._vantage = checks, ids, vantage
        entries, latest, counters = self._entries, snap.latest, snap.counters
        for cid, check in zip(self._ids, checks, strict=True):
            result = latest.get(cid)
            count = counters.get(cid)
            entry = entries.get(cid)
            if entry is not None and entry.check is check:
                if entry.result is result and _same_counters(entry.counters, count):
                    continue
                entry.result, entry.counters = result, count
            else:
                entry = entries[cid] = _ProbeEntry(
                    check,
                    (
                        f'check="{esc(check.check)}"',
                        f'kind="{esc(check.kind)}"',
                        f'provider="{esc(check.provider)}",service="{esc(check.service)}",'
                        f'vantage="{esc(vantage)}"',
                    ),
                    _check_info(check),
                    result,
                    count,
                )
            table.put(cid, _probe_blocks(entry))


def _same_counters(a: CheckCounters | None, b: CheckCounters | None) -> bool:
    if a is b:
        return True
    if a is None or b is None or a.runs != b.runs:
        return False
    fa, fb = a.failures_by_kind, b.failures_by_kind
    return (not fa and not fb) or fa == fb


def _daemon_status(status: DaemonStatus, checks: int) -> bytes:
    writer = status.writer
    parts = (
        (
            "scd_store_pending_results",
            "Probe results waiting to be written to the store.",
            "gauge",
            writer.pending,
        ),
        (
            "scd_store_written_results_total",
            "Probe results written to the store.",
            "counter",
            writer.written_total,
        ),
        (
            "scd_store_write_errors_total",
            "Failed batch writes to the store.",
            "counter",
            writer.errors_total,
        ),
        (
            "scd_store_dropped_results_total",
            "Probe results dropped because the in-memory buffer was full.",
            "counter",
            writer.dropped_total,
        ),
        (
            "scd_store_healthy",
            "1 if the last write to the store succeeded.",
            "gauge",
            int(writer.healthy),
        ),
        (
            "scd_store_poisoned_results_total",
            "Probe results stored in a changed form: unstorable values replaced, or "
            "isolated from a refused batch and stored with a note instead of their details.",
            "counter",
            writer.poisoned_total,
        ),
        (
            "scd_store_writer_restarts_total",
            "Times the store writer failed on its own error and was started again.",
            "counter",
            writer.restarts_total,
        ),
        ("scd_store_writer_up", "1 if the store writer thread runs.", "gauge", int(writer.alive)),
        (
            "scd_store_stalled_seconds",
            "Seconds since results were last written while some are waiting (0: none wait).",
            "gauge",
            writer.stalled_seconds,
        ),
        (
            "scd_store_spool_errors_total",
            "Failures to append to, sync or clean the on-disk spool of unwritten results.",
            "counter",
            writer.journal_errors_total,
        ),
        (
            "scd_store_spool_files",
            "Spool files holding results not yet known to be written to the store.",
            "gauge",
            writer.spool_files,
        ),
        ("scd_catalog_checks", "Enabled checks in the loaded catalog.", "gauge", checks),
        (
            "scd_catalog_loaded_timestamp_seconds",
            "Unix time at which the catalog in use was loaded.",
            "gauge",
            status.catalog_loaded_timestamp,
        ),
        (
            "scd_catalog_reload_failures_total",
            "Catalog reloads refused because the file was invalid (the old catalog stays).",
            "counter",
            status.catalog_reload_failures,
        ),
        (
            "scd_catalog_last_reload_successful",
            "1 if the last catalog reload succeeded (or none was asked for), else 0.",
            "gauge",
            int(status.catalog_last_reload_ok),
        ),
        ("scd_scheduler_jobs", "Checks scheduled by this daemon.", "gauge", status.scheduled_jobs),
    )
    return b"".join(scalar(name, doc, kind, float(value)) for name, doc, kind, value in parts)


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
        self._collectors: list[Collector] = []

    def add_collector(self, collector: Collector) -> None:
        """Serve ``collector`` after the daemon's own instruments, in the order added. A
        :class:`PreRenderedCollector` gives its cached chunks; any other collector is
        rendered by ``generate_latest`` at each scrape."""
        self._collectors.append(collector)

    def chunks(self) -> list[Chunk]:
        """The exposition, as pieces: the registry's instruments, then each collector's."""
        out = [Chunk(generate_latest(self.registry))]
        for collector in self._collectors:
            if isinstance(collector, PreRenderedCollector):
                out.extend(collector.expose())
            else:
                out.append(Chunk(generate_latest(collector)))
        return out

    def render(self) -> bytes:
        """The text exposition format (0.0.4) of every metric."""
        return join_text(self.chunks())

    def render_gzip(self) -> bytes:
        """:meth:`render`, gzipped; the per-check text's compressed segments are cached."""
        return gzip_chunks(self.chunks())


_WINDOW_LABELS = {3600: "1h", 21600: "6h", 86400: "1d", 259200: "3d"}

_STATE_FAMILIES = (
    (
        "scd_check_state",
        "1 for the check's current state (up, down, degraded, maintenance, unknown).",
        "gauge",
    ),
    (
        "scd_check_down_since_timestamp_seconds",
        "Start of the check's current confirmed outage (first failing probe).",
        "gauge",
    ),
)
_SERVICE_FAMILIES = (
    (
        "scd_service_state",
        "1 for the service's current state as seen from this vantage.",
        "gauge",
    ),
    (
        "scd_service_up",
        "1 if the service is up (or degraded), 0 if down; absent when unknown or in "
        "maintenance. From this vantage, by the service's rule.",
        "gauge",
    ),
)
_STATES = tuple((s, f'state="{esc(s.value)}"') for s in State)


def _vantage_metrics(verdict: SelfCheck, vantage: str) -> bytes:
    v = f'vantage="{esc(vantage)}"'
    causes = verdict.causes
    faults = "".join(
        f'scd_vantage_fault{{cause="{cause}",{v}}} {"1.0" if cause in causes else "0.0"}\n'
        for cause in ("canaries", "mass_failure", "network_path")
    )
    return (
        header(
            "scd_vantage_trusted",
            "1 while this vantage can trust its own view, 0 while its canaries, a mass "
            "failure or its network path say the monitor is at fault (its time is then "
            "unknown, never charged).",
            "gauge",
        )
        + f"scd_vantage_trusted{{{v}}} {'1.0' if verdict.trusted else '0.0'}\n".encode()
        + header(
            "scd_vantage_fault",
            "1 for each self-check rule that holds now at this vantage (canaries, "
            "mass_failure, network_path).",
            "gauge",
        )
        + faults.encode()
    )


@dataclass(slots=True)
class _StateEntry:
    """What one check's cached state blocks and self-check view were made from."""

    check: ResolvedCheck
    labels: str
    """``check="…",provider="…",service="…"``, escaped."""
    host: str
    state: State
    since: datetime | None
    result: ProbeResult | None
    now: CheckNow


class StateCollector(PreRenderedCollector):
    """Check and service states now, and month-to-date SLA figures per service.

    Cached: each check's state blocks (until its state, its outage start or its catalog
    entry changes), each service's state (until one of its checks' states changes; a
    service with maintenance windows is evaluated at every scrape, since the clock
    alone can open a window), the self-check verdict (until a check's view changes),
    the service ``_info`` (per catalog) and the SLA figures (per report and catalog).
    """

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
        self._lock = threading.Lock()
        self._table = FamilyTable([header(*f) for f in _STATE_FAMILIES])
        self._services = FamilyTable([header(*f) for f in _SERVICE_FAMILIES])
        self._entries: dict[str, _StateEntry] = {}
        self._service_entries: dict[tuple[str, str], State] = {}
        self._service_of: dict[tuple[str, str], Service] = {}
        self._service_catalog: Catalog | None = None
        self._timed: list[tuple[str, str]] = []
        self._dirty: set[tuple[str, str]] = set()
        self._seen: Sequence[ResolvedCheck] | None = None
        self._ids: list[str] = []
        self._groups: dict[tuple[str, str], list[str]] = {}
        self._verdict: tuple[MonitorSelf, SelfCheck] | None = None
        self._info: tuple[Catalog, Chunk] | None = None
        self._sla_chunk: tuple[SlaReport | None, Catalog, Chunk] | None = None

    @property
    def table(self) -> FamilyTable:
        return self._table

    def expose(self) -> list[Chunk]:
        checks = self._checks()
        states = self._states()
        latest = self._latest() if self._latest is not None else {}
        catalog = self._catalog()
        report = self._sla()
        now = self._clock.now()
        with self._lock:
            changed = self._refresh_checks(checks, states, latest)
            chunks = self._table.chunks()
            chunks.extend(self._service_chunks(catalog, now))
            verdict = self._self_check(catalog.monitor, changed)
            chunks.append(Chunk(_vantage_metrics(verdict, self._vantage)))
            if self._info is None or self._info[0] is not catalog:
                self._info = (catalog, Chunk(_service_info(catalog), cached=True))
            chunks.append(self._info[1])
            cached = self._sla_chunk
            if cached is None or cached[0] is not report or cached[1] is not catalog:
                cached = self._sla_chunk = (
                    report,
                    catalog,
                    Chunk(_sla_metrics(report, catalog), cached=True),
                )
            chunks.append(cached[2])
        return chunks

    def _refresh_checks(
        self,
        checks: Sequence[ResolvedCheck],
        states: Mapping[str, CheckStatus],
        latest: Mapping[str, ProbeResult],
    ) -> bool:
        """Bring the per-check entries up to date; True when the self-check's view of
        any check changed."""
        changed = False
        if checks is not self._seen:
            ids = [c.id for c in checks]
            self._table.sync(ids)
            self._entries = {i: e for i in ids if (e := self._entries.get(i)) is not None}
            groups: dict[tuple[str, str], list[str]] = {}
            for cid, check in zip(ids, checks, strict=True):
                if not check.canary:
                    groups.setdefault((check.provider, check.service), []).append(cid)
            self._seen, self._ids, self._groups = checks, ids, groups
            self._service_catalog = None  # the member checks are other objects now
            changed = True
        entries, table, vantage = self._entries, self._table, f'vantage="{esc(self._vantage)}"'
        unknown = State.UNKNOWN
        for cid, check in zip(self._ids, checks, strict=True):
            status = states.get(cid)
            if status is None:
                state, since = unknown, None
            else:
                state, since = status.state, status.since
            result = latest.get(cid)
            entry = entries.get(cid)
            if entry is not None and entry.check is check:
                if entry.state is state and entry.since == since:
                    if entry.result is result:
                        continue
                else:
                    entry.state, entry.since = state, since
                    table.put(cid, _state_blocks(entry, vantage))
                    self._dirty.add((check.provider, check.service))
            else:
                entry = entries[cid] = _StateEntry(
                    check,
                    f'check="{esc(check.check)}",provider="{esc(check.provider)}",'
                    f'service="{esc(check.service)}"',
                    check.host or cid,
                    state,
                    since,
                    result,
                    CheckNow(cid, check.provider, "", state),
                )
                table.put(cid, _state_blocks(entry, vantage))
            entry.result = result
            kind = (
                result.outcome.error_kind if result is not None and not result.outcome.ok else None
            )
            error = kind.value if kind is not None else None
            view = entry.now
            if view.state is not state or view.error_kind != error or view.host != entry.host:
                entry.now = CheckNow(
                    cid, check.provider, entry.host, state, error, canary=check.canary
                )
                changed = True
        return changed

    def _service_chunks(self, catalog: Catalog, now: datetime) -> list[Chunk]:
        """The services' state blocks: evaluated again when one of their checks' states
        changed, when the catalog or the checks changed, and at every scrape for a
        service with maintenance (the clock alone can open or close a window)."""
        table, cached = self._services, self._service_entries
        if catalog is not self._service_catalog:
            self._service_of = {
                key: service
                for key in self._groups
                if (service := catalog.service(*key)) is not None
            }
            self._service_catalog = catalog
            self._timed = [key for key, service in self._service_of.items() if service.maintenance]
            cached.clear()
            table.sync(list(self._service_of))
            todo: Iterable[tuple[str, str]] = self._service_of
        else:
            todo = self._dirty.union(self._timed)
        self._dirty = set()
        entries, services, vantage = self._entries, self._service_of, self._vantage
        for key in todo:
            service = services.get(key)
            if service is None:
                continue
            members = [(entries[cid].check, entries[cid].state) for cid in self._groups[key]]
            state = service_state(service, members, now=now, tz=catalog.tz, vantage=vantage)
            if cached.get(key) is not state:
                cached[key] = state
                table.put(key, _service_blocks(key, state, vantage))
        return table.chunks()

    def _self_check(self, monitor: MonitorSelf, changed: bool) -> SelfCheck:
        cached = self._verdict
        if cached is None or changed or cached[0] is not monitor:
            entries = self._entries
            cached = self._verdict = (
                monitor,
                self_check([entries[cid].now for cid in self._ids], monitor),
            )
        return cached[1]


def _state_blocks(entry: _StateEntry, vantage: str) -> tuple[bytes, bytes]:
    labels, state = entry.labels, entry.state
    lines = "".join(
        f"scd_check_state{{{labels},{value},{vantage}}} {'1.0' if s is state else '0.0'}\n"
        for s, value in _STATES
    )
    since = entry.since
    down = (
        f"scd_check_down_since_timestamp_seconds{{{labels},{vantage}}} {fmt(since.timestamp())}\n"
        if since is not None
        else ""
    )
    return lines.encode(), down.encode()


def _service_blocks(key: tuple[str, str], state: State, vantage: str) -> tuple[bytes, bytes]:
    labels = f'provider="{esc(key[0])}",service="{esc(key[1])}"'
    v = f'vantage="{esc(vantage)}"'
    lines = "".join(
        f"scd_service_state{{{labels},{value},{v}}} {'1.0' if s is state else '0.0'}\n"
        for s, value in _STATES
    )
    up = ""
    if state in (State.UP, State.DEGRADED):
        up = f"scd_service_up{{{labels},{v}}} 1.0\n"
    elif state is State.DOWN:
        up = f"scd_service_up{{{labels},{v}}} 0.0\n"
    return lines.encode(), up.encode()


def _sla_metrics(report: SlaReport | None, catalog: Catalog) -> bytes:
    families: dict[str, list[str]] = {name: [] for name, _doc in _SLA_FAMILIES}
    computed: list[str] = []
    if report is not None:
        computed.append(f"scd_sla_computed_timestamp_seconds {fmt(report.now.timestamp())}\n")
        for s in report.services:
            f = s.figures
            key = f'provider="{esc(s.provider)}",service="{esc(s.service)}"'
            families["scd_sla_target_ratio"].append(
                f"scd_sla_target_ratio{{{key}}} {fmt(f.target)}\n"
            )
            spec = catalog.service(s.provider, s.service)
            bounds = BandBounds.of(f.target, None if spec is None else spec.sla.amber_from)
            lower = families["scd_sla_band_lower_ratio"]
            for band, value in ((Band.GREEN, bounds.green_ratio), (Band.AMBER, bounds.amber_ratio)):
                lower.append(
                    f'scd_sla_band_lower_ratio{{band="{esc(band.value)}",{key}}} {fmt(value)}\n'
                )
            ratio = bounds.comparable_ratio(f.eligible, f.charged_downtime)
            if ratio is not None:
                families["scd_sla_availability_ratio"].append(
                    f"scd_sla_availability_ratio{{{key}}} {fmt(ratio)}\n"
                )
            if f.error_budget is not None and f.error_budget.remaining_ratio is not None:
                families["scd_sla_error_budget_remaining_ratio"].append(
                    f"scd_sla_error_budget_remaining_ratio{{{key}}} "
                    f"{fmt(f.error_budget.remaining_ratio)}\n"
                )
            for b in f.burn_rates:
                name = _WINDOW_LABELS.get(int(b.window.total_seconds()))
                if name is not None and b.rate is not None:
                    families["scd_sla_burn_rate"].append(
                        f'scd_sla_burn_rate{{{key},window="{name}"}} {fmt(b.rate)}\n'
                    )
            if f.coverage is not None:
                families["scd_sla_measurement_coverage_ratio"].append(
                    f"scd_sla_measurement_coverage_ratio{{{key}}} {fmt(f.coverage)}\n"
                )
            families["scd_sla_charged_downtime_seconds"].append(
                f"scd_sla_charged_downtime_seconds{{{key}}} "
                f"{fmt(f.charged_downtime.total_seconds())}\n"
            )
            families["scd_sla_outages"].append(
                f"scd_sla_outages{{{key}}} {fmt(float(f.outage_count))}\n"
            )
    out = [
        header(name, doc, "gauge") + "".join(families[name]).encode() for name, doc in _SLA_FAMILIES
    ]
    out.append(
        header(
            "scd_sla_computed_timestamp_seconds",
            "When the month-to-date SLA figures were last computed.",
            "gauge",
        )
        + "".join(computed).encode()
    )
    return b"".join(out)


_SLA_FAMILIES = (
    (
        "scd_sla_availability_ratio",
        "Month-to-date availability (eligible time not charged as downtime), rounded "
        "so that it compares with scd_sla_band_lower_ratio as the exact value does.",
    ),
    ("scd_sla_target_ratio", "The service's availability target (ANS)."),
    (
        "scd_sla_band_lower_ratio",
        "Lowest availability in each rango de medicion (green = the target, amber).",
    ),
    (
        "scd_sla_error_budget_remaining_ratio",
        "Share of the month's error budget left (negative when overspent).",
    ),
    ("scd_sla_burn_rate", "Error budget burn rate over a trailing window (1 = on budget)."),
    (
        "scd_sla_measurement_coverage_ratio",
        "Month-to-date share of time with trustworthy measurements.",
    ),
    ("scd_sla_charged_downtime_seconds", "Month-to-date downtime charged to the provider."),
    ("scd_sla_outages", "Month-to-date outages with charged time."),
)


def _service_info(catalog: Catalog) -> bytes:
    lines = []
    for provider in catalog.providers:
        for service in provider.services:
            rule = (
                service.rule if isinstance(service.rule, str) else f"quorum:{service.rule.quorum}"
            )
            sla = service.sla
            lines.append(
                "scd_service_info{"
                f'availability_target="{esc(f"{sla.availability_target:g}")}",'
                f'latency_threshold_seconds="{esc(f"{sla.latency_threshold.total_seconds():g}")}",'
                f'provider="{esc(provider.id)}",'
                f'provider_name="{esc(provider.name)}",'
                f'rule="{esc(rule)}",'
                f'service="{esc(service.id)}",'
                f'service_name="{esc(service.name or service.id)}",'
                f'service_type="{esc(service.type)}",'
                f'vantage_quorum="{esc(str(service.vantage_quorum))}"'
                "} 1.0\n"
            )
    return (
        header(
            "scd_service_info",
            "Descriptive attributes of each service in the catalog (names, type, SLA terms).",
            "gauge",
        )
        + "".join(lines).encode()
    )


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


class OidcKeyCollector(Collector):
    """Key rotations of OIDC providers the state tracker recorded since the start
    (:mod:`scd_monitor.store.oidckeys`): ``scd_oidc_key_changes_total``."""

    def __init__(self, counts: Callable[[], Mapping[tuple[str, str, bool], int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[Metric]:
        changes = CounterMetricFamily(
            "scd_oidc_key_changes",
            "Keys that appeared in or disappeared from an OIDC provider's JWKS since the "
            "daemon started; early = removed while a token it signed may still be valid.",
            labels=["provider", "service", "check", "change", "early"],
        )
        for (ident, change, early), n in sorted(self._counts().items()):
            provider, service, check = _split_id(ident)
            changes.add_metric(
                [provider, service, check, change, "true" if early else "false"], float(n)
            )
        yield changes


def _split_id(ident: str) -> tuple[str, str, str]:
    """``provider/service/check`` → its three parts (ids are slugs: no ``/`` inside)."""
    provider, _, rest = ident.partition("/")
    service, _, check = rest.partition("/")
    return provider, service, check
