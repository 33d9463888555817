"""X-Road discovery end to end: the daemon as a subprocess against the simulated X-Road.

The simulator serves a directory (two member classes, REST, OPENAPI and SOAP services)
and a health check answering 503 (maintenance mode). The test steers it through the
``/_sim/xroad`` control API, as another process would, and checks that:

* discovery finds every subsystem and service, REST and SOAP, and probes them;
* the directory metrics agree with the simulator's directory, by instance and class;
* a service removed mid-run is a stored change event, its checks retire
  (``scd_checks.retired_at``) and leave ``/metrics``;
* the health check's 503 is maintenance: excluded from the SLA, nothing charged;
* ``scd-monitor directory --changes --format json`` lists the removal.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from scd_monitor.sla.derive import CheckStateMachine, DerivePolicy, MachineSnapshot
from scd_monitor.sla.model import Span, State
from scd_monitor.store import CheckRepository, ResultRepository, Store
from scd_monitor.store.tables import check_machines, check_spans
from scd_monitor.xroad.identifiers import ClientId, ServiceId
from scd_simulator.directory import FakeService, XRoadDirectory
from scd_simulator.fleet import Simulator

pytestmark = pytest.mark.e2e

CARPETA = "CO/GOB/899999001/CARPETA"
REMOVED = ServiceId.parse(f"{CARPETA}/radicar/v1")  # a SOAP service
PLATFORM = "interoperabilidad/sim"


def fake_directory() -> XRoadDirectory:
    d = XRoadDirectory(member_classes={"GOB": "Entidades públicas", "PRIV": "Privados"})
    d.add_subsystem(
        "GOB",
        "899999001",
        "CARPETA",
        name="Ministerio TIC",
        services=[
            FakeService("documentos", kind="OPENAPI", endpoints=(("GET", "/documentos"),)),
            FakeService("radicar", version="v1", kind="WSDL"),
            FakeService("consultar", version="v1", kind="WSDL"),
        ],
    )
    d.add_subsystem(
        "GOB", "899999002", "AUTENTICACION", name="Registraduría", services=[FakeService("login")]
    )
    d.add_subsystem(
        "PRIV",
        "900000001",
        "PAGOS",
        name="Operador de pagos",
        services=[FakeService("pagar"), FakeService("recibo", version="v2", kind="WSDL")],
    )
    d.add_security_server("CO/GOB/899999001", "ss1", clients=[CARPETA])
    return d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def check_ids(m: dict[str, list[tuple[dict[str, str], float]]], name: str) -> dict[str, float]:
    return {
        f"{labels['provider']}/{labels['service']}/{labels['check']}": value
        for labels, value in m.get(name, [])
    }


def expected_checks(d: XRoadDirectory) -> set[str]:
    """What discovery must make of the fake directory (the simulator's catalog template:
    ``metadatos`` per subsystem, ``listado`` per service)."""
    out = set()
    for sub in d.subsystems:
        client = ClientId.parse(sub.id)
        provider = client.member.slug()
        out.add(f"{provider}/{client.slug()}/metadatos")
        for service in sub.services:
            sid = ServiceId(client, service.code, service.version)
            out.add(f"{provider}/{sid.slug()}/listado")
    return out


def by_class(d: XRoadDirectory) -> dict[str, dict[tuple[str, str], float]]:
    counts: dict[str, dict[tuple[str, str], float]] = {}
    for kind, items in (
        ("members", [(m.instance, m.member_class, 1) for m in d.members]),
        ("subsystems", [(s.instance, s.member_class, 1) for s in d.subsystems]),
        ("services", [(s.instance, s.member_class, len(s.services)) for s in d.subsystems]),
    ):
        bucket = counts.setdefault(kind, {})
        for instance, member_class, n in items:
            bucket[(instance, member_class)] = bucket.get((instance, member_class), 0) + n
    return counts


async def scrape(client: httpx.AsyncClient) -> dict[str, list[tuple[dict[str, str], float]]]:
    return samples((await client.get("/metrics")).text)


async def wait_for(
    what: str, proc: subprocess.Popen[bytes], condition: Any, deadline: float
) -> Any:
    last: Any = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"daemon exited early with {proc.returncode} while waiting for {what}")
        try:
            ok, last = await condition()
        except httpx.TransportError:
            ok = False
        if ok:
            return last
        await asyncio.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}; last: {str(last)[-3000:]}")


def cli(*args: str) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "scd_monitor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


async def test_discovery_end_to_end(tmp_path: Path) -> None:
    fake = fake_directory()
    sim = Simulator(tmp_path / "sim", xroad=fake)
    db = tmp_path / "xroad.db"
    port = free_port()
    log_path = tmp_path / "daemon.log"
    started = datetime.now(UTC)
    t0 = time.monotonic()
    async with sim, httpx.AsyncClient(base_url=sim.control_url, timeout=5) as control:
        catalog = sim.write_catalog(
            tmp_path / "catalog.yaml", interval="1s", timeout="0.8s", xroad_interval="2s"
        )
        health = await control.put("xroad/health", json={"status": 503})
        assert health.status_code == 200, health.text
        assert health.json()["health_status"] == 503
        env = {
            **os.environ,
            "SCD_MONITOR_LOG_FORMAT": "json",
            "SCD_MONITOR_VANTAGE": "e2e",
            "SCD_MONITOR_STATE_INTERVAL": "1s",
        }
        base = ["--catalog", str(catalog), "--database-url", f"sqlite:///{db}"]
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "scd_monitor",
                    "run",
                    *base,
                    "--listen",
                    f"127.0.0.1:{port}",
                ],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                    wanted = expected_checks(fake)

                    async def all_discovered_and_green() -> tuple[bool, Any]:
                        m = await scrape(client)
                        ok = check_ids(m, "scd_probe_success")
                        green = all(ok.get(c) == 1.0 for c in wanted)
                        return green and ok.get(f"{PLATFORM}/health") == 0.0, m

                    m = await wait_for(
                        "every discovered check to succeed",
                        proc,
                        all_discovered_and_green,
                        time.monotonic() + 20,
                    )
                    discovered = {c for c in check_ids(m, "scd_check_info") if "/" in c}
                    assert wanted <= discovered
                    services = {c.rsplit("/", 2)[1] for c in wanted if c.endswith("/listado")}
                    assert len(services) == 6  # 3 REST/OPENAPI + 3 SOAP
                    errors = check_ids(m, "scd_probe_error")
                    assert errors == {f"{PLATFORM}/health": 1.0}
                    assert check_ids(m, "scd_probe_http_status_code")[f"{PLATFORM}/health"] == 503
                    for kind, counts in by_class(fake).items():
                        got = {
                            (labels["instance"], labels["member_class"]): value
                            for labels, value in m[f"scd_xroad_directory_{kind}"]
                            if labels["source"] == "sim"
                        }
                        assert got == counts, kind
                    (expiry,) = m["scd_xroad_globalconf_expiry_timestamp_seconds"]
                    assert expiry[0] == {"source": "sim", "instance": "CO"}
                    assert expiry[1] > time.time()

                    # -- a service leaves the directory mid-run ---------------------------
                    removed = await control.delete(
                        "xroad/services",
                        params={
                            "subsystem": CARPETA,
                            "code": REMOVED.service_code,
                            "version": REMOVED.service_version or "",
                        },
                    )
                    assert removed.status_code == 200, removed.text
                    gone = f"{ClientId.parse(CARPETA).member.slug()}/{REMOVED.slug()}/listado"

                    async def retired() -> tuple[bool, Any]:
                        m = await scrape(client)
                        present = set(check_ids(m, "scd_check_info"))
                        return gone not in present and len(present & wanted) == len(wanted) - 1, m

                    m = await wait_for(
                        "the removed service's check to leave /metrics",
                        proc,
                        retired,
                        time.monotonic() + 15,
                    )
                    assert not any(REMOVED.slug() in c for c in check_ids(m, "scd_probe_success"))
                    services_now = {
                        labels["member_class"]: value
                        for labels, value in m["scd_xroad_directory_services"]
                    }
                    assert services_now == {"GOB": 3.0, "PRIV": 2.0}
                    changes = {
                        (labels["kind"], labels["change"]): value
                        for labels, value in m["scd_xroad_directory_changes_total"]
                    }
                    assert changes[("service", "disappeared")] == 1.0
                    assert changes[("directory", "baseline")] == 1.0
                    await asyncio.sleep(1.5)  # more maintenance time for the SLA below
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    code = await asyncio.to_thread(proc.wait, 20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    raise
    log_text = log_path.read_text()
    assert code == 0, log_text[-3000:]

    # -- stored facts --------------------------------------------------------------------
    store = Store(f"sqlite:///{db}")
    try:
        rows = {r.id: r for r in CheckRepository(store).list()}
        assert rows[gone].retired_at is not None
        assert all(rows[c].retired_at is None for c in wanted - {gone})
        assert rows[f"{PLATFORM}/health"].kind == "xroad_health"
        health_results = ResultRepository(store).read(check_id=f"{PLATFORM}/health")
        assert health_results
        outcomes = Counter(
            "maintenance" if r.outcome.details.get("maintenance") is True else str(r.error_kind)
            for r in health_results
        )
        # A loaded machine may time one probe out (0.8 s); every answer was maintenance.
        assert set(outcomes) <= {"maintenance", "timeout"}, outcomes
        assert outcomes["maintenance"] >= len(health_results) - 1, outcomes
        health_id = f"{PLATFORM}/health"
        with store.engine.connect() as conn:
            final = [
                Span(r.start, r.end, State(r.state), r.reason)
                for r in conn.execute(
                    select(check_spans).where(check_spans.c.check_id == health_id)
                )
            ]
            snapshot = conn.execute(
                select(check_machines.c.snapshot).where(check_machines.c.check_id == health_id)
            ).scalar_one()
        policy = DerivePolicy(
            latency_threshold=timedelta(seconds=2), staleness=timedelta(seconds=3)
        )
        tail = CheckStateMachine(policy, MachineSnapshot.from_json(snapshot)).provisional()
        spans = final + tail
        assert spans
        assert {s.state for s in spans} == {State.MAINTENANCE}
        assert sum((s.end - s.start for s in spans), timedelta(0)) > timedelta(seconds=2)
    finally:
        store.dispose()

    # -- the directory command -----------------------------------------------------------
    events = cli("directory", "--changes", "--format", "json", *base)
    assert events[0]["change"] == "baseline"
    removal = [e for e in events if e["kind"] == "service" and e["change"] == "disappeared"]
    assert [e["subject"] for e in removal] == [str(REMOVED)]
    assert removal[0]["details"]["before"]["protocol"] == "SOAP"
    assert cli("directory", "--changes", "--since", "1h", "--format", "json", *base) == events
    (current,) = cli("directory", "--format", "json", *base)
    assert current["counts"]["services"] == 5
    listed = {
        s["id"]
        for member in current["members"]
        for sub in member["subsystems"]
        for s in sub["services"]
    }
    assert str(REMOVED) not in listed
    assert f"{CARPETA}/consultar/v1" in listed

    # -- the SLA: the health check's 503 is maintenance, not downtime --------------------
    report = cli(
        "sla",
        "--from",
        started.isoformat(),
        "--provider",
        "interoperabilidad",
        "--format",
        "json",
        *base,
    )
    (platform,) = [s for s in report["services"] if s["service"] == "sim"]
    assert platform["excluded_maintenance_seconds"] > 2
    assert platform["charged_downtime_seconds"] == 0
    assert platform["outage_count"] == 0
    assert time.monotonic() - t0 < 40
