"""Heavy SLA work in a worker process, so the daemon's event loop never waits on it.

Computing month-to-date figures for thousands of checks is pure Python that would hold
the GIL for seconds; run in a thread it delays probes (scheduling lag). The daemon calls
these functions through a one-process :class:`~concurrent.futures.ProcessPoolExecutor`;
each rebuilds what it needs from the database URL and the catalog file, so only plain
values cross the process boundary.
"""

from __future__ import annotations

from datetime import datetime

from scd_monitor.analysis.reporting import SlaReport, SlaReporter
from scd_monitor.catalog import load_catalog
from scd_monitor.catalog.discovered import effective_catalog
from scd_monitor.sla.calendar import month_of
from scd_monitor.store import Store


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
        catalog = effective_catalog(load_catalog(catalog_path), store)
        reporter = SlaReporter(store, catalog, _FixedClock(now))
        return reporter.report(month_of(now, catalog.tz), now=now)
    finally:
        store.dispose()
