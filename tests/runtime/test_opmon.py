"""The operational monitoring collector (issue 13), with a fake security server client and
an in-memory cursor store: paging from the cursor, the first start from ``lookback``, a
server's failure kept as data, the server's own publishing delay, no progress refused,
counters bounded and counting a request seen by both sides once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from scd_monitor.catalog.models import XRoadSource
from scd_monitor.runtime.opmon import OperationalMonitor, UsageCounters
from scd_monitor.web.xroad_usage import OTHER
from scd_monitor.xroad.errors import XRoadError, XRoadTransportError
from scd_monitor.xroad.identifiers import ClientId, ServiceId
from scd_monitor.xroad.opmon import OperationalDataPage, OperationalRecord, SecurityServerId

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
SERVER = "CO/GOB/8999999999/ss1"
PROVIDER = ClientId("CO", "GOB", "899999001", "CARPETA")
CONSUMER = ClientId("CO", "GOB", "899999002", "PORTAL")


def source(**opmon: object) -> XRoadSource:
    return XRoadSource.model_validate(
        {
            "id": "co",
            "instance": "CO",
            "security_server": {"url": "http://127.0.0.1:9", "client": "CO/GOB/8999999999/MON"},
            "provider": {"id": "interoperabilidad", "name": "Interoperabilidad"},
            "operational_monitoring": {"security_servers": [SERVER], **opmon},
        }
    )


def record(
    ts: int, *, ok: bool = True, side: str = "Producer", code: str = "x"
) -> OperationalRecord:
    return OperationalRecord(
        monitoring_data_ts=ts,
        side=side,  # type: ignore[arg-type]
        succeeded=ok,
        client=CONSUMER,
        service=ServiceId(PROVIDER, code),
        request_in_ts=ts * 1000,
        response_out_ts=ts * 1000 + 120,
        fault_code=None if ok else "Server.ServerProxy.ServiceFailed.HttpError",
    )


class FrozenClock:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return 0.0


class Cursors:
    """UsageRepository's cursor contract, in memory."""

    def __init__(self) -> None:
        self.cursors: dict[tuple[str, str], int] = {}
        self.stored: list[OperationalRecord] = []
        self.fail = False

    def buckets(self, start: datetime, end: datetime, *, source: str) -> list[object]:
        return []

    def cursor(self, source: str, server: str) -> int | None:
        return self.cursors.get((source, server))

    def set_cursor(self, source: str, server: str, value: int) -> None:
        self.cursors[(source, server)] = value

    def apply_page(
        self,
        source: str,
        server: str,
        records: Sequence[OperationalRecord],
        *,
        records_from: int,
        next_from: int,
        refused: int = 0,
    ) -> bool:
        if self.fail:
            raise RuntimeError("the database is gone")
        if self.cursors.get((source, server)) != records_from:
            return False
        self.stored.extend(records)
        self.cursors[(source, server)] = next_from
        return True


class Server:
    """Pages like X-Road: ``page`` records, then the rest of the last second."""

    def __init__(self, records: list[OperationalRecord], page: int = 3) -> None:
        self.records = sorted(records, key=lambda r: r.monitoring_data_ts)
        self.page = page
        self.calls: list[tuple[int, int]] = []
        self.error: Exception | None = None

    async def operational_data(
        self, server: SecurityServerId, records_from: int, records_to: int
    ) -> OperationalDataPage:
        self.calls.append((records_from, records_to))
        if self.error is not None:
            raise self.error
        found = [r for r in self.records if records_from <= r.monitoring_data_ts <= records_to]
        if len(found) <= self.page:
            return OperationalDataPage(records=tuple(found), records_count=len(found))
        last = found[self.page - 1].monitoring_data_ts
        page = [r for r in found if r.monitoring_data_ts <= last]
        return OperationalDataPage(
            records=tuple(page), records_count=len(page), next_records_from=last + 1
        )


def monitor(cursors: Cursors, server: Server, **opmon: object) -> OperationalMonitor:
    m = OperationalMonitor(cursors, FrozenClock(NOW))  # type: ignore[arg-type]
    m.set_sources([source(**opmon)])
    for entry in m._servers.values():
        entry.client = server  # type: ignore[assignment]
    return m


async def test_pages_from_the_lookback_to_the_publish_delay_each_record_once() -> None:
    now = int(NOW.timestamp())
    records = [record(now - 3600 + i * 7) for i in range(400)]  # 46 min of records
    records += [record(now - 3600 + 70, side="Client")] * 3  # several in one second
    records += [record(now - 30)]  # not published yet: after now - 1 min
    cursors, server = Cursors(), Server(records, page=50)
    m = monitor(cursors, server, lookback="1h")
    assert await m.collect("co", SERVER) is False
    assert len(cursors.stored) == len(records) - 1
    assert cursors.cursors[("co", SERVER)] == now - 60 + 1
    assert server.calls[0] == (now - 3600, now - 60)
    # the next round starts where the last committed page ended: nothing again
    server.calls.clear()
    await m.collect("co", SERVER)
    assert len(cursors.stored) == len(records) - 1
    view = m.view()
    (status,) = view.servers
    assert status.records_total == len(records) - 1
    assert status.up == {"operational_data": True}


async def test_a_failing_server_is_data_and_the_cursor_stays() -> None:
    now = int(NOW.timestamp())
    cursors, server = Cursors(), Server([record(now - 600)])
    m = monitor(cursors, server, lookback="1h")
    server.error = XRoadTransportError("connect", "connection refused")
    assert await m.collect("co", SERVER) is False
    assert cursors.cursors[("co", SERVER)] == now - 3600
    assert m.view().servers[0].up == {"operational_data": False}
    server.error = None
    await m.collect("co", SERVER)
    assert len(cursors.stored) == 1
    assert m.view().servers[0].up == {"operational_data": True}


