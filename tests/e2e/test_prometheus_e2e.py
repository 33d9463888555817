"""The boards and rules against a real Prometheus scraping a real daemon.

The simulator serves a few providers on 127.0.0.1 (one service down over TLS, an expired
certificate, an outage that starts mid-test; two providers of three with a check down, so
the monitor sees no mass failure and charges them) and a small fake X-Road (3 subsystems ×
2 services, its directory read every 2 s, so the X-Road board and alerts have data); the
daemon probes them every second;
``/usr/bin/prometheus`` scrapes it every second with the shipped scrape settings and
evaluates config/prometheus/rules/ every second. Then every PromQL expression of every
panel of every board (template variables replaced by real values) and every recording
rule must return data through ``/api/v1/query``, every rule must evaluate without error,
the service-down and certificate alerts must be active, and docs/metrics.md must list
exactly the metric families the daemon exposes. Incidents are enabled (evaluated every
second, reports to a file sink in the test's directory), so the carpeta outage opens one
and the incident and outbox series exist.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from scd_simulator.directory import FakeService, XRoadDirectory
from scd_simulator.fleet import Simulator
from scd_simulator.opmon import OpMonData
from tests.tablero.test_grafana_dashboards import (
    load_dashboards,
    query_panels,
    substitute,
    variable_query,
    variables,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "config" / "prometheus"
VANTAGE = "e2e"
DEADLINE = 50.0  # seconds for everything to return data

# The service the detail board is opened on: down over TLS, so that every panel has
# something to show (outage, down-since, certificate, error kinds, phases).
DETAIL = {"prestador": "prestador-a", "servicio": "carpeta"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def small_xroad() -> XRoadDirectory:
    """3 subsystems × 2 services (REST and SOAP) in two member classes."""
    d = XRoadDirectory(member_classes={"GOB": "Entidades públicas", "PRIV": "Privados"})
    for member_class, code, subsystem in (
        ("GOB", "899999001", "CARPETA"),
        ("GOB", "899999002", "AUTENTICACION"),
        ("PRIV", "900000001", "PAGOS"),
    ):
        d.add_subsystem(
            member_class,
            code,
            subsystem,
            name=subsystem.title(),
            services=[FakeService("consultar"), FakeService("radicar", version="v1", kind="WSDL")],
        )
    d.add_security_server("CO/GOB/899999001", "ss1", clients=["CO/GOB/899999001/CARPETA"])
    return d


def prometheus_binary() -> str:
    found = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if found is None:
        if os.environ.get("SCD_MONITOR_REQUIRE_PROMTOOL") == "1":
            pytest.fail("prometheus is required (Debian package 'prometheus')")
        pytest.skip("prometheus not installed")
    return found


def prometheus_config(tmp_path: Path, daemon_port: int) -> Path:
    """The shipped prometheus.yml, with 1 s intervals and the test daemon as its target."""
    config: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(PROMETHEUS_DIR / f) for f in config["rule_files"]]
    (job,) = config["scrape_configs"]
    job["scrape_interval"] = "1s"
    job["scrape_timeout"] = "1s"
    del job["file_sd_configs"]
    job["static_configs"] = [
        {"targets": [f"127.0.0.1:{daemon_port}"], "labels": {"vantage": VANTAGE}}
    ]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def slower_oidc(catalog: Path) -> None:
    """The OIDC check walks several requests over TLS: 2 s / 1.5 s instead of the other
    checks' 1 s / 600 ms, so a busy machine does not time it out before the JWKS."""
    data: dict[str, Any] = yaml.safe_load(catalog.read_text(encoding="utf-8"))
    for provider in data["providers"]:
        for service in provider["services"]:
            for check in service["checks"]:
                if check["kind"] == "oidc":
                    check.update(interval="2s", timeout="1500ms")
    catalog.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def with_incidents(catalog: Path, reports: Path) -> None:
    """Enable incidents in the catalog: evaluated every second, reports to a file sink."""
    data: dict[str, Any] = yaml.safe_load(catalog.read_text(encoding="utf-8"))
    data["incidents"] = {
        "enabled": True,
        "evaluate_every": "1s",
        "outbox": {"interval": "1s"},
        "routes": [{"audience": "operations", "sinks": ["ops"]}],
        "sinks": [{"id": "ops", "kind": "file", "directory": str(reports)}],
    }
    catalog.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")


def live_traffic(directory: XRoadDirectory) -> OpMonData:
    """Operational data of the last half hour and the next ten minutes: X-Road publishes a
    record once its time is past (offset 1 s here, 60 s in a real server), so new records
    arrive at every collection round, and the rates over any window have data."""
    now = int(time.time())
    data = OpMonData(
        directory,
        max_records_in_payload=500,
        offset_seconds=1,
        started_at=datetime.fromtimestamp(now - 3600, UTC),
    )
    data.generate(12_000, now - 1800, now + 600, seed=1)
    return data


