"""The provider simulator with a fake X-Road: life cycle, catalog, the /_sim/xroad controls."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from scd_monitor.catalog import load_catalog
from scd_simulator.cli import main, run_simulator
from scd_simulator.directory import XRoadDirectory
from scd_simulator.fleet import Simulator

SUB = "CO/GOB/800000000/SIS01"


async def test_the_fake_xroad_starts_and_stops_with_the_simulator(tmp_path: Path) -> None:
    directory = XRoadDirectory.synthetic(3, 2)
    sim = Simulator(tmp_path, xroad=directory)
    assert sim.xroad_client == "CO/GOB/8999999999/MONITOR"
    assert directory.find_client(tuple(sim.xroad_client.split("/"))) is not None
    with pytest.raises(RuntimeError, match="no X-Road"):
        _ = sim.xroad_simulator
    async with sim:
        ss = sim.xroad_simulator.security_server
        async with httpx.AsyncClient(trust_env=False) as http:
            assert (await http.get(ss.health_url)).status_code == 200
            listed = await http.get(f"{ss.url}/listClients", headers={"Accept": "application/json"})
        assert len(listed.json()["member"]) == 8  # 4 members, 4 subsystems (with the monitor)
        assert sim.xroad_anchor.is_file()
        catalog = load_catalog(
            sim.write_catalog(tmp_path / "catalog.yaml", interval="5s", timeout="1s")
        )
        (source,) = catalog.xroad
        assert source.security_server is not None
        assert source.security_server.client == sim.xroad_client
        assert source.globalconf is not None
        assert source.globalconf.anchor == sim.xroad_anchor.resolve()
        assert [c.id for c in catalog.resolved_checks()] == []  # all of it is discovered
        sim.add_endpoint("interoperabilidad/x/y")
        with pytest.raises(ValueError, match="endpoint's provider"):
            sim.write_catalog(tmp_path / "other.yaml")
    with pytest.raises(RuntimeError):
        _ = sim.xroad_simulator


async def test_xroad_control_api(tmp_path: Path) -> None:
    directory = XRoadDirectory.synthetic(2, 3)
    sim = Simulator(tmp_path, xroad=directory)
    async with sim, httpx.AsyncClient(base_url=sim.control_url, trust_env=False) as http:
        ss = sim.xroad_simulator.security_server
        cs = sim.xroad_simulator.configuration_source
        info = (await http.get("xroad")).json()
        assert info["subsystems"] == 3
        assert info["services"] == 6
        assert info["health_status"] == 200

        assert (await http.put("xroad/health", json={"status": 503})).json()["health_status"] == 503
        async with httpx.AsyncClient(trust_env=False) as plain:
            assert (await plain.get(ss.health_url)).status_code == 503
            r = await http.put(
                "xroad/fault", json={"code": "Server.ServerProxy.X", "only": ["listMethods"]}
            )
            assert r.status_code == 200
            listing = await plain.get(
                f"{ss.url}/r1/{SUB}/listMethods", headers={"X-Road-Client": sim.xroad_client or ""}
            )
            assert listing.headers["X-Road-Error"] == "Server.ServerProxy.X"
            await http.put("xroad/fault", content=b"null")
            assert (await http.put("xroad/delay", json={"seconds": 0.2})).status_code == 200
            t0 = asyncio.get_running_loop().time()
            await plain.get(f"{ss.url}/listClients")
            assert asyncio.get_running_loop().time() - t0 >= 0.2
            await http.put("xroad/delay", json={"seconds": 0})
            await http.put("xroad/conf-status", json={"status": 500})
            assert (await plain.get(cs.internal_url)).status_code == 500
            await http.put("xroad/conf-status", content=b"null")
            assert (await plain.get(cs.internal_url)).status_code == 200

        at = datetime.now(UTC) - timedelta(minutes=1)
        assert (await http.put("xroad/expiry", json={"at": at.isoformat()})).status_code == 200
        assert directory.expiry() == at

        added = await http.post(
            "xroad/services",
            json={"subsystem": SUB, "code": "nuevo", "version": "v1", "kind": "WSDL"},
        )
        assert added.status_code == 201, added.text
        assert directory.subsystem(SUB).find("nuevo", "v1") is not None
        removed = await http.delete(
            "xroad/services", params={"subsystem": SUB, "code": "nuevo", "version": "v1"}
        )
        assert removed.status_code == 200
        assert directory.subsystem(SUB).find("nuevo") is None
        gone = await http.delete("xroad/services", params={"subsystem": SUB, "code": "nuevo"})
        assert gone.status_code == 404
        assert (await http.delete("xroad/subsystems", params={"id": SUB})).status_code == 200
        assert (await http.get("xroad")).json()["subsystems"] == 2

        assert (await http.put("xroad/health", content=b"{")).status_code == 400
        assert (await http.get("xroad/health")).status_code == 405
        assert (await http.get("xroad/services")).status_code == 405
        assert (await http.get("xroad/nothing")).status_code == 404


async def test_control_without_xroad_says_so(tmp_path: Path) -> None:
    sim = Simulator(tmp_path)
    sim.add_endpoint("p/s/c")
    async with sim, httpx.AsyncClient(base_url=sim.control_url, trust_env=False) as http:
        assert (await http.get("xroad")).status_code == 404


async def test_run_simulator_with_a_synthetic_xroad(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_simulator(
            None, workdir=tmp_path, catalog_out=tmp_path / "c.yaml", xroad=(4, 3), stop=stop
        )
    )
    out = ""
    for _ in range(300):
        await asyncio.sleep(0.01)
        out += capsys.readouterr().out
        if out:
            break
    ready = json.loads(out)
    assert ready["xroad"]["subsystems"] == 5  # with the monitor's own
    assert ready["xroad"]["services"] == 12
    catalog = load_catalog(ready["catalog"])
    (source,) = catalog.xroad
    assert source.template.service_checks[0].id == "listado"
    stop.set()
    await asyncio.wait_for(task, 5)


def test_simulate_rejects_a_bad_xroad_size(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["--xroad", "20by5"]) == 2
    assert "N×M" in capsys.readouterr().err


def test_simulate_xroad_from_the_command_line(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "scd_simulator", "--xroad", "3×2"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["xroad"]["instance"] == "CO"
        assert ready["xroad"]["subsystems"] == 4
    finally:
        proc.terminate()
        proc.wait(10)
