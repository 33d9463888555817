"""The fake security server's operational monitoring (``scd_simulator.opmon``), end to end
over real HTTP through :class:`SecurityServerClient`: paging walks collect exactly the
ground truth, pages end on whole seconds, the committed-time shift, X-Road's faults, and
health data equal to statistics computed here from the stored records."""

from __future__ import annotations

import asyncio
import gzip
import json
import statistics
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from scd_monitor.xroad import (
    ClientId,
    OperationalRecord,
    SecurityServerClient,
    SecurityServerId,
    ServiceId,
    XRoadError,
    build_operational_data_request,
)
from scd_simulator.cli import run_simulator
from scd_simulator.directory import XRoadDirectory
from scd_simulator.opmon import FAULTS, OpMonData
from scd_simulator.securityserver import FakeSecurityServer

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
NOW_S = int(NOW.timestamp())
COMMITTED = NOW_S - 60  # X-Road's default offset
MONITOR = ClientId("CO", "GOB", "8999999999", "MONITOR")


class FrozenClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return 0.0


def make_directory() -> XRoadDirectory:
    directory = XRoadDirectory.synthetic(12, 3, seed=3)
    directory.add_subsystem("GOB", MONITOR.member_code, "MONITOR", name="scd-monitor")
    return directory


def owner_server(directory: XRoadDirectory) -> SecurityServerId:
    return SecurityServerId.parse(directory.security_servers[0].id)


def key(record: OperationalRecord) -> tuple[str | None, str, int]:
    return (record.message_id, record.side, record.monitoring_data_ts)


def truth_key(record: dict[str, object]) -> tuple[object, object, object]:
    return (record["messageId"], record["securityServerType"], record["monitoringDataTs"])


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def directory() -> XRoadDirectory:
    return make_directory()


@pytest.fixture
def opmon(directory: XRoadDirectory, clock: FrozenClock) -> OpMonData:
    data = OpMonData(
        directory,
        max_records_in_payload=1000,
        clock=clock,
        started_at=NOW - timedelta(hours=2),
    )
    data.generate(50_000, NOW_S - 86_400, COMMITTED - 1, seed=7)
    return data


@pytest.fixture
async def ss(directory: XRoadDirectory, opmon: OpMonData) -> AsyncIterator[FakeSecurityServer]:
    async with FakeSecurityServer(directory, opmon=opmon) as server:
        yield server


def client_for(ss: FakeSecurityServer) -> SecurityServerClient:
    return SecurityServerClient(ss.url, client_id=MONITOR, timeout=10.0)


async def test_generated_data_is_deterministic_and_realistic(directory: XRoadDirectory) -> None:
    one, two = (OpMonData(directory, clock=FrozenClock(NOW)) for _ in range(2))
    first = one.generate(2000, NOW_S - 3600, NOW_S - 120, seed=11)
    assert first == two.generate(2000, NOW_S - 3600, NOW_S - 120, seed=11)
    assert first != OpMonData(directory).generate(2000, NOW_S - 3600, NOW_S - 120, seed=12)
    sides = Counter(r["securityServerType"] for r in first)
    assert set(sides) == {"Client", "Producer"} and min(sides.values()) > 800
    results = one.totals_by_result()
    assert sum(results.values()) == 2000
    assert 100 < 2000 - results["succeeded"] < 300  # about 10 % failed
    assert set(results) - {"succeeded"} <= {code for code, *_ in FAULTS}
    assert {"Server.ServerProxy.ServiceFailed.HttpError", "Client.InternalError"} <= set(results)
    for record in first:
        assert record["requestInTs"] <= record["responseOutTs"] <= record["monitoringDataTs"] * 1000
        assert ("faultCode" in record) is (record["succeeded"] is False)
    by_service = one.totals_by_service()
    assert sum(v["succeeded"] + v["failed"] for v in by_service.values()) == 2000
    subsystems = {s.id for s in directory.subsystems}
    assert {str(ServiceId.parse(sid).client) for sid in by_service} <= subsystems


async def test_walking_pages_from_zero_collects_exactly_the_truth(
    ss: FakeSecurityServer, opmon: OpMonData, directory: XRoadDirectory
) -> None:
    client = client_for(ss)
    server = owner_server(directory)
    records_to = COMMITTED - 1
    cursor, pages = 0, 0
    collected: list[OperationalRecord] = []
    while True:
        page = await client.operational_data(server, cursor, records_to)
        pages += 1
        assert page.refused == ()
        assert page.records_count == len(page.records)
        stamps = [r.monitoring_data_ts for r in page.records]
        assert stamps == sorted(stamps)
        collected.extend(page.records)
        if page.next_records_from is None:
            break
        # A page is the limit plus the rest of its last second, and ends on a whole second.
        last = stamps[-1]
        assert page.next_records_from == last + 1
        assert stamps.count(last) == opmon.count(last, last)
        assert 1000 <= len(stamps) <= 1000 + opmon.count(last, last)
        cursor = page.next_records_from
    assert pages >= 50
    keys = [key(r) for r in collected]
    assert len(keys) == len(set(keys)) == 50_000
    assert Counter(keys) == Counter(truth_key(r) for r in opmon.records())
    assert Counter(r.succeeded for r in collected)[True] == opmon.count(succeeded=True)
    failed = Counter(r.fault_code for r in collected if not r.succeeded)
    truth = opmon.totals_by_result()
    truth.pop("succeeded")
    assert failed == truth