def with_operational_monitoring(catalog: Path) -> None:
    """The X-Road source reads the simulated security server's operational monitoring every
    second (records and health data)."""
    data: dict[str, Any] = yaml.safe_load(catalog.read_text(encoding="utf-8"))
    (source,) = data["xroad"]
    source["operational_monitoring"] = {
        "security_servers": ["CO/GOB/899999001/ss1"],
        "interval": "1s",
        "health_interval": "1s",
        "lookback": "1h",
        "publish_delay": "1s",
    }
    catalog.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")


@contextmanager
def started(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[Any]:
    """A subprocess that is stopped (SIGTERM, then SIGKILL) however the test ends."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def board_queries(values: dict[str, dict[str, str]]) -> dict[str, str]:
    """{"board / panel / refId": expr} with the variables of each board replaced."""
    out = {}
    for name, board in load_dashboards().items():
        for panel in query_panels(board):
            for target in panel["targets"]:
                key = f"{board['title']} / {panel['title']} / {target['refId']}"
                out[key] = substitute(target["expr"], values[name])
    return out


def recording_queries() -> dict[str, str]:
    data = yaml.safe_load((PROMETHEUS_DIR / "rules" / "recording.yml").read_text())
    out = {}
    for group in data["groups"]:
        for rule in group["rules"]:
            labels = ",".join(f'{k}="{v}"' for k, v in rule.get("labels", {}).items())
            out[f"rule {rule['record']}{{{labels}}}"] = f"{rule['record']}{{{labels}}}"
    return out


async def instant(client: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/query", params={"query": expr})
    body = response.json()
    assert body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def has_data(result: list[dict[str, Any]]) -> bool:
    """At least one sample that is a number (histogram_quantile may say NaN)."""
    return any(not math.isnan(float(sample["value"][1])) for sample in result)


async def resolve_variables(client: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    """Each board's variables: every query must list values; the chosen one is used."""
    resolved: dict[str, dict[str, str]] = {}
    for name, board in load_dashboards().items():
        values: dict[str, str] = {}
        for variable in variables(board):
            if variable["type"] != "query":
                continue
            query = substitute(variable_query(variable), values)
            match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
            assert match, query
            selector, label = match.groups()
            response = await client.get(
                f"/api/v1/label/{label}/values", params={"match[]": selector}
            )
            options = response.json()["data"]
            if not options:
                values[variable["name"]] = ""
                continue
            if variable.get("includeAll"):
                values[variable["name"]] = variable["allValue"]
            else:
                preferred = DETAIL.get(variable["name"])
                assert preferred in options, (name, variable["name"], options)
                values[variable["name"]] = preferred
        resolved[name] = values
    return resolved


async def test_every_board_query_and_rule_returns_data(tmp_path: Path) -> None:
    prometheus = prometheus_binary()
    directory = small_xroad()
    sim = Simulator(tmp_path / "sim", xroad=directory, xroad_opmon=live_traffic(directory))
    sim.add_endpoint("prestador-a/autenticacion/oidc", kind="oidc", tls="valid")
    sim.add_endpoint(
        "prestador-a/carpeta/health", kind="carpeta", tls="valid", behaviour={"status": 503}
    )
    sim.add_endpoint("prestador-a/portal/expired", tls="expired")
    sim.add_endpoint("prestador-b/portal/home", behaviour={"slow": "50ms"})
    sim.add_endpoint("prestador-c/interop/status", outage={"from": "3s", "to": "1h"})
    # An OIDC provider in the detail service (the board's OIDC panels): its token endpoint
    # failing (a failed step) and a key rotation during the run (a key event).
    idp = sim.add_oidc_provider("prestador-a/carpeta/oidc", tls="valid")
    daemon_port, prometheus_port = free_port(), free_port()
    env = {
        **os.environ,
        "SCD_MONITOR_LOG_FORMAT": "json",
        "SCD_MONITOR_VANTAGE": VANTAGE,
        "SCD_MONITOR_STATE_INTERVAL": "1s",
        "SCD_MONITOR_SLA_INTERVAL": "2s",
        idp.secret_env: idp.client_secret,
    }
    t0 = time.monotonic()
    async with sim:
        idp.set_fault("token_500")
        catalog = sim.write_catalog(
            tmp_path / "catalog.yaml", interval="1s", timeout="600ms", xroad_interval="2s"
        )
        with_incidents(catalog, tmp_path / "reportes")
        slower_oidc(catalog)
        with_operational_monitoring(catalog)
        daemon_args = [
            sys.executable,
            "-m",
            "scd_monitor",
            "run",
            "--catalog",
            str(catalog),
            "--listen",
            f"127.0.0.1:{daemon_port}",
            "--database-url",
            f"sqlite:///{tmp_path / 'e2e.db'}",
        ]
        prometheus_args = [
            prometheus,
            f"--config.file={prometheus_config(tmp_path, daemon_port)}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ]
        daemon_log, prometheus_log = tmp_path / "daemon.log", tmp_path / "prometheus.log"
        with (
            started(daemon_args, daemon_log, env) as daemon,
            started(prometheus_args, prometheus_log) as prom,
        ):
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{prometheus_port}", timeout=5
            ) as client:
                loop = asyncio.get_running_loop()
                rotation = loop.call_later(8.0, idp.rotate)  # after its first keys are seen
                outcome = await wait_for_data(client, daemon, prom, t0)
                rotation.cancel()
                rules = (await client.get("/api/v1/rules")).json()["data"]["groups"]
                alerts = await wait_for_alerts(client)
            async with httpx.AsyncClient(timeout=5) as plain:
                exposed = (await plain.get(f"http://127.0.0.1:{daemon_port}/metrics")).text

    logs = (
        f"daemon log:\n{daemon_log.read_text()[-2000:]}\n"
        f"prometheus log:\n{prometheus_log.read_text()[-2000:]}"
    )
    missing = {key: expr for key, (expr, ok) in outcome.items() if not ok}
    assert not missing, (
        "no data for:\n" + "\n".join(f"  {k}: {e}" for k, e in missing.items()) + "\n" + logs
    )

    # Every rule, recording and alerting, evaluated without error on real data.
    for group in rules:
        for rule in group["rules"]:
            assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))

    # The alerts see what the daemon sees (pending: their `for` is longer than the test).
    assert active_alerts(alerts) >= EXPECTED_ALERTS, alerts

    # docs/metrics.md documents exactly what the daemon exposes.
    families = {
        name
        for name in re.findall(r"^# TYPE (\S+) ", exposed, flags=re.MULTILINE)
        if not name.endswith("_created")
    }
    doc = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`((?:scd|process)_[a-z0-9_]+)`", doc))
    undocumented = families - documented
    assert not undocumented, f"undocumented: {sorted(undocumented)}"
    scd_documented = {n for n in documented if n.startswith("scd_")}
    scd_exposed = {n for n in families if n.startswith("scd_")}
    assert scd_documented <= scd_exposed, f"documented, not exposed: {scd_documented - scd_exposed}"

    elapsed = time.monotonic() - t0
    assert elapsed < 90, f"took {elapsed:.0f} s"


