"""The composition root: build every object from settings and a catalog, run, stop cleanly.

Nothing else in the package creates long-lived objects or reads the environment; tests
build the same graph with :func:`build` and their own clock, catalog or probes.

Two catalogs: :attr:`Daemon.catalog` is the file's; :attr:`Daemon.effective` is that one
plus what the X-Road directory sources discovered
(:func:`~scd_monitor.catalog.discovered.expand` over the
:class:`~scd_monitor.runtime.discovery.DirectoryWatcher`'s last good directories). Everything that
runs, stores, tracks or reports checks uses the effective one; it is rebuilt when the
file is reloaded and when a directory changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import structlog

from scd_monitor import __version__
from scd_monitor.analysis.reporting import SlaReport, SlaReporter
from scd_monitor.analysis.views import Snapshot
from scd_monitor.catalog import Catalog, ResolvedCheck, load_catalog
from scd_monitor.catalog.discovered import expand
from scd_monitor.clock import Clock, SystemClock
from scd_monitor.config.settings import Settings
from scd_monitor.errors import ConfigError, ScdMonitorError, StoreError
from scd_monitor.exports import ExportSource, MonthlyExportJob
from scd_monitor.exports.incidents import incidents_of
from scd_monitor.incidents.metrics import IncidentCollector
from scd_monitor.incidents.observe import Observations, observe
from scd_monitor.incidents.runner import IncidentRunner, build_runner
from scd_monitor.incidents.service import names_from_catalog
from scd_monitor.metrics import (
    DaemonMetrics,
    DaemonStatus,
    DirectoryCollector,
    SnapshotCollector,
    StateCollector,
)
from scd_monitor.probes import build_probes
from scd_monitor.probes.base import Probe
from scd_monitor.runtime.discovery import DirectoryWatcher
from scd_monitor.runtime.jobs import PeriodicJob, PeriodicJobs
from scd_monitor.runtime.pipeline import ResultsPipeline
from scd_monitor.runtime.scheduling import ProbeScheduler, SchedulerObserver
from scd_monitor.runtime.slaworker import month_to_date
from scd_monitor.runtime.tracker import StateTracker
from scd_monitor.sla.calendar import month_of
from scd_monitor.store import ResultWriter, Store
from scd_monitor.store.spool import load_spool, spool_results
from scd_monitor.web import Readiness, WebEndpoints, web_server

log = structlog.get_logger("scd_monitor.runtime.daemon")

_SCHEMA_RETRY_SECONDS = 5.0
_STORE_STALE_SECONDS = 60.0
_PRUNE_EVERY = timedelta(hours=1)
_EXPORT_EVERY = timedelta(minutes=10)


@dataclass
class Daemon:
    """Every long-lived object of one running daemon."""

    settings: Settings
    catalog_path: Path
    catalog: Catalog
    clock: Clock
    store: Store
    writer: ResultWriter
    pipeline: ResultsPipeline
    scheduler: ProbeScheduler
    metrics: DaemonMetrics
    web: WebEndpoints
    tracker: StateTracker
    watcher: DirectoryWatcher
    effective: Catalog
    """The catalog in force: the file's plus what the X-Road sources discovered."""
    catalog_loaded_at: float = field(default_factory=time.time)
    schema_ready: bool = False
    _published: Snapshot | None = None
    sla_report: SlaReport | None = None
    export_job: MonthlyExportJob | None = None
    _workers: ProcessPoolExecutor | None = None
    _started: bool = False
    _sync_wanted: Sequence[ResolvedCheck] | None = None
    _sync_task: asyncio.Task[None] | None = None
    _rebuild_wanted: bool = False
    _rebuild_task: asyncio.Task[None] | None = None
    incidents: IncidentRunner | None = None
    jobs: PeriodicJobs | None = None
    _tracked: bool = False

    def resolved_checks(self) -> list[ResolvedCheck]:
        """The checks in force: the catalog file's and the discovered ones."""
        return self.effective.resolved_checks()

    # -- state for metrics and readiness ---------------------------------------------

    def publish_snapshot(self) -> None:
        """Take a snapshot on the event loop for the metrics thread to read."""
        self._published = self.pipeline.snapshot()

    def published_snapshot(self) -> Snapshot:
        snap = self._published
        return snap if snap is not None else self.pipeline.snapshot()

    def status(self) -> DaemonStatus:
        return DaemonStatus(
            writer=self.writer.stats(),
            catalog_loaded_timestamp=self.catalog_loaded_at,
            scheduled_jobs=self.scheduler.job_count,
        )

    def readiness(self) -> Readiness:
        reasons = []
        if not self.schema_ready:
            reasons.append("store: schema not created yet (database unreachable?)")
        stats = self.writer.stats()
        if not stats.healthy:
            reasons.append(f"store: last write failed: {stats.last_error}")
        elif (
            stats.pending > 0
            and stats.last_success_monotonic is not None
            and time.monotonic() - stats.last_success_monotonic > _STORE_STALE_SECONDS
        ):
            reasons.append("store: no successful write in the last minute")
        return Readiness(ready=not reasons, reasons=tuple(reasons))

    # -- life cycle ------------------------------------------------------------------

    async def _prepare_store(self) -> None:
        """Create the schema and record the catalog; retried until the database answers.
        Then start directory discovery, which needs the stored last good directories."""
        delay = _SCHEMA_RETRY_SECONDS
        while True:
            checks = self.resolved_checks()
            try:
                await asyncio.to_thread(self.store.create_schema)
                await asyncio.to_thread(self.store.sync_checks, checks, self.clock.now())
            except StoreError as exc:
                log.error("store.unavailable", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            self.schema_ready = True
            log.info("store.ready", database=self.store.url_for_humans, checks=len(checks))
            break
        await self.watcher.load()
        if self.watcher.directories():
            self.discovery_changed()
        self.watcher.start()

    def _use(self, effective: Catalog, why: str) -> None:
        """Put ``effective`` in force: state tracker, pipeline, scheduler, store."""
        checks = effective.resolved_checks()
        self.effective = effective
        self.tracker.set_catalog(effective)
        self.pipeline.set_checks(checks)
        if self._started:
            self.scheduler.set_checks(checks)
        self._sync_checks(checks)
        log.info(
            "catalog.in_force",
            why=why,
            checks=len(checks),
            discovered_providers=len(effective.providers) - len(self.catalog.providers),
        )

    def _sync_checks(self, checks: Sequence[ResolvedCheck]) -> None:
        """Record the checks in the store, one sync at a time, the newest list winning."""
        self._sync_wanted = checks
        if not self.schema_ready:
            return  # _prepare_store records the checks in force once the store answers
        if self._sync_task is None or self._sync_task.done():
            self._sync_task = asyncio.get_running_loop().create_task(self._sync_loop())

    async def _sync_loop(self) -> None:
        while self._sync_wanted is not None:
            checks, self._sync_wanted = self._sync_wanted, None
            try:
                await asyncio.to_thread(self.store.sync_checks, checks, self.clock.now())
            except StoreError as exc:
                log.error("store.sync_failed", error=str(exc), retry_in_s=_SCHEMA_RETRY_SECONDS)
                if self._sync_wanted is None:
                    self._sync_wanted = checks
                await asyncio.sleep(_SCHEMA_RETRY_SECONDS)

    def discovery_changed(self) -> None:
        """A directory changed: rebuild the effective catalog (off the event loop)."""
        self._rebuild_wanted = True
        if self._rebuild_task is None or self._rebuild_task.done():
            self._rebuild_task = asyncio.get_running_loop().create_task(self._rebuild())

    async def _rebuild(self) -> None:
        while self._rebuild_wanted:
            self._rebuild_wanted = False
            catalog = self.catalog
            expansion = await asyncio.to_thread(expand, catalog, self.watcher.directories())
            if catalog is not self.catalog:
                continue  # reloaded meanwhile: reload_catalog expanded the new one
            for problem in expansion.problems:
                log.warning("catalog.discovery_problem", problem=problem)
            self._use(expansion.catalog, "directory changed")

    def reload_catalog(self) -> bool:
        """Load the catalog file again; on any error keep the old one and say why."""
        try:
            catalog = load_catalog(self.catalog_path)
        except ConfigError as exc:
            log.error("catalog.reload_failed", path=str(self.catalog_path), problems=exc.problems)
            return False
        self.catalog = catalog
        self.catalog_loaded_at = time.time()
        if self.incidents is not None:
            self.incidents.configure(catalog.incidents, timezone=catalog.timezone)
        self.watcher.set_sources(catalog.xroad)
        expansion = expand(catalog, self.watcher.directories())
        for problem in expansion.problems:
            log.warning("catalog.discovery_problem", problem=problem)
        self._use(expansion.catalog, "catalog reloaded")
        log.info(
            "catalog.reloaded",
            path=str(self.catalog_path),
            checks=len(self.effective.resolved_checks()),
        )
        return True

    # -- periodic jobs (runtime.jobs) -----------------------------------------------

    def periodic_jobs(self) -> list[PeriodicJob]:
        """State tracking, month-to-date SLA, pruning and the monthly export."""
        s = self.settings
        return [
            PeriodicJob("state", s.state_interval, self._track),
            PeriodicJob("sla", s.sla_interval, self._refresh_sla, first_after=s.sla_interval),
            PeriodicJob("prune", _PRUNE_EVERY, self._prune, first_after=timedelta(minutes=1)),
            PeriodicJob(
                "export", _EXPORT_EVERY, self._monthly_export, first_after=s.state_interval
            ),
        ]

    async def _track(self) -> None:
        """Turn stored results into state spans; the first time, bring the SLA forward."""
        if not self.schema_ready:
            return
        await asyncio.to_thread(self.tracker.run_until_idle)
        first = not self._tracked
        self._tracked = True
        if first and self.jobs is not None:
            self.jobs.run_soon("sla")

    async def _refresh_sla(self) -> None:
        if self.schema_ready:
            self.sla_report = await self._month_to_date()

    def incident_observations(self) -> Observations | None:
        """What incident detection looks at now; None until the states are known."""
        if not self.schema_ready or not self._tracked:
            return None
        return observe(
            self.effective,
            self.tracker.current(),
            now=self.clock.now(),
            vantage=self.settings.vantage,
            latest=self.published_snapshot().latest,
            sla=self.sla_report,
            directories=self.watcher.statuses(),
        )

    async def _prune(self) -> None:
        if not self.schema_ready:
            return
        cutoff = self.clock.now() - self.settings.results_retention
        deleted = await asyncio.to_thread(
            self.store.prune_results, vantage=self.settings.vantage, older_than=cutoff
        )
        if deleted:
            log.info("store.pruned", results=deleted, older_than=cutoff.isoformat())

    async def _month_to_date(self) -> SlaReport:
        """Month-to-date figures, computed in the worker process (see slaworker)."""
        now = self.clock.now()
        if self._workers is None:
            catalog = self.effective
            return await asyncio.to_thread(
                SlaReporter(self.store, catalog, self.clock).report,
                month_of(now, catalog.tz),
                now=now,
            )
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._workers,
                month_to_date,
                self.settings.database_url.get_secret_value(),
                str(self.catalog_path),
                now,
            )
        except (BrokenProcessPool, OSError) as exc:
            raise StoreError(f"the SLA worker process failed: {exc}") from exc

    async def _run_incidents(self, store_ready: asyncio.Task[None], stop: asyncio.Event) -> None:
        """Evaluate incidents and deliver reports once the schema exists (not before)."""
        await asyncio.wait({store_ready}, return_when=asyncio.FIRST_COMPLETED)
        if self.incidents is not None and self.schema_ready and not stop.is_set():
            await self.incidents.run(stop)

    async def _monthly_export(self) -> None:
        """On the 1st of the month (catalog time zone), write last month's export once."""
        job = self.export_job
        if job is None or not self._tracked:
            return
        now = self.clock.now()
        if job.due(now) is None:
            return
        with contextlib.suppress(ScdMonitorError):  # the job logged it and retries later
            await asyncio.to_thread(job.run, now)

    def _replay_spool(self) -> None:
        """Queue results spooled by an earlier stop; they are re-spooled if still unwritten."""
        results, files = load_spool(self.settings.spool_dir)
        for result in results:
            self.writer.submit(result)
        for path in files:
            path.unlink(missing_ok=True)
        if files:
            log.info("spool.replayed", results=len(results), files=len(files))

    def _spool_pending(self) -> None:
        pending = self.writer.take_pending()
        try:
            path = spool_results(self.settings.spool_dir, pending, now=self.clock.now())
        except OSError as exc:
            log.error("spool.write_failed", results=len(pending), error=str(exc))
            return
        log.warning(
            "spool.written",
            results=len(pending),
            path=str(path),
            hint="the database did not take them; they are written on the next start",
        )

    async def run(self, stop: asyncio.Event | None = None) -> int:
        """Run until ``stop`` is set or SIGTERM/SIGINT arrives. Returns the exit code."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                pass
        try:
            loop.add_signal_handler(signal.SIGHUP, self.reload_catalog)
            installed.append(signal.SIGHUP)
        except (NotImplementedError, RuntimeError, AttributeError):
            pass

        host, port = self.settings.listen_address
        server = web_server(self.web, host, port)
        try:
            await server.start()
        except OSError as exc:
            log.error("web.bind_failed", listen=self.settings.listen, error=str(exc))
            return 2
        self._replay_spool()
        self.writer.start()
        self.watcher.set_sources(self.catalog.xroad)
        if self.settings.sla_worker:
            self._workers = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        store_task = loop.create_task(self._prepare_store())
        jobs = self.jobs = PeriodicJobs(self.periodic_jobs(), clock=self.clock)
        jobs.start()
        incidents_stop = asyncio.Event()
        incidents_task = (
            loop.create_task(self._run_incidents(store_task, incidents_stop))
            if self.incidents is not None
            else None
        )
        checks = self.resolved_checks()
        self.pipeline.set_checks(checks)
        self.scheduler.start(checks)
        self._started = True
        log.info(
            "daemon.started",
            version=__version__,
            vantage=self.settings.vantage,
            listen=f"http://{host}:{server.port}",
            checks=len(checks),
            catalog=str(self.catalog_path),
            database=self.store.url_for_humans,
        )
        try:
            await stop.wait()
        finally:
            log.info("daemon.stopping", in_flight=self.scheduler.in_flight)
            cancelled = await self.scheduler.stop(self.settings.shutdown_grace.total_seconds())
            incidents_stop.set()
            if incidents_task is not None:
                # In-flight deliveries finish; one cut short is delivered again after a restart.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        incidents_task, self.settings.shutdown_grace.total_seconds()
                    )
            jobs.shutdown()
            store_task.cancel()
            tasks = [store_task, self._rebuild_task, self._sync_task]
            for task in tasks[1:]:
                if task is not None:
                    task.cancel()
            await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)
            await self.watcher.close()
            flushed = await asyncio.to_thread(
                self.writer.close, self.settings.shutdown_grace.total_seconds()
            )
            if not flushed:
                self._spool_pending()
            elif self.schema_ready:
                await jobs.run_now("state")
            await server.stop()
            if self._workers is not None:
                self._workers.shutdown(wait=False, cancel_futures=True)
                self._workers = None
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


def build(
    settings: Settings,
    *,
    catalog: Catalog | None = None,
    clock: Clock | None = None,
    probes: Mapping[str, Probe] | None = None,
) -> Daemon:
    """Wire a daemon. Raises :class:`ConfigError` or :class:`StoreError` on bad input."""
    clock = clock or SystemClock()
    catalog_path = settings.catalog
    if catalog is None:
        catalog = load_catalog(catalog_path)
    metrics = DaemonMetrics(vantage=settings.vantage)
    store = Store(settings.database_url.get_secret_value())
    writer = ResultWriter(
        store,
        batch_size=settings.store_batch_size,
        flush_interval=settings.store_flush_interval.total_seconds(),
        buffer_limit=settings.store_buffer_limit,
        observe_write=metrics.store_write.observe,
    )
    pipeline = ResultsPipeline(vantage=settings.vantage, sink=writer.submit)
    scheduler = ProbeScheduler(
        probes=probes if probes is not None else build_probes(),
        on_result=pipeline.submit,
        vantage=settings.vantage,
        clock=clock,
        max_concurrency=settings.max_concurrency,
        observer=SchedulerObserver(
            lag=metrics.scheduling_lag.observe,
            misfire=lambda _job: metrics.misfires.inc(),
            skipped=lambda _job: metrics.skipped.inc(),
            in_flight=metrics.in_flight.set,
        ),
    )
    tracker = StateTracker(store, vantage=settings.vantage, clock=clock)
    effective = expand(catalog, {}).catalog  # the platform checks; directories come later
    tracker.set_catalog(effective)
    watcher = DirectoryWatcher(store=store, clock=clock)
    daemon = Daemon(
        settings=settings,
        catalog_path=catalog_path,
        catalog=catalog,
        clock=clock,
        store=store,
        writer=writer,
        pipeline=pipeline,
        scheduler=scheduler,
        metrics=metrics,
        web=None,  # type: ignore[arg-type]  # set just below: it needs the daemon's methods
        tracker=tracker,
        watcher=watcher,
        effective=effective,
    )
    watcher.on_change = daemon.discovery_changed
    daemon.web = WebEndpoints(
        render_metrics=metrics.render,
        before_render=daemon.publish_snapshot,
        readiness=daemon.readiness,
    )
    metrics.add_collector(SnapshotCollector(daemon.published_snapshot, daemon.status))
    metrics.add_collector(
        StateCollector(
            checks=lambda: daemon.published_snapshot().checks,
            catalog=lambda: daemon.effective,
            states=tracker.current,
            sla=lambda: daemon.sla_report,
            vantage=settings.vantage,
            clock=clock,
        )
    )
    metrics.add_collector(DirectoryCollector(watcher.statuses))
    daemon.incidents = build_runner(
        catalog.incidents,
        store,
        clock,
        timezone=catalog.timezone,
        vantage=settings.vantage,
        observe=daemon.incident_observations,
        names=lambda provider, service: names_from_catalog(daemon.effective)(provider, service),
    )
    metrics.add_collector(IncidentCollector(daemon.incidents.snapshot))
    if settings.export_dir is not None and str(settings.export_dir):
        daemon.export_job = MonthlyExportJob(
            lambda: ExportSource(
                SlaReporter(daemon.store, daemon.effective, daemon.clock), daemon.effective
            ),
            output_dir=settings.export_dir,
            incidents=lambda period: incidents_of(daemon.store, period),
        )
    return daemon