async def test_records_to_past_the_committed_time_is_shifted(
    ss: FakeSecurityServer, opmon: OpMonData, clock: FrozenClock, directory: XRoadDirectory
) -> None:
    client = client_for(ss)
    server = owner_server(directory)
    service = "CO/GOB/800000000/SIS01/servicio01"
    monitor = str(MONITOR)
    for ts in (COMMITTED - 1, COMMITTED, NOW_S - 5):  # the last two are not committed yet
        opmon.add(ts, client=monitor, service=service, message_id=f"late-{ts}")
    start = COMMITTED - 30
    page = await client.operational_data(server, start, 2**40)
    assert page.next_records_from == COMMITTED
    stamps = [r.monitoring_data_ts for r in page.records]
    assert max(stamps) == COMMITTED - 1
    assert len(stamps) == opmon.count(start, COMMITTED - 1)
    assert "late-" + str(COMMITTED - 1) in {r.message_id for r in page.records}
    with pytest.raises(XRoadError) as caught:
        await client.operational_data(server, COMMITTED, 2**40)
    assert caught.value.code == "Client.InvalidRequest"
    assert caught.value.message == f"Records not available from {COMMITTED} yet"
    # Time passes: the records become available.
    clock.current = NOW + timedelta(seconds=120)
    page = await client.operational_data(server, COMMITTED, 2**40)
    assert {r.message_id for r in page.records} == {f"late-{COMMITTED}", f"late-{NOW_S - 5}"}
    assert page.next_records_from == COMMITTED + 120


@pytest.mark.parametrize(
    ("records_from", "records_to", "message"),
    [
        (-1, 10, "Records from timestamp is a negative number"),
        (10, -1, "Records to timestamp is a negative number"),
        (20, 10, "Records to timestamp is earlier than records from timestamp"),
    ],
)
async def test_a_bad_period_is_the_servers_fault(
    ss: FakeSecurityServer,
    directory: XRoadDirectory,
    records_from: int,
    records_to: int,
    message: str,
) -> None:
    with pytest.raises(XRoadError) as caught:
        await client_for(ss).operational_data(owner_server(directory), records_from, records_to)
    assert (caught.value.code, caught.value.message) == ("Client.InvalidRequest", message)
    assert caught.value.http_status == 500


async def test_filter_by_provider_and_the_raw_answer(
    ss: FakeSecurityServer, opmon: OpMonData, directory: XRoadDirectory
) -> None:
    provider = ClientId.parse(directory.subsystems[2].id)
    window = (COMMITTED - 7200, COMMITTED - 1)
    page = await client_for(ss).operational_data(
        owner_server(directory), *window, filter_client=provider
    )
    assert page.next_records_from is None
    assert page.records and all(
        r.service is not None and r.service.client == provider for r in page.records
    )
    truth = sum(
        v["succeeded"] + v["failed"]
        for sid, v in opmon.totals_by_service(*window).items()
        if ServiceId.parse(sid).client == provider
    )
    assert len(page.records) == truth
    # The raw answer, read with the stdlib: X-Road's framing and every field asked for.
    server = owner_server(directory)
    window = (COMMITTED - 600, COMMITTED - 1)  # fewer records than a page
    body = build_operational_data_request(MONITOR, server, *window, output_fields=["serviceCode"])
    async with httpx.AsyncClient(trust_env=False) as http:
        answer = await http.post(ss.url + "/", content=body, headers={"Content-Type": "text/xml"})
    content_type = answer.headers["content-type"]
    assert content_type.startswith(
        'multipart/related; type="text/xml"; charset=UTF-8; boundary=xroad'
    )
    boundary = content_type.rsplit("boundary=", 1)[1].encode()
    soap, attachment = answer.content.split(b"\r\n--" + boundary + b"\r\n")
    assert soap.startswith(b"--" + boundary + b"\r\ncontent-type:text/xml; charset=UTF-8\r\n\r\n")
    head, data = attachment.split(b"\r\n\r\n", 1)
    assert head.split(b"\r\n") == [
        b"content-type:application/gzip",
        b"content-transfer-encoding: binary",
        b"content-id: <operational-monitoring-data.json.gz>",
    ]
    assert data.endswith(b"\r\n--" + boundary + b"--\r\n")
    records = json.loads(gzip.decompress(data[: -len(boundary) - 8]))["records"]
    assert 0 < len(records) == opmon.count(*window) < 1000
    assert all(set(r) == {"serviceCode"} for r in records)


