"""Heavy SLA work in a worker process, so the daemon's event loop never waits on it.

Computing month-to-date figures for thousands of checks is pure Python that would hold
the GIL for seconds; run in a thread it delays probes (scheduling lag). The daemon calls
these functions through a one-process :class:`~concurrent.futures.ProcessPoolExecutor`;
each rebuilds what it needs from the database URL and the catalog file, so only plain
values cross the process boundary.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from pathlib import Path

from scd_monitor.analysis.reporting import SlaReport, SlaReporter
from scd_monitor.catalog import Catalog, load_catalog
from scd_monitor.catalog.discovered import effective_catalog
from scd_monitor.clock import Clock
from scd_monitor.errors import StoreError
from scd_monitor.sla.calendar import month_of
from scd_monitor.store import DirectoryRepository, Store


class _FixedClock:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return 0.0


def month_to_date(database_url: str, catalog_path: str, now: datetime) -> SlaReport:
    """Month-to-date figures of every service (the catalog plus discovered services)."""
    store = Store(database_url)
    try:
        catalog = effective_catalog(load_catalog(catalog_path), DirectoryRepository(store))
        reporter = SlaReporter(store, catalog, _FixedClock(now))
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
        catalog_path: Path,
        catalog: Callable[[], Catalog],
        clock: Clock,
        worker: bool,
    ) -> None:
        self._store = store
        self._database_url = database_url
        self._catalog_path = catalog_path
        self._catalog = catalog
        self._clock = clock
        self._worker = worker
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        if self._worker and self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def compute(self) -> SlaReport:
        now = self._clock.now()
        if self._pool is None:
            catalog = self._catalog()
            reporter = SlaReporter(self._store, catalog, self._clock)
            return await asyncio.to_thread(reporter.report, month_of(now, catalog.tz), now=now)
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._pool, month_to_date, self._database_url, str(self._catalog_path), now
            )
        except (BrokenProcessPool, OSError) as exc:
            raise StoreError(f"the SLA worker process failed: {exc}") from exc
