"""The daemon as a subprocess against the simulator: metrics, stored rows, clean stop.

Endpoints: healthy OIDC over TLS, HTTP 503, a hang past the timeout, an expired
certificate, and an outage that starts mid-test. Everything on 127.0.0.1.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from scd_monitor.probes.base import ErrorKind
from scd_monitor.store import ResultRepository, Store
from scd_simulator.fleet import Simulator

pytestmark = pytest.mark.e2e

TOKEN = "Bearer e2e-s3cr3t-token-value"
OUTAGE_AFTER = 8.0  # the daemon and its probing process start first, on a busy machine too
TIMEOUT = 0.6

OIDC = "prestador-a/autenticacion/oidc"
UNAVAILABLE = "prestador-a/carpeta/health"
HANG = "prestador-b/portal/hang"
EXPIRED = "prestador-b/portal/expired"
OUTAGE = "prestador-c/interop/status"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(text: str) -> dict[str, dict[str, float]]:
    """{metric: {check id (+ extra labels): value}}."""
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = s.labels
            if "check" not in labels:
                continue
            key = f"{labels['provider']}/{labels['service']}/{labels['check']}"
            extra = ",".join(
                f"{k}={v}"
                for k, v in sorted(labels.items())
                if k not in ("provider", "service", "check", "kind", "vantage")
            )
            out.setdefault(s.name, {})[f"{key}|{extra}" if extra else key] = s.value
    return out


def add_secret_header(catalog: Path) -> None:
    data: dict[str, Any] = yaml.safe_load(catalog.read_text())
    for provider in data["providers"]:
        for service in provider["services"]:
            for check in service["checks"]:
                if f"{provider['id']}/{service['id']}/{check['id']}" == OIDC:
                    check["secret_headers"] = {"Authorization": {"env": "E2E_TOKEN"}}
    catalog.write_text(yaml.safe_dump(data, sort_keys=False))


async def test_daemon_probes_stores_and_exports(tmp_path: Path) -> None:
    sim = Simulator(tmp_path / "sim")
    sim.add_endpoint(OIDC, kind="oidc", tls="valid")
    sim.add_endpoint(UNAVAILABLE, kind="carpeta", behaviour={"status": 503})
    sim.add_endpoint(HANG, behaviour="hang")
    sim.add_endpoint(EXPIRED, tls="expired")
    sim.add_endpoint(OUTAGE, outage={"from": f"{OUTAGE_AFTER}s", "to": "1h"})
    db = tmp_path / "e2e.db"
    port = free_port()
    log_path = tmp_path / "daemon.log"
    async with sim:
        sim_started = datetime.now(UTC)
        catalog = sim.write_catalog(tmp_path / "catalog.yaml", interval="1s", timeout=f"{TIMEOUT}s")
        add_secret_header(catalog)
        env = {
            **os.environ,
            "SCD_MONITOR_LOG_FORMAT": "json",
            "SCD_MONITOR_LOG_LEVEL": "debug",  # probe.finished per probe
            "SCD_MONITOR_VANTAGE": "e2e",
            "E2E_TOKEN": TOKEN,
        }
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "scd_monitor",
                    "run",
                    "--catalog",
                    str(catalog),
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--database-url",
                    f"sqlite:///{db}",
                ],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            try:
                metrics_text = await wait_for_all_outcomes(port, proc)
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                    health = await client.get("/healthz")
                    ready = await client.get("/readyz")
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    code = await asyncio.to_thread(proc.wait, 20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    raise
        assert sim.hits(OIDC) > 0

    log_text = log_path.read_text()
    assert code == 0, log_text[-3000:]
    assert health.status_code == 200
    assert ready.status_code == 200, ready.text
    assert ready.json()["ready"] is True

    # -- metrics ------------------------------------------------------------------------
    m = scrape(metrics_text)
    success = m["scd_probe_success"]
    assert success[OIDC] == 1.0
    assert success[UNAVAILABLE] == 0.0
    assert success[HANG] == 0.0
    assert success[EXPIRED] == 0.0
    assert success[OUTAGE] == 0.0
    errors = m["scd_probe_error"]
    assert errors[f"{UNAVAILABLE}|error_kind=status"] == 1.0
    assert errors[f"{HANG}|error_kind=timeout"] == 1.0
    assert errors[f"{EXPIRED}|error_kind=tls"] == 1.0
    assert errors[f"{OUTAGE}|error_kind=status"] == 1.0
    assert m["scd_probe_http_status_code"][UNAVAILABLE] == 503.0
    assert m["scd_probe_cert_expiry_timestamp_seconds"][OIDC] > time.time() + 30 * 86400
    assert m["scd_probe_duration_seconds"][HANG] == pytest.approx(TIMEOUT, abs=0.4)
    assert TOKEN not in metrics_text

    # -- logs: one JSON event per probe, secrets never ------------------------------------
    events = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    probe_events = [e for e in events if e.get("event") == "probe.finished"]
    assert probe_events, log_text[-2000:]
    assert {e["event"] for e in events} >= {"daemon.started", "daemon.stopped"}
    assert "e2e-s3cr3t-token-value" not in log_text

    # -- stored rows ------------------------------------------------------------------------
    store = Store(f"sqlite:///{db}")
    rows = ResultRepository(store).read(vantage="e2e")
    store.dispose()
    assert len(rows) == len(probe_events), "every probe logged was stored, none lost on stop"
    by_check: dict[str, list[Any]] = {}
    for r in rows:
        by_check.setdefault(r.check_id, []).append(r)
    assert all(r.ok for r in by_check[OIDC])
    assert by_check[OIDC][-1].outcome.cert_not_after is not None
    assert {(r.error_kind, r.outcome.status_code) for r in by_check[UNAVAILABLE]} == {
        (ErrorKind.STATUS, 503)
    }
    assert {r.error_kind for r in by_check[HANG]} == {ErrorKind.TIMEOUT}
    assert all(r.duration == pytest.approx(TIMEOUT, abs=0.4) for r in by_check[HANG])
    expired = by_check[EXPIRED]
    assert {r.error_kind for r in expired} == {ErrorKind.TLS}
    assert expired[-1].outcome.cert_not_after is not None
    assert expired[-1].outcome.cert_not_after < datetime.now(UTC)
    outage = by_check[OUTAGE]
    assert outage[0].ok, "the outage starts mid-test, after some successes"
    first_failure = next(r for r in outage if not r.ok)
    assert first_failure.error_kind is ErrorKind.STATUS
    assert first_failure.started_at >= sim_started + timedelta(seconds=OUTAGE_AFTER - 0.5)
    assert all(not r.ok for r in outage[outage.index(first_failure) :])
    assert all(r.vantage == "e2e" for r in rows)
    assert not any(TOKEN in (r.outcome.message or "") for r in rows)


async def wait_for_all_outcomes(port: int, proc: subprocess.Popen[bytes]) -> str:
    """Scrape until every check has failed or succeeded as expected (bounded)."""
    deadline = time.monotonic() + 30
    text = ""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"daemon exited early with {proc.returncode}")
            try:
                text = (await client.get("/metrics")).text
            except httpx.TransportError:
                await asyncio.sleep(0.2)
                continue
            success = scrape(text).get("scd_probe_success", {})
            if len(success) == 5 and success.get(OUTAGE) == 0.0 and success.get(OIDC) == 1.0:
                return text
            await asyncio.sleep(0.3)
    pytest.fail(f"not every outcome appeared in time; last scrape:\n{text[-3000:]}")
