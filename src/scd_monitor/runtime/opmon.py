"""X-Road operational monitoring as a data source: the collector.

For every enabled X-Road source with ``operational_monitoring``, and each security server
it names, two supervised jobs (:mod:`scd_monitor.runtime.jobs`, component ``opmon``):

* **records** every ``interval``: ``getSecurityServerOperationalData`` from the stored
  cursor up to now − ``publish_delay``, page after page (``nextRecordsFrom``). Each page
  is aggregated and stored **with the cursor moved to the next page in the same
  transaction** (:meth:`~scd_monitor.store.usage.UsageRepository.apply_page`): a crash, a
  kill or a restart anywhere between two pages loses nothing and counts nothing twice,
  because the next round asks again from the cursor that was committed with the last
  counted page. X-Road pages end on whole seconds, so a cursor never splits a second. The
  first round of a server starts ``lookback`` ago. A round reads at most ``max_pages``
  pages and then asks for another round at once, so catching up after a long stop never
  holds the job for hours.
* **health** every ``health_interval``: ``getSecurityServerHealthData``, kept in memory
  for the gauges (it describes the last statistics period only).

A security server that does not answer, answers a fault, or sends an answer that cannot be
read is the server's failure, kept as data (``scd_xroad_opmon_up`` 0, logged once when it
starts failing); the cursor stays and the next round asks again. Malformed records are left
out and counted (``scd_xroad_opmon_refused_records_total``); the others are kept. Only a
store that cannot be written fails the round (supervised, retried).

:meth:`OperationalMonitor.view` is an immutable view for the metrics thread.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from types import MappingProxyType

import structlog

from scd_monitor.catalog.models import OperationalMonitoring, XRoadSource
from scd_monitor.clock import Clock
from scd_monitor.net.tls import ContextCache
from scd_monitor.runtime.jobs import PeriodicJob
from scd_monitor.sanitize import clean_text
from scd_monitor.store.usage import UsageRepository
from scd_monitor.web.xroad_usage import (
    DURATION_BUCKETS_SECONDS,
    OTHER,
    ServerUsageStatus,
    UsageTotals,
    UsageView,
)
from scd_monitor.xroad.client import SecurityServerClient
from scd_monitor.xroad.errors import XRoadError, XRoadFailure, fault_side
from scd_monitor.xroad.identifiers import ClientId
from scd_monitor.xroad.opmon import HealthData, OperationalRecord, SecurityServerId

__all__ = ["OperationalMonitor", "UsageCounters"]

log = structlog.get_logger("scd_monitor.runtime.opmon")

_SOON = timedelta(seconds=1)
_SEED_WINDOW = timedelta(days=7)
_BOUNDS_MS = tuple(bound * 1000.0 for bound in DURATION_BUCKETS_SECONDS)
_NOT_YET = "not available"
"""What X-Road's fault says when ``recordsFrom`` is past what it has committed
(``Client.InvalidRequest: Records not available from … yet``)."""


class _Folded:
    """Label values admitted up to ``cap``; any later new value reads ``_other``."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) < self.cap:
            self._seen.add(value)
            return value
        return OTHER


class UsageCounters:
    """One source's totals of the records stored since the daemon started, with every
    label bounded (thread-safe: records are counted in a worker thread, read by the
    metrics thread)."""

    def __init__(self, cap: int) -> None:
        self._lock = threading.Lock()
        self._services: Counter[tuple[str, str, str]] = Counter()
        self._clients: Counter[tuple[str, str]] = Counter()
        self._faults: Counter[tuple[str, str]] = Counter()
        self._durations: dict[str, tuple[list[int], list[float]]] = {}
        self._service = _Folded(cap)
        self._member = _Folded(cap)
        self._client = _Folded(cap)
        self._code = _Folded(min(cap, 100))
        self._producer: set[str] = set()

    def seed(self, producer_services: Iterable[str]) -> None:
        """Services known (from the store) to have records of their provider's side."""
        with self._lock:
            self._producer.update(producer_services)

    def add(self, records: Sequence[OperationalRecord]) -> None:
        """Count a stored page. A request between two monitored security servers is
        recorded by both (a ``Client`` and a ``Producer`` record): per service, once its
        provider's records have been seen (in this page, an earlier one, or the store's
        last week), only those count. Client records of such a service counted before its
        first provider record arrived are not taken back: the figures of record are the
        stored aggregates (:mod:`scd_monitor.analysis.usage`), which apply the rule per
        period exactly."""
        with self._lock:
            self._producer.update(
                str(r.service) for r in records if r.side == "Producer" and r.service
            )
            for record in records:
                if record.side == "Client" and str(record.service) in self._producer:
                    continue
                result = "success" if record.succeeded else "failure"
                service = record.service
                member = self._member(str(service.client.member)) if service else ""
                name = self._service(str(service)) if service else ""
                self._services[(member, name, result)] += 1
                client = record.client
                self._clients[(self._client(str(client.member)) if client else "", result)] += 1
                if not record.succeeded:
                    code = record.fault_code or ""
                    side = fault_side(code) if code else "unknown"
                    self._faults[(side, self._code(clean_text(code, limit=120)))] += 1
                duration = record.duration_ms
                if duration is not None:
                    counts, total = self._durations.setdefault(
                        member, ([0] * (len(_BOUNDS_MS) + 1), [0.0])
                    )
                    counts[bisect.bisect_left(_BOUNDS_MS, duration)] += 1
                    total[0] += duration / 1000.0

    def totals(self) -> UsageTotals:
        with self._lock:
            return UsageTotals(
                services=MappingProxyType(dict(self._services)),
                clients=MappingProxyType(dict(self._clients)),
                faults=MappingProxyType(dict(self._faults)),
                durations=MappingProxyType(
                    {m: (tuple(c), t[0]) for m, (c, t) in self._durations.items()}
                ),
            )


