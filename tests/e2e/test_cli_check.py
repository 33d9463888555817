"""`scd-monitor check`: one pass, a table, exit 1 when any check fails."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from scd_simulator.fleet import Simulator


async def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "scd_monitor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_check_prints_a_table_and_fails_when_a_check_fails(tmp_path: Path) -> None:
    sim = Simulator(tmp_path / "sim")
    sim.add_endpoint("prestador-a/autenticacion/oidc", kind="oidc", tls="valid")
    sim.add_endpoint("prestador-b/carpeta/health", kind="carpeta", behaviour={"status": 500})
    async with sim:
        catalog = sim.write_catalog(tmp_path / "catalog.yaml", interval="30s", timeout="2s")
        everything = await run_cli("check", "--catalog", str(catalog))
        only_a = await run_cli("check", "--catalog", str(catalog), "prestador-a")
        as_json = await run_cli("check", "--catalog", str(catalog), "--format", "json")
        unknown = await run_cli("check", "--catalog", str(catalog), "prestador-z")
    assert everything.returncode == 1, everything.stderr
    lines = everything.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "RESULT", "ERROR", "STATUS", "TIME", "MESSAGE"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["prestador-a/autenticacion/oidc"][1:3] == ["UP", "200"]
    assert rows["prestador-b/carpeta/health"][1:4] == ["FAIL", "status", "500"]
    assert only_a.returncode == 0, only_a.stdout + only_a.stderr
    assert "prestador-b" not in only_a.stdout
    results = {r["check"]: r for r in json.loads(as_json.stdout)}
    assert results["prestador-b/carpeta/health"]["error_kind"] == "status"
    assert results["prestador-a/autenticacion/oidc"]["ok"] is True
    assert unknown.returncode == 2
    assert "no check matches 'prestador-z'" in unknown.stderr