async def test_records_not_available_yet_is_not_a_failure() -> None:
    cursors, server = Cursors(), Server([])
    m = monitor(cursors, server)
    server.error = XRoadError("Client.InvalidRequest", "Records not available from 1764849540 yet")
    await m.collect("co", SERVER)
    assert m.view().servers[0].up == {"operational_data": True}


async def test_a_store_failure_fails_the_round_for_the_supervisor() -> None:
    now = int(NOW.timestamp())
    cursors, server = Cursors(), Server([record(now - 600)])
    m = monitor(cursors, server)
    cursors.fail = True
    cursors.set_cursor("co", SERVER, now - 700)
    with pytest.raises(RuntimeError):
        await m.collect("co", SERVER)
    assert cursors.cursors[("co", SERVER)] == now - 700


async def test_a_server_that_sends_no_progress_is_refused() -> None:
    now = int(NOW.timestamp())

    class Stuck(Server):
        async def operational_data(
            self, server: SecurityServerId, records_from: int, records_to: int
        ) -> OperationalDataPage:
            return OperationalDataPage(
                records=(record(records_from),), records_count=1, next_records_from=records_from
            )

    cursors = Cursors()
    m = monitor(cursors, Stuck([]))
    cursors.set_cursor("co", SERVER, now - 700)
    await m.collect("co", SERVER)
    assert cursors.stored == [] and m.view().servers[0].up == {"operational_data": False}


async def test_max_pages_asks_for_another_round() -> None:
    now = int(NOW.timestamp())
    records = [record(now - 3000 + i) for i in range(100)]
    cursors, server = Cursors(), Server(records, page=10)
    m = monitor(cursors, server, max_pages=3)
    cursors.set_cursor("co", SERVER, now - 3600)
    assert await m.collect("co", SERVER) is True
    assert len(cursors.stored) == 30
    while await m.collect("co", SERVER):
        pass
    assert len(cursors.stored) == 100


def test_counters_count_a_request_seen_by_both_sides_once_and_fold_labels() -> None:
    counters = UsageCounters(cap=2)
    both = [record(1, side="Client"), record(1, side="Producer")]
    counters.add(both[1:])
    counters.add(both[:1])  # the consumer's server, read after the provider's
    counters.add([record(2, code="b"), record(3, code="c", ok=False)])
    totals = counters.totals()
    services = {key[1]: n for key, n in totals.services.items()}
    assert sum(totals.services.values()) == 3
    assert services[str(ServiceId(PROVIDER, "x"))] == 1
    assert services[OTHER] == 1  # the third service past the cap of 2
    assert totals.faults == {("provider", "Server.ServerProxy.ServiceFailed.HttpError"): 1}
    (counts, seconds) = totals.durations[str(PROVIDER.member)]
    assert sum(counts) == 3 and seconds == pytest.approx(0.36)


def test_a_reload_keeps_a_servers_state_and_drops_a_removed_one() -> None:
    cursors, server = Cursors(), Server([])
    m = monitor(cursors, server)
    assert [j.ident for j in m.jobs()] == [f"opmon:co:{SERVER}", f"opmon-health:co:{SERVER}"]
    m.set_sources([source(security_servers=[SERVER, "CO/GOB/8999999999/ss2"])])
    assert len(m.jobs()) == 4
    m.set_sources([source(enabled=False)])
    assert m.jobs() == [] and m.view().servers == ()


def test_the_view_renders_as_bounded_prometheus_series() -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from scd_monitor.web.xroad_usage import UsageCollector
    from scd_monitor.xroad.opmon import HealthData, ServiceHealth

    now = int(NOW.timestamp())
    cursors, server = Cursors(), Server([record(now - 600), record(now - 500, ok=False)])
    m = monitor(cursors, server)
    import asyncio

    asyncio.run(m.collect("co", SERVER))
    entry = next(iter(m._servers.values()))
    health = HealthData(
        monitoring_startup=NOW,
        statistics_period_seconds=600,
        services=(
            ServiceHealth(
                ServiceId(PROVIDER, "x"),
                5,
                1,
                last_successful=NOW,
                request_average_duration_ms=250.0,
            ),
        ),
    )
    m._update(entry, health=health)
    registry = CollectorRegistry()
    registry.register(UsageCollector(m.view))
    families = {
        f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())
    }
    requests = {
        s.labels["result"]: s.value
        for s in families["scd_xroad_service_requests"].samples
        if s.name.endswith("_total")
    }
    assert requests == {"success": 1.0, "failure": 1.0}
    count = [
        s
        for s in families["scd_xroad_service_request_duration_seconds"].samples
        if s.name.endswith("_count")
    ]
    assert [s.value for s in count] == [2.0]
    assert any(
        s.labels
        == {
            "source": "co",
            "security_server": SERVER,
            "service": str(ServiceId(PROVIDER, "x")),
            "stat": "avg",
        }
        and s.value == 0.25
        for s in families["scd_xroad_health_request_duration_seconds"].samples
    )
    cursor = families["scd_xroad_opmon_cursor_timestamp_seconds"].samples
    assert [s.value for s in cursor] == [float(now - 60 + 1)]


def test_services_seeded_from_the_store_count_their_provider_side_only() -> None:
    counters = UsageCounters(cap=10)
    counters.seed([str(ServiceId(PROVIDER, "x"))])
    counters.add([record(1, side="Client"), record(2, side="Client", code="y")])
    services = {key[1] for key in counters.totals().services}
    assert services == {str(ServiceId(PROVIDER, "y"))}