EXPECTED_ALERTS = {
    ("ScdServicioCaido", "critical", "prestador-a", "carpeta", None),
    ("ScdCertificadoPorVencer", "critical", "prestador-a", "portal", "expired"),
}


def active_alerts(alerts: list[dict[str, Any]]) -> set[tuple[str, str, str, str, str | None]]:
    """(alertname, severity, provider, service, check) of the pending or firing alerts."""
    return {
        (
            a["labels"]["alertname"],
            a["labels"]["severity"],
            a["labels"]["provider"],
            a["labels"]["service"],
            a["labels"].get("check"),
        )
        for a in alerts
    }


async def wait_for_alerts(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """The active alerts, once the expected ones are there (or after 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        alerts: list[dict[str, Any]] = (await client.get("/api/v1/alerts")).json()["data"]["alerts"]
        if active_alerts(alerts) >= EXPECTED_ALERTS or time.monotonic() > deadline:
            return alerts
        await asyncio.sleep(0.5)


async def wait_for_data(
    client: httpx.AsyncClient,
    daemon: subprocess.Popen[bytes],
    prom: subprocess.Popen[bytes],
    t0: float,
) -> dict[str, tuple[str, bool]]:
    """Poll until every board query and recording rule returns data (bounded)."""
    queries: dict[str, str] | None = None
    outcome: dict[str, tuple[str, bool]] = {}
    while time.monotonic() - t0 < DEADLINE:
        assert daemon.poll() is None, "the daemon exited early"
        assert prom.poll() is None, "prometheus exited early"
        try:
            if (await client.get("/-/ready")).status_code != 200:
                await asyncio.sleep(0.5)
                continue
            if queries is None:
                values = await resolve_variables(client)
                if not all(all(v.values()) for v in values.values()):
                    await asyncio.sleep(0.5)
                    continue
                queries = {**board_queries(values), **recording_queries()}
        except httpx.TransportError:
            await asyncio.sleep(0.5)
            continue
        for key, expr in queries.items():
            if not outcome.get(key, ("", False))[1]:
                outcome[key] = (expr, has_data(await instant(client, expr)))
        if all(ok for _, ok in outcome.values()):
            return outcome
        await asyncio.sleep(1)
    if queries is None:
        pytest.fail("the board variables never listed values")
    return outcome
