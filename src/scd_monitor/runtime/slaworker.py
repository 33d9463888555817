"""Heavy SLA work in a worker process, so the daemon's event loop never waits on it.

Computing month-to-date figures for thousands of checks is pure Python that would hold
the GIL for seconds; run in a thread it delays probes (scheduling lag). The daemon calls
these functions through a one-process :class:`~concurrent.futures.ProcessPoolExecutor`.

The worker is given the **catalog in force** (the file's as last loaded successfully, plus
what discovery found), pickled, never the path of the file: a file broken on disk after
the start must not stop the SLA figures, and the figures must be those of the catalog the
probes and the state tracker use. A worker process that dies (killed, out of memory) is
replaced at the next round.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime

import structlog

from scd_monitor.analysis.reporting import SlaReport, SlaReporter
from scd_monitor.catalog import Catalog
from scd_monitor.clock import Clock, FixedClock
from scd_monitor.errors import StoreError
from scd_monitor.sla.calendar import month_of
from scd_monitor.store import Store

log = structlog.get_logger("scd_monitor.runtime.slaworker")


def watch_parent(parent: int, interval: float = 1.0) -> None:
    """In the worker: exit as soon as the daemon that started it is gone.

    A daemon killed with SIGKILL cannot stop its worker, and a pool worker waiting for
    work never notices (it holds both ends of its queue's pipe); without this it would
    live on as an orphan, one per crash."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(0)

    threading.Thread(target=watch, name="scd-parent-watch", daemon=True).start()


def month_to_date(database_url: str, catalog: Catalog, now: datetime) -> SlaReport:
    """Month-to-date figures of every service of ``catalog`` (the catalog in force: the
    file's plus the discovered services)."""
    store = Store(database_url)
    try:
        reporter = SlaReporter(store, catalog, FixedClock(now))
        return reporter.report(month_of(now, catalog.tz), now=now)
    finally:
        store.dispose()


class MonthToDate:
    """Month-to-date figures for the daemon: in a one-process pool when ``worker`` is on
    (the default), else in a thread (tests, tiny catalogs)."""

    def __init__(
        self,
        *,
        store: Store,
        database_url: str,
        catalog: Callable[[], Catalog],
        clock: Clock,
        worker: bool,
    ) -> None:
        self._store = store
        self._database_url = database_url
        self._catalog = catalog
        self._clock = clock
        self._worker = worker
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        if self._worker and self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=watch_parent,
                initargs=(os.getpid(),),
            )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def compute(self) -> SlaReport:
        now = self._clock.now()
        catalog = self._catalog()
        if not self._worker:
            reporter = SlaReporter(self._store, catalog, self._clock)
            return await asyncio.to_thread(reporter.report, month_of(now, catalog.tz), now=now)
        if self._pool is None:  # the last worker process died: a new one
            log.warning("sla.worker_restarted")
            self.start()
        pool = self._pool
        assert pool is not None
        try:
            return await asyncio.get_running_loop().run_in_executor(
                pool, month_to_date, self._database_url, catalog, now
            )
        except (BrokenProcessPool, OSError) as exc:
            pool.shutdown(wait=False, cancel_futures=True)
            if self._pool is pool:
                self._pool = None
            raise StoreError(f"the SLA worker process failed: {exc}") from exc