async def test_an_unknown_output_field_is_refused(
    ss: FakeSecurityServer, directory: XRoadDirectory
) -> None:
    body = build_operational_data_request(MONITOR, owner_server(directory), 0, 10)
    body = body.replace(b"<om:outputField>serviceType<", b"<om:outputField>password<")
    async with httpx.AsyncClient(trust_env=False) as http:
        answer = await http.post(ss.url + "/", content=body, headers={"Content-Type": "text/xml"})
    assert answer.status_code == 500
    assert b"<faultcode>Client.InvalidRequest</faultcode>" in answer.content
    assert b"Unknown output field in search criteria: password" in answer.content


async def test_health_data_equals_the_truth(directory: XRoadDirectory, clock: FrozenClock) -> None:
    opmon = OpMonData(directory, clock=clock, started_at=NOW - timedelta(minutes=30))
    opmon.generate(3000, NOW_S - 1500, NOW_S, seed=5, failure_rate=0.2)
    opmon.generate(200, NOW_S - 7200, NOW_S - 1900, seed=6)  # before the startup: not counted
    async with FakeSecurityServer(directory, opmon=opmon) as ss:
        health = await client_for(ss).health_data(owner_server(directory))
        provider = ClientId.parse(directory.subsystems[0].id)
        filtered = await client_for(ss).health_data(owner_server(directory), filter_client=provider)
    assert health.monitoring_startup == NOW - timedelta(minutes=30)
    assert health.statistics_period_seconds == 600
    assert health.refused == ()
    window = (NOW_S - 599, NOW_S)
    since_startup = opmon.records(NOW_S - 1800, NOW_S)
    producer_services = {
        sid for sid, _ in opmon.totals_by_service(NOW_S - 1800, NOW_S, side="Producer").items()
    }
    assert {str(s.service) for s in health.services} == producer_services
    checked = 0
    for entry in health.services:
        sid = str(entry.service)
        assert entry.successful_count == opmon.count(
            *window, service=sid, side="Producer", succeeded=True
        )
        assert entry.unsuccessful_count == opmon.count(
            *window, service=sid, side="Producer", succeeded=False
        )
        mine = [
            r
            for r in since_startup
            if r["securityServerType"] == "Producer"
            and "/".join(
                str(r[k])
                for k in (
                    "serviceXRoadInstance",
                    "serviceMemberClass",
                    "serviceMemberCode",
                    "serviceSubsystemCode",
                    "serviceCode",
                    "serviceVersion",
                )
                if k in r
            )
            == sid
        ]
        last_good = [r["responseOutTs"] for r in mine if r["succeeded"]]
        if last_good:
            assert entry.last_successful == datetime.fromtimestamp(last_good[-1] / 1000, UTC)
        good = [r for r in mine if r["succeeded"] and r["monitoringDataTs"] >= window[0]]
        if not good:
            assert entry.request_average_duration_ms is None
            continue
        durations = [r["responseOutTs"] - r["requestInTs"] for r in good]
        assert entry.request_min_duration_ms == min(durations)
        assert entry.request_max_duration_ms == max(durations)
        assert entry.request_average_duration_ms == pytest.approx(statistics.mean(durations))
        expected_std = statistics.stdev(durations) if len(durations) > 1 else 0.0
        assert entry.request_duration_std_dev_ms == pytest.approx(expected_std)
        assert entry.response_max_size == max(r["responseSize"] for r in good)
        checked += 1
    assert checked >= 10
    assert filtered.services and all(s.service.client == provider for s in filtered.services)
    assert {str(s.service) for s in filtered.services} == {
        str(s.service) for s in health.services if s.service.client == provider
    }


async def test_the_simulator_cli_serves_a_large_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_simulator(
            None, workdir=tmp_path, catalog_out=None, xroad=(4, 3), opmon=(50_000, 1000), stop=stop
        )
    )
    out = ""
    for _ in range(1000):
        await asyncio.sleep(0.01)
        out += capsys.readouterr().out
        if out:
            break
    try:
        ready = json.loads(out)
        assert ready["xroad"]["opmon"]["records"] == 50_000
        assert ready["xroad"]["opmon"]["max_records_in_payload"] == 1000
        directory = XRoadDirectory.synthetic(4, 3)
        client = SecurityServerClient(
            ready["xroad"]["security_server"],
            client_id=ClientId.parse(ready["xroad"]["client"]),
            timeout=10.0,
        )
        page = await client.operational_data(owner_server(directory), 0, 2**40)
        assert len(page.records) >= 1000
        assert page.next_records_from == page.records[-1].monitoring_data_ts + 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
