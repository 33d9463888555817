"""X-Road operational monitoring end to end (issue 13): the daemon, as a subprocess,
collects a simulated security server's records (real HTTP, paged like X-Road, gzipped JSON
attachments) into a real database; it is killed with SIGKILL in the middle of the paging
and started again, and the stored counts equal the simulator's ground truth exactly: per
service, per result, per side, in total. Nothing was lost, nothing counted twice.

Then ``scd-monitor sla`` shows the inside-X-Road success ratio beside the probes, and the
health data reaches ``/metrics``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import inspect

from scd_monitor.store import Store
from scd_monitor.store.usage import UsageRepository
from scd_simulator.directory import FakeService, XRoadDirectory
from scd_simulator.fleet import Simulator
from scd_simulator.opmon import OpMonData
from tests.store.fixtures.databases import private_postgres_database

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SERVER = "CO/GOB/899999001/ss1"
RECORDS = 40_000
PAGE = 500


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def directory() -> XRoadDirectory:
    d = XRoadDirectory(member_classes={"GOB": "Entidades públicas", "PRIV": "Privados"})
    d.add_subsystem(
        "GOB",
        "899999001",
        "CARPETA",
        name="Carpeta",
        services=[FakeService("consultar"), FakeService("radicar", version="v1", kind="WSDL")],
    )
    d.add_subsystem("PRIV", "900000001", "PAGOS", name="Pagos", services=[FakeService("pagar")])
    d.add_security_server("CO/GOB/899999001", "ss1", clients=["CO/GOB/899999001/CARPETA"])
    return d


def with_opmon(catalog: Path, **options: Any) -> None:
    data: dict[str, Any] = yaml.safe_load(catalog.read_text(encoding="utf-8"))
    (source,) = data["xroad"]
    source["operational_monitoring"] = {"security_servers": [SERVER], **options}
    catalog.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")


def stored(url: str) -> tuple[Counter[tuple[str, str, bool]], int | None]:
    """(service, side, succeeded) → records in the database, and the cursor."""
    store = Store(url)
    try:
        if not inspect(store.engine).has_table("scd_xroad_usage"):
            return Counter(), None  # the daemon has not made its schema yet
        repository = UsageRepository(store)
        far = datetime(2000, 1, 1, tzinfo=UTC)
        counts: Counter[tuple[str, str, bool]] = Counter()
        for bucket in repository.buckets(far, datetime.now(UTC) + timedelta(days=1)):
            counts[(bucket.service, bucket.side, bucket.succeeded)] += bucket.count
        return counts, repository.cursor("sim", SERVER)
    finally:
        store.dispose()


def truth(data: OpMonData) -> Counter[tuple[str, str, bool]]:
    counts: Counter[tuple[str, str, bool]] = Counter()
    for record in data.records():
        service = "/".join(
            str(record[k])
            for k in (
                "serviceXRoadInstance",
                "serviceMemberClass",
                "serviceMemberCode",
                "serviceSubsystemCode",
                "serviceCode",
                "serviceVersion",
            )
            if record.get(k) is not None
        )
        counts[(service, record["securityServerType"], bool(record["succeeded"]))] += 1
    return counts


def daemon(catalog: Path, port: int, url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SCD_MONITOR_")},
        "SCD_MONITOR_LOG_FORMAT": "json",
        "SCD_MONITOR_STATE_INTERVAL": "1s",
    }
    args = [sys.executable, "-m", "scd_monitor", "run", "--catalog", str(catalog)]
    args += ["--listen", f"127.0.0.1:{port}", "--database-url", url]
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)


def tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def wait(what: str, condition: Any, proc: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"daemon exited: {tail(log)}"
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}: {tail(log)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The embedded default and the production store (the machine's PostgreSQL)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'opmon.db'}"
        return
    with private_postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield url


async def test_a_daemon_killed_mid_paging_loses_and_duplicates_nothing(
    tmp_path: Path, database: str
) -> None:
    d = directory()
    end = int(time.time()) - 120
    monitoring_started = datetime.fromtimestamp(end - 7 * 3600, UTC)
    data = OpMonData(
        d, max_records_in_payload=PAGE, offset_seconds=60, started_at=monitoring_started
    )
    data.generate(RECORDS, end - 6 * 3600, end, seed=7)
    first_ts = min(int(r["monitoringDataTs"]) for r in data.records())
    sim = Simulator(tmp_path / "sim", xroad=d, xroad_opmon=data)
    url = database
    log = tmp_path / "daemon.log"
    async with sim:
        catalog = sim.write_catalog(
            tmp_path / "catalog.yaml", interval="5s", timeout="2s", xroad_interval="1m"
        )
        # 4 pages per round: 80 rounds to read everything; the kill lands in the middle.
        with_opmon(catalog, interval="1s", health_interval="1s", lookback="7h", max_pages=4)
        proc = daemon(catalog, free_port(), url, log)
        try:
            cursor = await wait(
                "the paging to be under way",
                lambda: (c := stored(url)[1]) is not None and c > first_ts + 3600 and c,
                proc,
                log,
            )
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        counts, at_kill = stored(url)
        assert at_kill is not None and at_kill >= cursor
        before_kill = sum(counts.values())
        assert 0 < before_kill < RECORDS, "killed before the end of the paging"

        port = free_port()
        proc = daemon(catalog, port, url, log)
        try:
            await wait(
                "the rest of the records",
                lambda: (c := stored(url)[1]) is not None and c > end,
                proc,
                log,
            )
            async with httpx.AsyncClient(timeout=5) as client:
                text = ""

                async def health_exposed() -> bool:
                    nonlocal text
                    text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                    return "scd_xroad_health_requests{" in text

                deadline = time.monotonic() + 30
                while not await health_exposed() and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)

    counts, _ = stored(url)
    expected = truth(data)
    assert sum(counts.values()) == RECORDS
    assert counts == expected
    # the health data and the collection state reached /metrics
    families = {f.name: f for f in text_string_to_metric_families(text)}
    health = {
        (s.labels["service"], s.labels["result"]): s.value
        for s in families["scd_xroad_health_requests"].samples
    }
    assert health, "health data per service"
    up = {s.labels["call"]: s.value for s in families["scd_xroad_opmon_up"].samples}
    assert up == {"operational_data": 1.0, "health_data": 1.0}
    # the restarted daemon counted only what it stored itself, after the kill
    (records_total,) = [
        s.value
        for s in families["scd_xroad_opmon_records"].samples
        if s.name == "scd_xroad_opmon_records_total"
    ]
    assert records_total == RECORDS - before_kill
