"""The composition root: build every object from settings and a catalog, run, stop cleanly.

Nothing else in the package creates long-lived objects or reads the environment; tests
build the same graph with :func:`build` and their own clock, catalog or probes. The
daemon itself only wires, handles signals and runs the life cycle; the work is done by
the runtime's parts (scheduling, pipeline, tracker, discovery, catalogs, jobs).

Replicas (``SCD_MONITOR_SHARD=i/n``, :mod:`scd_monitor.runtime.shard`): every replica
of a vantage probes its share of the checks, reads the X-Road directories itself (it
needs the discovered checks of its share) and exports its own checks' probe series.
Shard 0, the primary, also does what must happen once per vantage: it tracks the states
of **every** check of the vantage (from the stored results of all its replicas), and
alone runs the month-to-date SLA, incidents and the outbox, operational monitoring,
pruning and the monthly export, stores the X-Road directories and their events, and
exports the check and service states, the vantage's self-check and the SLA figures.
``docs/escalado.md`` gives the reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

import structlog

from scd_monitor import __version__
from scd_monitor.analysis.reporting import SlaReport, SlaReporter
from scd_monitor.analysis.views import Snapshot
from scd_monitor.catalog import Catalog, ResolvedCheck, load_catalog
from scd_monitor.clock import Clock, SystemClock
from scd_monitor.config.settings import Settings
from scd_monitor.errors import ScdMonitorError, StoreError
from scd_monitor.exports import ExportSource, MonthFreezeJob, MonthlyExportJob, store_usage
from scd_monitor.exports.incidents import incidents_of
from scd_monitor.incidents.metrics import IncidentCollector
from scd_monitor.incidents.observe import KeyRemoval, Observations, observe
from scd_monitor.incidents.runner import IncidentRunner, build_runner
from scd_monitor.incidents.service import names_from_catalog
from scd_monitor.probes import build_probes
from scd_monitor.probes.base import Probe, ProbeResult
from scd_monitor.runtime.catalogs import CatalogInForce
from scd_monitor.runtime.discovery import DirectoryWatcher
from scd_monitor.runtime.heap import SETTLE_EVERY, settle
from scd_monitor.runtime.jobs import PeriodicJob, PeriodicJobs
from scd_monitor.runtime.opmon import OperationalMonitor
from scd_monitor.runtime.pipeline import ResultsPipeline
from scd_monitor.runtime.probing import ProbeWorkers
from scd_monitor.runtime.scheduling import ProbeScheduler, SchedulerObserver
from scd_monitor.runtime.shard import Shard
from scd_monitor.runtime.slaworker import MonthToDate
from scd_monitor.runtime.tracker import StateTracker
from scd_monitor.store import CheckRepository, ResultRepository, ResultWriter, Store
from scd_monitor.store.months import FrozenMonthRepository
from scd_monitor.store.oidckeys import KeyEvent
from scd_monitor.store.spool import Journal
from scd_monitor.store.usage import UsageRepository
from scd_monitor.web import Readiness, WebEndpoints, web_server
from scd_monitor.web.metrics import (
    ComponentCollector,
    ComponentStatus,
    DaemonMetrics,
    DaemonStatus,
    DirectoryCollector,
    OidcKeyCollector,
    SnapshotCollector,
    StateCollector,
)
from scd_monitor.web.xroad_usage import UsageCollector

log = structlog.get_logger("scd_monitor.runtime.daemon")

_SCHEMA_RETRY_SECONDS = 5.0
_STORE_STALE_SECONDS = 60.0
_PRUNE_EVERY = timedelta(hours=1)
_EXPORT_EVERY = timedelta(minutes=10)
SHARD_SETTLE = timedelta(seconds=60)
"""How long the sharded primary's tracker waits for a missing result id (another
replica's transaction in flight) before passing it (:mod:`scd_monitor.runtime.tracker`)."""


