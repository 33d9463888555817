"""Issue 11: the example catalog on a machine with no route to its targets.

For three minutes the daemon (built in-process on ``config/catalog.example.yaml``, the
newcomer's catalog, unchanged) runs with a resolver that fails for two of its hosts and,
for the two others, answers with a loopback port that refuses connections: what an
offline machine (or one whose resolver or uplink died) sees. No packet leaves the
machine: every name resolves to 127.0.0.1 or not at all.

Then ``scd-monitor sla`` must charge 0 s to every provider and show the time as unknown,
and ``/metrics`` must tell the board the vantage cannot be trusted. A control computes
the same month from the same data with the self-check switched off: downtime appears,
so the self-check is what keeps it away.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from scd_monitor.analysis.reporting import SlaReporter
from scd_monitor.catalog import load_catalog
from scd_monitor.clock import SystemClock
from scd_monitor.config.settings import load_settings
from scd_monitor.runtime.daemon import build
from scd_monitor.sla.calendar import month_of
from scd_monitor.store import Store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "catalog.example.yaml"
OFFLINE_SECONDS = float(os.environ.get("SCD_MONITOR_OFFLINE_SECONDS", "180"))

NO_NAME = {"autenticaciondigital.and.gov.co", "qaautenticaciondigital.and.gov.co"}
"""Names the failing resolver cannot resolve (``dns`` failures)."""
REFUSED = {"carpetaciudadana.and.gov.co", "www.gov.co"}
"""Names that resolve to a loopback port nobody listens on (``connect`` failures)."""


def unused_port() -> int:
    """A loopback port nobody listens on: free to bind, refusing connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def offline_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Replace the resolver: loopback names resolve as usual, ``REFUSED`` names resolve
    to a refused loopback port, every other name fails as a dead resolver does. Yields
    the names asked for."""
    real = socket.getaddrinfo
    port = unused_port()
    asked: list[str] = []

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in (None, "localhost", "127.0.0.1", "::1"):
            return real(host, *args, **kwargs)
        asked.append(str(name))
        if name in REFUSED:
            return [
                (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))
            ]
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield asked


@pytest.mark.timeout(OFFLINE_SECONDS + 120)
async def test_the_example_catalog_offline_charges_nothing(
    offline_network: list[str], tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/offline.db"
    settings = load_settings(
        catalog=EXAMPLE,
        database_url=db,
        listen=f"127.0.0.1:{unused_port()}",
        vantage="offline",
        # The network is faked in this process (getaddrinfo above): probe here, not in a
        # probing process, which would resolve the example's real names.
        probe_processes=0,
        shutdown_grace=timedelta(seconds=2),
        spool_dir=tmp_path / "spool",
        export_dir="",
    )
    daemon = build(settings)
    started = datetime.now(UTC)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    port = settings.listen_address[1]
    await asyncio.sleep(OFFLINE_SECONDS)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        metrics = (await client.get("/metrics")).text
    stop.set()
    assert await asyncio.wait_for(task, 30) == 0

    # Both kinds of failure happened, and nothing but loopback was ever resolved to.
    asked = set(offline_network)
    assert asked >= NO_NAME
    assert asked >= REFUSED
    assert 'error_kind="dns"' in metrics and 'error_kind="connect"' in metrics

    # The board: the vantage is not trusted, because of its network path.
    assert 'scd_vantage_trusted{vantage="offline"} 0.0' in metrics
    assert 'scd_vantage_fault{cause="network_path",vantage="offline"} 1.0' in metrics
    assert 'scd_vantage_fault{cause="canaries",vantage="offline"} 0.0' in metrics

    # `scd-monitor sla` for this month: 0 s charged to every provider, the time unknown.
    catalog = load_catalog(EXAMPLE)
    month = month_of(started, catalog.tz).start.astimezone(catalog.tz).strftime("%Y-%m")
    argv = [sys.executable, "-m", "scd_monitor", "sla", "--month", month, "--format", "json",
            "--catalog", str(EXAMPLE), "--database-url", db]  # fmt: skip
    proc = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert {p["provider"] for p in report["providers"]} == {"and", "gov-co"}
    for entry in [*report["services"], *report["providers"]]:
        assert entry["charged_downtime_seconds"] == 0, entry
    observed = [s for s in report["services"] if s["unknown_seconds"] > 0]
    assert {s["service"] for s in observed} >= {
        "autenticacion-digital",
        "autenticacion-digital-qa",
        "carpeta-ciudadana",
        "portal",
    }
    for s in report["services"]:
        assert s["availability"] is None, s  # nothing measured: no availability

    # Control: the same data with the self-check switched off charges the providers.
    blind = catalog.model_copy(
        update={
            "monitor": catalog.monitor.model_copy(
                update={
                    "network_path": catalog.monitor.network_path.model_copy(
                        update={"enabled": False}
                    )
                }
            )
        }
    )
    store = Store.open_existing(db)
    try:
        now = datetime.now(UTC)
        period = month_of(started, catalog.tz)
        control = SlaReporter(store, blind, SystemClock()).report(period, now=now)
    finally:
        store.dispose()
    charged = {s.service: s.figures.charged_downtime for s in control.services}
    assert charged["autenticacion-digital"] > timedelta(seconds=30), charged