@dataclass
class _Server:
    source: str
    server: SecurityServerId
    config: OperationalMonitoring
    client: SecurityServerClient
    status: ServerUsageStatus
    failing: dict[str, bool] = field(default_factory=dict)


class OperationalMonitor:
    """The collector of every source's operational monitoring (see the module doc)."""

    def __init__(
        self,
        repository: UsageRepository,
        clock: Clock,
        *,
        contexts: ContextCache | None = None,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        """``ready``: whether the store's schema is in place (rounds wait until it is)."""
        self._ready = ready
        self._repository = repository
        self._clock = clock
        self._contexts = contexts if contexts is not None else ContextCache()
        self._servers: dict[tuple[str, str], _Server] = {}
        self._counters: dict[str, UsageCounters] = {}
        self._statuses: tuple[ServerUsageStatus, ...] = ()
        self._seeded: set[str] = set()
        self._lock = threading.Lock()

    # -- configuration ---------------------------------------------------------------

    def set_sources(self, sources: Sequence[XRoadSource]) -> None:
        """The servers to read, from the catalog in force; a server kept across a reload
        keeps its state and counters."""
        servers: dict[tuple[str, str], _Server] = {}
        counters: dict[str, UsageCounters] = {}
        for source in sources:
            config = source.operational_monitoring
            ss = source.security_server
            if not source.enabled or config is None or not config.enabled or ss is None:
                continue
            old = self._counters.get(source.id)
            counters[source.id] = (
                old
                if old is not None and old._service.cap == config.max_label_values
                else UsageCounters(config.max_label_values)
            )
            client = SecurityServerClient(
                ss.url,
                client_id=ClientId.parse(ss.client),
                tls=ss.tls,
                contexts=self._contexts,
                timeout=source.timeout.total_seconds(),
            )
            for text in config.security_servers:
                server = SecurityServerId.parse(text)
                key = (source.id, str(server))
                previous = self._servers.get(key)
                status = (
                    previous.status
                    if previous is not None
                    else ServerUsageStatus(source=source.id, security_server=str(server))
                )
                servers[key] = _Server(source.id, server, config, client, status)
        with self._lock:
            self._servers = servers
            self._counters = counters
        self._publish()

    def jobs(self) -> list[PeriodicJob]:
        """Two supervised jobs per server: records and health data."""
        out: list[PeriodicJob] = []
        for (source, server), entry in sorted(self._servers.items()):
            unit = f"{source}:{server}"
            out.append(
                PeriodicJob(
                    "opmon",
                    entry.config.interval,
                    functools.partial(self.collect, source, server),
                    first_after=_SOON,
                    unit=unit,
                )
            )
            out.append(
                PeriodicJob(
                    "opmon-health",
                    entry.config.health_interval,
                    functools.partial(self.read_health, source, server),
                    first_after=_SOON,
                    unit=unit,
                )
            )
        return out

    # -- rounds ----------------------------------------------------------------------

    async def collect(self, source: str, server: str) -> bool:
        """One round of records; True when ``max_pages`` were read and more may wait."""
        entry = self._servers.get((source, server))
        if entry is None or not self._ready():
            return False
        config = entry.config
        now = int(self._clock.now().timestamp())
        until = now - int(config.publish_delay.total_seconds())
        if source not in self._seeded:
            self._seeded.add(source)
            await asyncio.to_thread(self._seed, source)
        cursor = await asyncio.to_thread(self._repository.cursor, source, server)
        if cursor is None:
            cursor = now - int(config.lookback.total_seconds())
            await asyncio.to_thread(self._repository.set_cursor, source, server, cursor)
        self._update(entry, cursor=cursor)
        pages = 0
        while cursor <= until and pages < config.max_pages:
            try:
                page = await entry.client.operational_data(entry.server, cursor, until)
            except XRoadError as exc:
                if _NOT_YET in exc.message.lower():  # the server's own delay is longer
                    self._answered(entry, "operational_data")
                    return False
                self._failed(entry, "operational_data", exc)
                return False
            except XRoadFailure as exc:
                self._failed(entry, "operational_data", exc)
                return False
            self._answered(entry, "operational_data")
            following = page.next_records_from
            if following is None:
                following = until + 1
            if following <= cursor:  # no progress: a broken server; ask again next round
                self._failed(entry, "operational_data", f"nextRecordsFrom {following} ≤ {cursor}")
                return False
            stored = await asyncio.to_thread(self._store, entry, page.records, cursor, following)
            if not stored:  # another writer moved the cursor: start again from it
                log.warning("opmon.cursor_moved", source=source, security_server=server)
                return True
            self._update(
                entry,
                cursor=following,
                records=len(page.records),
                refused=len(page.refused),
            )
            if page.refused:
                log.warning(
                    "opmon.records_refused",
                    source=source,
                    security_server=server,
                    refused=len(page.refused),
                    first=page.refused[0].reason,
                )
            cursor = following
            pages += 1
            if page.next_records_from is None or not page.records:
                break
        return pages >= config.max_pages

    def _seed(self, source: str) -> None:
        """The provider-side services of the source's last 7 days, for the counters."""
        counters = self._counters.get(source)
        if counters is None:
            return
        now = self._clock.now()
        buckets = self._repository.buckets(now - _SEED_WINDOW, now, source=source)
        counters.seed(b.service for b in buckets if b.side == "Producer" and b.service)

    def _store(
        self,
        entry: _Server,
        records: Sequence[OperationalRecord],
        cursor: int,
        following: int,
    ) -> bool:
        stored = self._repository.apply_page(
            entry.source,
            str(entry.server),
            records,
            records_from=cursor,
            next_from=following,
        )
        if stored:
            counters = self._counters.get(entry.source)
            if counters is not None:
                counters.add(records)
        return stored

    async def read_health(self, source: str, server: str) -> None:
        entry = self._servers.get((source, server))
        if entry is None:
            return
        try:
            health = await entry.client.health_data(entry.server)
        except XRoadFailure as exc:
            self._failed(entry, "health_data", exc)
            return
        self._answered(entry, "health_data")
        cap = entry.config.max_label_values
        if len(health.services) > cap:
            health = replace(health, services=health.services[:cap])
        self._update(entry, health=health)

    # -- state -----------------------------------------------------------------------

    def _failed(self, entry: _Server, call: str, error: object) -> None:
        if not entry.failing.get(call):
            log.warning(
                "opmon.fetch_failed",
                source=entry.source,
                security_server=str(entry.server),
                call=call,
                error=clean_text(str(error), limit=500),
            )
        entry.failing[call] = True
        self._update(entry, up={call: False})

    def _answered(self, entry: _Server, call: str) -> None:
        if entry.failing.get(call):
            log.info(
                "opmon.fetch_recovered",
                source=entry.source,
                security_server=str(entry.server),
                call=call,
            )
        entry.failing[call] = False
        self._update(entry, up={call: True}, last_success={call: self._clock.now().timestamp()})

    def _update(
        self,
        entry: _Server,
        *,
        cursor: int | None = None,
        records: int = 0,
        refused: int = 0,
        up: Mapping[str, bool] | None = None,
        last_success: Mapping[str, float] | None = None,
        health: HealthData | None = None,
    ) -> None:
        status = entry.status
        entry.status = replace(
            status,
            cursor=cursor if cursor is not None else status.cursor,
            records_total=status.records_total + records,
            refused_total=status.refused_total + refused,
            up=MappingProxyType({**status.up, **(up or {})}),
            last_success=MappingProxyType({**status.last_success, **(last_success or {})}),
            health=health if health is not None else status.health,
        )
        self._publish()

    def _publish(self) -> None:
        with self._lock:
            self._statuses = tuple(e.status for _, e in sorted(self._servers.items()))

    def view(self) -> UsageView:
        """An immutable view of now (any thread: the metrics thread at scrape time)."""
        with self._lock:
            counters = sorted(self._counters.items())
            statuses = self._statuses
        totals = {source: c.totals() for source, c in counters}
        return UsageView(servers=statuses, totals=MappingProxyType(totals))