@dataclass
class Daemon:
    """Every long-lived object of one running daemon."""

    settings: Settings
    clock: Clock
    store: Store
    writer: ResultWriter
    pipeline: ResultsPipeline
    scheduler: ProbeScheduler | ProbeWorkers
    """Runs this replica's checks: here, or in probing processes (``probe_processes``)."""
    metrics: DaemonMetrics
    tracker: StateTracker
    watcher: DirectoryWatcher
    catalogs: CatalogInForce
    sla: MonthToDate
    usage: OperationalMonitor
    shard: Shard = field(default_factory=Shard)
    web: WebEndpoints | None = None
    incidents: IncidentRunner | None = None
    export_job: MonthlyExportJob | None = None
    freeze_job: MonthFreezeJob | None = None
    jobs: PeriodicJobs | None = None
    schema_ready: bool = False
    sla_report: SlaReport | None = None
    _published: Snapshot | None = None
    _components: Mapping[str, ComponentStatus] = field(default_factory=lambda: MappingProxyType({}))
    _started: bool = False
    _tracked: bool = False
    _discovering: bool = False
    _reload_task: asyncio.Task[None] | None = None
    _observations: Observations | None = None
    _reload_again: bool = False
    _all_checks: tuple[ResolvedCheck, ...] = ()

    @property
    def catalog(self) -> Catalog:
        """The catalog file's catalog."""
        return self.catalogs.file

    @property
    def effective(self) -> Catalog:
        """The catalog in force: the file's plus what the X-Road sources discovered."""
        return self.catalogs.effective

    # -- state for metrics and readiness ---------------------------------------------

    def publish_snapshot(self) -> None:
        """Take a snapshot on the event loop for the metrics thread to read."""
        self._published = self.pipeline.snapshot()
        self._components = self.component_statuses()

    def published_components(self) -> Mapping[str, ComponentStatus]:
        return self._components

    def component_statuses(self) -> Mapping[str, ComponentStatus]:
        """The supervised components now (on the event loop): tracker, sla, discovery,
        incidents, outbox, prune, export."""
        statuses = dict(self.jobs.statuses()) if self.jobs is not None else {}
        if isinstance(self.scheduler, ProbeWorkers) and self._started:
            statuses["probing"] = self.scheduler.status(self.clock.now().timestamp())
        error = self.catalogs.rebuild_error
        if error is not None:  # directories read, but their checks cannot come into force
            problem = f"discovery: the discovered checks cannot come into force: {error}"
            current = statuses.get("discovery")
            statuses["discovery"] = ComponentStatus(
                component="discovery",
                up=False,
                restarts_total=current.restarts_total if current else 0,
                last_success_timestamp=current.last_success_timestamp if current else None,
                problem="; ".join(p for p in (current and current.problem, problem) if p),
            )
        return MappingProxyType(statuses)

    def published_snapshot(self) -> Snapshot:
        snap = self._published
        return snap if snap is not None else self.pipeline.snapshot()

    def vantage_checks(self) -> Sequence[ResolvedCheck]:
        """Every check of the vantage (all replicas'): what the primary's states cover."""
        if not self.shard.sharded:
            return self.published_snapshot().checks
        return self._all_checks

    def vantage_latest(self) -> Mapping[str, ProbeResult]:
        """The latest result of every check of the vantage: this replica's own from the
        pipeline, the other replicas' as the sharded tracker last read them."""
        own = self.published_snapshot().latest
        if not self.shard.sharded:
            return own
        return {**self.tracker.latest(), **own}

    def status(self) -> DaemonStatus:
        return DaemonStatus(
            writer=self.writer.stats(),
            catalog_loaded_timestamp=self.catalogs.loaded_at,
            scheduled_jobs=self.scheduler.job_count,
            catalog_reload_failures=self.catalogs.reload_failures_total,
            catalog_last_reload_ok=self.catalogs.last_reload_ok,
        )

    def readiness(self) -> Readiness:
        reasons = []
        if not self.schema_ready:
            reasons.append("store: schema not created yet (database unreachable?)")
        stats = self.writer.stats()
        if not stats.alive:
            reasons.append(
                f"store: the writer thread is not running (restarts: {stats.restarts_total})"
            )
        if not stats.healthy:
            reasons.append(f"store: last write failed: {stats.last_error}")
        elif stats.stalled_seconds > _STORE_STALE_SECONDS:
            reasons.append(
                f"store: {stats.pending} results waiting, none written for "
                f"{stats.stalled_seconds:.0f} s"
            )
        for status in self.component_statuses().values():
            if not status.up:
                reasons.append(status.problem or f"{status.component}: down")
        return Readiness(ready=not reasons, reasons=tuple(reasons))

    def incident_observations(self) -> Observations | None:
        """What incident detection looks at now; None until the states are known."""
        gather = self._observation()
        return gather() if gather is not None else None

    def _observation(self) -> Callable[[], Observations] | None:
        """:func:`observe` over the immutable views of now (taken here, on the event loop),
        to be called anywhere; None until the states are known."""
        if not self.schema_ready or not self._tracked:
            return None
        return functools.partial(
            observe,
            self.effective,
            self.tracker.current(),
            now=self.clock.now(),
            vantage=self.settings.vantage,
            latest=self.vantage_latest(),
            sla=self.sla_report,
            directories=self.watcher.statuses(),
            key_removals=key_removals(self.tracker.early_key_removals()),
        )

    # -- the catalog in force ----------------------------------------------------------

    async def _follow(self, effective: Catalog, checks: Sequence[ResolvedCheck]) -> None:
        """Put ``effective`` in force in the tracker, the pipeline and the scheduler,
        without holding the event loop (tens of thousands of checks take seconds). The
        pipeline and the scheduler get this replica's share of ``checks``."""
        if self.shard.primary:
            await asyncio.to_thread(self.tracker.set_catalog, effective)
        self._all_checks = tuple(checks)
        mine = self.shard.select(checks)
        self.pipeline.set_checks(mine)
        if self._started:
            await self.scheduler.update_checks(mine)

    async def reload_catalog(self) -> bool:
        """Load the catalog file again, off the event loop; on any error keep the old one
        (:meth:`CatalogInForce.reload`). True when the new catalog is in force."""
        before = {source.id: source for source in self.catalog.xroad}
        catalog = await self.catalogs.reload()
        if catalog is None:
            return False
        if self.incidents is not None:
            self.incidents.configure(catalog.incidents, timezone=catalog.timezone)
        jobs = self.jobs
        if jobs is not None and not self.shard.primary:
            jobs.set_units("discovery", self._discovery_jobs())
            for source in catalog.xroad:
                if source.enabled and before.get(source.id) != source:
                    jobs.run_soon(f"discovery:{source.id}")
        elif jobs is not None:
            jobs.reschedule("incidents", catalog.incidents.evaluate_every)
            jobs.reschedule("outbox", catalog.incidents.outbox.interval)
            jobs.set_units("discovery", self._discovery_jobs())
            self.usage.set_sources(catalog.xroad)
            for name in ("opmon", "opmon-health"):
                jobs.set_units(name, [j for j in self.usage.jobs() if j.name == name])
            for source in catalog.xroad:
                if source.enabled and before.get(source.id) != source:
                    jobs.run_soon(f"discovery:{source.id}")  # new or changed: read it now
        return True

    def reload_soon(self) -> None:
        """SIGHUP: reload in a task of its own; one during a reload asks for another."""
        if self._reload_task is not None and not self._reload_task.done():
            self._reload_again = True
            return
        self._reload_again = True
        self._reload_task = asyncio.get_running_loop().create_task(self._reloads())

    async def _reloads(self) -> None:
        while self._reload_again:
            self._reload_again = False
            try:
                await self.reload_catalog()
            except Exception:  # a bug applying a loaded catalog: said, the next SIGHUP retries
                log.exception("catalog.reload_crashed", path=str(self.catalogs.path))

    async def _prepare_store(self) -> None:
        """Bring the schema to this release's and record the checks; retried until the
        database answers. Then start directory discovery (it needs the stored last good
        directories)."""
        delay = _SCHEMA_RETRY_SECONDS
        while True:
            checks = self.catalogs.checks()
            try:
                upgraded = await asyncio.to_thread(self.store.create_schema)
                if self.shard.primary:  # the vantage's checks are recorded by shard 0
                    await asyncio.to_thread(
                        CheckRepository(self.store).sync, checks, self.clock.now()
                    )
            except StoreError as exc:
                log.error("store.unavailable", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            self.schema_ready = True
            log.info(
                "store.schema",
                revision=upgraded.after,
                previous=upgraded.before,
                changed=upgraded.changed,
                detail=upgraded.line(),
            )
            self.catalogs.store_ready()
            log.info("store.ready", database=self.store.url_for_humans, checks=len(checks))
            break
        await self.watcher.load()
        if self.watcher.directories():
            self.catalogs.discovery_changed()
        self._discovering = True
        if self.jobs is not None:
            # Discovery, and the operational-data rounds that waited for the schema: now.
            for ident in [*self.jobs.idents("discovery"), *self.jobs.idents("opmon")]:
                self.jobs.run_soon(ident)

    # -- periodic jobs (runtime.jobs) -----------------------------------------------

    def periodic_jobs(self) -> list[PeriodicJob]:
        """Every background loop, supervised alike: the heap
        (:mod:`~scd_monitor.runtime.heap`), state tracking, month-to-date SLA, X-Road
        discovery (one unit per source), incident evaluation, the outbox, pruning and the
        monthly export. A replica other than shard 0 only keeps its heap and reads the
        directories (module doc)."""
        s = self.settings
        incidents = self.catalog.incidents
        # Once a minute after the start (every check has run, its state is built), then
        # every SETTLE_EVERY.
        heap = PeriodicJob(
            "heap", SETTLE_EVERY, self._settle_heap, first_after=timedelta(minutes=1)
        )
        if not self.shard.primary:
            return [heap, *self._discovery_jobs()]
        return [
            heap,
            PeriodicJob("tracker", s.state_interval, self._track),
            PeriodicJob("sla", s.sla_interval, self._refresh_sla),
            *self._discovery_jobs(),
            *self.usage.jobs(),
            PeriodicJob("incidents", incidents.evaluate_every, self._evaluate_incidents),
            PeriodicJob("outbox", incidents.outbox.interval, self._deliver_reports),
            PeriodicJob("prune", _PRUNE_EVERY, self._prune, first_after=timedelta(minutes=1)),
            PeriodicJob(
                "export", _EXPORT_EVERY, self._monthly_export, first_after=s.state_interval
            ),
        ]

    def _discovery_jobs(self) -> list[PeriodicJob]:
        """One job per enabled X-Road source: read its directory every ``interval``."""
        first = timedelta(0) if self._discovering else None
        return [
            PeriodicJob(
                "discovery",
                source.interval,
                functools.partial(self._discover, source.id),
                first_after=first,
                unit=source.id,
            )
            for source in self.catalog.xroad
            if source.enabled
        ]

    async def _discover(self, source: str) -> None:
        """Read one source's directory (after the stored ones are loaded). A directory
        that cannot be read is the source's failure, kept as data by the watcher; only
        an error of the watcher itself fails the round."""
        if self._discovering and source in self.watcher.statuses():
            await self.watcher.refresh(source)

    async def _evaluate_incidents(self) -> None:
        """One evaluation; what it looks at is gathered off the event loop (for tens of
        thousands of checks that takes seconds), from immutable views."""
        if self.incidents is None or not self.schema_ready:
            return
        gather = self._observation()
        self._observations = await asyncio.to_thread(gather) if gather is not None else None
        try:
            await self.incidents.evaluate_once()
        finally:
            self._observations = None

    def prepared_observations(self) -> Observations | None:
        """For the incident runner: the observations :meth:`_evaluate_incidents` gathered."""
        return self._observations

    async def _deliver_reports(self) -> bool:
        """One outbox round; True (another round at once) after a full batch."""
        if self.incidents is None or not self.schema_ready:
            return False
        stats = await self.incidents.dispatcher.run_once()
        return stats.claimed >= self.catalog.incidents.outbox.batch

    async def _track(self) -> None:
        """Turn stored results into state spans; the first time, bring the SLA forward."""
        if not self.schema_ready:
            return
        await asyncio.to_thread(self.tracker.run_until_idle)
        first = not self._tracked
        self._tracked = True
        if first and self.jobs is not None:
            self.jobs.run_soon("sla")

    async def _settle_heap(self) -> None:
        """Freeze the long-lived heap again (:mod:`scd_monitor.runtime.heap`); on the
        event loop: the collector holds the interpreter lock from any thread."""
        settle()

    async def _refresh_sla(self) -> None:
        if self.schema_ready:
            self.sla_report = await self.sla.compute()

    async def _prune(self) -> None:
        if not self.schema_ready:
            return
        cutoff = self.clock.now() - self.settings.results_retention
        deleted = await asyncio.to_thread(
            ResultRepository(self.store).prune, vantage=self.settings.vantage, older_than=cutoff
        )
        if deleted:
            log.info("store.pruned", results=deleted, older_than=cutoff.isoformat())
        usage_cutoff = self.clock.now() - self.settings.usage_retention
        buckets = await asyncio.to_thread(UsageRepository(self.store).delete_before, usage_cutoff)
        if buckets:
            log.info("store.pruned", usage_buckets=buckets, older_than=usage_cutoff.isoformat())

    async def _monthly_export(self) -> None:
        """Freeze last month once it closed; on the 1st (catalog time zone), write its
        export once (from the frozen figures)."""
        if not self._tracked:
            return
        now = self.clock.now()
        freeze = self.freeze_job
        if freeze is not None and freeze.due(now) is not None:
            with contextlib.suppress(ScdMonitorError):  # the job logged it and retries later
                await asyncio.to_thread(freeze.run, now)
        job = self.export_job
        if job is None or job.due(now) is None:
            return
        with contextlib.suppress(ScdMonitorError):  # the job logged it and retries later
            await asyncio.to_thread(job.run, now)

    # -- life cycle ------------------------------------------------------------------

    def _signals(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> list[int]:
        installed: list[int] = []
        handlers = {signal.SIGTERM: stop.set, signal.SIGINT: stop.set}
        handlers[signal.SIGHUP] = self.reload_soon
        for sig, handler in handlers.items():
            try:
                loop.add_signal_handler(sig, handler)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                pass
        return installed

    async def run(self, stop: asyncio.Event | None = None) -> int:
        """Run until ``stop`` is set or SIGTERM/SIGINT arrives. Returns the exit code."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        installed = self._signals(loop, stop)
        host, port = self.settings.listen_address
        assert self.web is not None
        server = web_server(self.web, host, port)
        try:
            await server.start()
        except OSError as exc:
            log.error("web.bind_failed", listen=self.settings.listen, error=str(exc))
            return 2
        if isinstance(self.scheduler, ProbeWorkers):
            self.scheduler.launch()  # they start while the daemon gets ready
        grace = self.settings.shutdown_grace.total_seconds()
        # Results an earlier run left in the spool: queued again, each file deleted once
        # its results are committed (a result already stored is skipped).
        await asyncio.to_thread(self.writer.recover)
        self.writer.start()
        self.watcher.set_sources(self.catalog.xroad)
        self.usage.set_sources(self.catalog.xroad)
        if self.shard.primary:
            self.sla.start()
        store_task = loop.create_task(self._prepare_store())
        jobs = self.jobs = PeriodicJobs(self.periodic_jobs(), clock=self.clock)
        jobs.start()
        checks = self.catalogs.checks()
        self._all_checks = tuple(checks)
        mine = self.shard.select(checks)
        self.pipeline.set_checks(mine)
        settle()  # the catalog and the graph are built: out of the collector's passes
        self.scheduler.start(mine)
        self._started = True
        log.info(
            "daemon.started",
            version=__version__,
            vantage=self.settings.vantage,
            shard=str(self.shard),
            probe_processes=(
                self.scheduler.count if isinstance(self.scheduler, ProbeWorkers) else 0
            ),
            listen=f"http://{host}:{server.port}",
            checks=len(mine),
            vantage_checks=len(checks),
            catalog=str(self.catalogs.path),
            database=self.store.url_for_humans,
        )
        try:
            await stop.wait()
        finally:
            log.info("daemon.stopping", in_flight=self.scheduler.in_flight)
            cancelled = await self.scheduler.stop(grace)
            # A reload in progress stops at its next YAML value (its thread is abandoned).
            await self.catalogs.close()
            if self._reload_task is not None:
                self._reload_task.cancel()
                await asyncio.gather(self._reload_task, return_exceptions=True)
            # Rounds in progress finish (in-flight deliveries among them; one cut short is
            # delivered again after a restart).
            await jobs.stop(grace)
            store_task.cancel()
            await asyncio.gather(store_task, return_exceptions=True)
            await self.watcher.close()
            # What the database did not take stays in the spool for the next start.
            flushed = await asyncio.to_thread(self.writer.close, grace)
            if flushed and self.schema_ready and self.shard.primary:
                await jobs.run_now("tracker")
            await server.stop()
            self.sla.close()
            for sig in installed:
                loop.remove_signal_handler(sig)
            self.store.dispose()
            log.info(
                "daemon.stopped",
                cancelled_probes=cancelled,
                flushed=flushed,
                written=self.writer.stats().written_total,
            )
        return 0


def key_removals(events: Sequence[KeyEvent]) -> list[KeyRemoval]:
    """Early key removals as incident detection sees them."""
    out = []
    for e in events:
        until = e.details.get("token_valid_until")
        try:
            valid = datetime.fromisoformat(until) if isinstance(until, str) else None
        except ValueError:
            valid = None
        out.append(KeyRemoval(e.check_id, e.kid, e.at, valid))
    return out


def build(
    settings: Settings,
    *,
    catalog: Catalog | None = None,
    clock: Clock | None = None,
    probes: Mapping[str, Probe] | None = None,
) -> Daemon:
    """Wire a daemon. Raises :class:`ConfigError` or :class:`StoreError` on bad input."""
    clock = clock or SystemClock()
    if catalog is None:
        catalog = load_catalog(settings.catalog)
    shard = Shard(settings.shard_index, settings.shard_count)
    metrics = DaemonMetrics(vantage=settings.vantage)
    store = Store(settings.database_url.get_secret_value())
    writer = ResultWriter(
        ResultRepository(store),
        journal=Journal(settings.spool_dir),
        batch_size=settings.store_batch_size,
        flush_interval=settings.store_flush_interval.total_seconds(),
        buffer_limit=settings.store_buffer_limit,
        observe_write=metrics.store_write.observe,
    )
    pipeline = ResultsPipeline(vantage=settings.vantage, sink=writer.submit)
    observer = SchedulerObserver(
        lag=metrics.scheduling_lag.observe,
        misfire=lambda _job: metrics.misfires.inc(),
        skipped=lambda _job: metrics.skipped.inc(),
        in_flight=metrics.in_flight.set,
    )
    # Probes given by the caller (tests) run here: they cannot be sent to a process.
    processes = settings.probe_process_count if probes is None else 0
    scheduler: ProbeScheduler | ProbeWorkers
    if processes:
        scheduler = ProbeWorkers(
            count=processes,
            shard=shard,
            on_result=pipeline.submit,
            vantage=settings.vantage,
            max_concurrency=settings.max_concurrency,
            log_format=settings.log_format,
            log_level=settings.log_level,
            observer=observer,
        )
    else:
        scheduler = ProbeScheduler(
            probes=probes if probes is not None else build_probes(),
            on_result=pipeline.submit,
            vantage=settings.vantage,
            clock=clock,
            max_concurrency=settings.max_concurrency,
            observer=observer,
        )
    tracker = StateTracker(
        store,
        vantage=settings.vantage,
        clock=clock,
        settle=SHARD_SETTLE if shard.sharded else None,
        keep_latest=shard.sharded,
    )
    # Shard 0 stores the directories and their events; the other replicas read the
    # directories only for their share of the discovered checks (no duplicate events).
    watcher = DirectoryWatcher(store=store if shard.primary else None, clock=clock)
    daemon: Daemon | None = None

    async def follow(effective: Catalog, checks: Sequence[ResolvedCheck]) -> None:
        if daemon is not None:
            await daemon._follow(effective, checks)

    catalogs = CatalogInForce(
        settings.catalog,
        catalog,
        watcher=watcher,
        store=store,
        clock=clock,
        follow=follow,
        records=shard.primary,
    )
    if shard.primary:
        tracker.set_catalog(catalogs.effective)
    daemon = Daemon(
        settings=settings,
        clock=clock,
        store=store,
        writer=writer,
        pipeline=pipeline,
        scheduler=scheduler,
        metrics=metrics,
        tracker=tracker,
        watcher=watcher,
        catalogs=catalogs,
        sla=MonthToDate(
            store=store,
            database_url=settings.database_url.get_secret_value(),
            catalog=lambda: catalogs.effective,
            clock=clock,
            worker=settings.sla_worker,
        ),
        usage=OperationalMonitor(
            UsageRepository(store), clock, ready=lambda: daemon is not None and daemon.schema_ready
        ),
        shard=shard,
    )
    watcher.on_change = catalogs.discovery_changed
    daemon.web = WebEndpoints(
        render_metrics=metrics.render,
        render_metrics_gzip=metrics.render_gzip,
        before_render=daemon.publish_snapshot,
        readiness=daemon.readiness,
    )
    metrics.add_collector(SnapshotCollector(daemon.published_snapshot, daemon.status))
    metrics.add_collector(DirectoryCollector(watcher.statuses))
    metrics.add_collector(ComponentCollector(daemon.published_components))
    if not shard.primary:
        # The states, the self-check, the SLA, incidents and X-Road use of the vantage are
        # shard 0's: the series of one vantage come from one process.
        return daemon
    metrics.add_collector(
        StateCollector(
            checks=daemon.vantage_checks,
            catalog=lambda: catalogs.effective,
            states=tracker.current,
            sla=lambda: daemon.sla_report,
            vantage=settings.vantage,
            clock=clock,
            latest=daemon.vantage_latest,
        )
    )
    metrics.add_collector(UsageCollector(daemon.usage.view))
    metrics.add_collector(OidcKeyCollector(tracker.key_changes))
    daemon.incidents = build_runner(
        catalog.incidents,
        store,
        clock,
        timezone=catalog.timezone,
        vantage=settings.vantage,
        observe=daemon.prepared_observations,
        names=lambda provider, service: names_from_catalog(catalogs.effective)(provider, service),
    )
    metrics.add_collector(IncidentCollector(daemon.incidents.snapshot))
    months = FrozenMonthRepository(store)

    def month_source() -> ExportSource:
        return ExportSource(
            SlaReporter(store, catalogs.effective, clock),
            catalogs.effective,
            usage=store_usage(store),
        )

    daemon.freeze_job = MonthFreezeJob(
        month_source, months, incidents=lambda period: incidents_of(store, period)
    )
    if settings.export_dir is not None and str(settings.export_dir):
        daemon.export_job = MonthlyExportJob(
            month_source,
            output_dir=settings.export_dir,
            incidents=lambda period: incidents_of(store, period),
            months=months,
        )
    return daemon
