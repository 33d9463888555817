"""Ground truth: scripted outages of known start and length → `scd-monitor sla --format json`.

Two daemons (vantages v1 and v2) probe the simulator into one PostgreSQL database.
Scripted (offsets from the simulator's start after a lead of LEAD = 6 s, for both daemons
and their probing processes to be up on a busy machine; interval 1 s, failures_to_open 3):

- plain:          down 3 s → 9 s, no window                 → charged 6 s
- inside window:  down 4 s → 9 s, window 3 s → 11 s         → charged 0
- overruns:       down 4 s → 12 s, window 3 s → 7 s         → charged 5 s (from the window's end)
- one vantage:    v2 sees it down 4 s → 10 s, v1 sees it up, vantage_quorum 2 → charged 0
- monitor fault:  down 16 s → 22 s while the monitor's canary fails 14 s → 24 s → charged 0
  (a failing canary makes the whole vantage's view unknown, so it comes after the others)

Each charged downtime must be within one probe interval of the truth.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from scd_simulator.fleet import Simulator

pytestmark = pytest.mark.e2e

INTERVAL = 1.0
LEAD = 6.0
"""Every scripted offset below is after this lead: the daemons start probing first."""
RUN_FOR = LEAD + 28.0

PLAIN = ("prestador-a", "plano")
INSIDE = ("prestador-a", "mant-dentro")
OVERRUN = ("prestador-b", "mant-excede")
ONE_VANTAGE = ("prestador-b", "una-vantage")
MONITOR_FAULT = ("prestador-c", "falla-monitor")

EXPECTED_CHARGED = {PLAIN: 6.0, INSIDE: 0.0, OVERRUN: 5.0, ONE_VANTAGE: 0.0, MONITOR_FAULT: 0.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def build_catalogs(sim: Simulator, started: datetime, tmp: Path) -> tuple[Path, Path]:
    base = sim.write_catalog(tmp / "generated.yaml", interval="1s", timeout="500ms")
    data: dict[str, Any] = yaml.safe_load(base.read_text())
    data["monitor"] = {
        "canaries": [
            {
                "id": "canary",
                "kind": "http",
                "url": sim.url("scd/canary/http"),
                "expect_status": [200],
            }
        ]
    }
    keep = []
    for provider in data["providers"]:
        if provider["id"] == "scd":
            continue
        provider["services"] = [s for s in provider["services"] if s["id"] != "una-vantage-v2"]
        for service in provider["services"]:
            key = (provider["id"], service["id"])
            if key == INSIDE:
                service["maintenance"] = [
                    {
                        "start": iso(started + timedelta(seconds=LEAD + 3)),
                        "end": iso(started + timedelta(seconds=LEAD + 11)),
                        "reason": "actualización programada",
                    }
                ]
            if key == OVERRUN:
                service["maintenance"] = [
                    {
                        "start": iso(started + timedelta(seconds=LEAD + 3)),
                        "end": iso(started + timedelta(seconds=LEAD + 7)),
                        "reason": "ventana corta",
                    }
                ]
            if key == ONE_VANTAGE:
                service["vantage_quorum"] = 2
        keep.append(provider)
    data["providers"] = keep
    v1 = tmp / "catalog-v1.yaml"
    v1.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    # v2 reaches the one-vantage service through a path that fails (its own network view).
    for provider in data["providers"]:
        for service in provider["services"]:
            if (provider["id"], service["id"]) == ONE_VANTAGE:
                service["checks"][0]["url"] = sim.url("prestador-b/una-vantage-v2/api")
    v2 = tmp / "catalog-v2.yaml"
    v2.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return v1, v2


async def test_charged_downtime_matches_the_scripted_truth(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    sim = Simulator(tmp_path / "sim")

    def outage(start: float, end: float, behaviour: Any = None) -> dict[str, Any]:
        return {
            "from": f"{LEAD + start}s",
            "to": f"{LEAD + end}s",
            "behaviour": behaviour or {"status": 503},
        }

    sim.add_endpoint("prestador-a/plano/api", outage=outage(3, 9))
    sim.add_endpoint("prestador-a/mant-dentro/api", outage=outage(4, 9))
    sim.add_endpoint("prestador-b/mant-excede/api", outage=outage(4, 12))
    sim.add_endpoint("prestador-b/una-vantage/api")
    sim.add_endpoint("prestador-b/una-vantage-v2/api", outage=outage(4, 10))
    sim.add_endpoint("prestador-c/falla-monitor/api", outage=outage(16, 22, "reset"))
    sim.add_endpoint("scd/canary/http", outage=outage(14, 24, "reset"))
    logs: list[Path] = []
    async with sim:
        started = datetime.now(UTC)
        v1, v2 = build_catalogs(sim, started, tmp_path)
        procs = []
        for vantage, catalog in (("v1", v1), ("v2", v2)):
            log = tmp_path / f"daemon-{vantage}.log"
            logs.append(log)
            env = {
                **os.environ,
                "SCD_MONITOR_LOG_FORMAT": "json",
                "SCD_MONITOR_VANTAGE": vantage,
                "SCD_MONITOR_STATE_INTERVAL": "2s",
                "SCD_MONITOR_SPOOL_DIR": str(tmp_path / f"spool-{vantage}"),
            }
            command = [sys.executable, "-m", "scd_monitor", "run", "--catalog", str(catalog)]
            command += ["--listen", f"127.0.0.1:{free_port()}"]
            command += ["--database-url", postgres_schema_url]
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
                )
        try:
            await asyncio.sleep(RUN_FOR - (datetime.now(UTC) - started).total_seconds())
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            codes = [await asyncio.to_thread(p.wait, 30) for p in procs]
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]

    report_proc = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable, "-m", "scd_monitor", "sla", "--format", "json",
            "--catalog", str(v1),
            "--database-url", postgres_schema_url,
            "--from", iso(started - timedelta(minutes=1)),
            "--to", iso(started + timedelta(seconds=RUN_FOR)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert report_proc.returncode == 0, report_proc.stderr
    report = json.loads(report_proc.stdout)
    services = {(s["provider"], s["service"]): s for s in report["services"]}
    assert set(services) == set(EXPECTED_CHARGED)
    for key, truth in EXPECTED_CHARGED.items():
        charged = services[key]["charged_downtime_seconds"]
        assert abs(charged - truth) <= INTERVAL, json.dumps(services[key], indent=1)

    plain = services[PLAIN]
    assert plain["outage_count"] == 1
    assert plain["availability"] < 1.0
    inside = services[INSIDE]
    assert inside["excluded_maintenance_seconds"] == pytest.approx(8.0, abs=0.01)
    assert inside["availability"] == 1.0
    overrun = services[OVERRUN]
    (o,) = overrun["outages"]
    window_end = started + timedelta(seconds=LEAD + 7)
    assert abs(
        datetime.fromisoformat(o["start"]) - (started + timedelta(seconds=LEAD + 4))
    ) <= timedelta(seconds=INTERVAL)
    assert o["charged_seconds"] == pytest.approx(
        (datetime.fromisoformat(o["end"]) - window_end).total_seconds(), abs=0.01
    )
    fault = services[MONITOR_FAULT]
    assert fault["unknown_seconds"] >= 60 + 10.0 - INTERVAL, "the monitor's fault is unknown time"
    assert fault["outage_count"] == 0
