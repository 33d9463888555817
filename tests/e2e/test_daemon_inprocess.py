"""The daemon built in-process: a dead database, catalog reloads, spooling across restarts."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import structlog

from scd_monitor.config.settings import load_settings
from scd_monitor.runtime.daemon import Daemon, build
from scd_monitor.store import CheckRepository, ResultRepository, Store
from scd_simulator.fleet import Simulator

DEAD_DB = "postgresql+psycopg://scd:pw@127.0.0.1:1/nowhere"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def simulator(tmp_path: Path) -> AsyncIterator[Simulator]:
    sim = Simulator(tmp_path / "sim")
    sim.add_endpoint("prestador-a/autenticacion/oidc", kind="oidc")
    sim.add_endpoint("prestador-a/carpeta/health", kind="carpeta")
    async with sim:
        yield sim


def daemon_for(catalog: Path, tmp_path: Path, database_url: str) -> Daemon:
    settings = load_settings(
        catalog=catalog,
        database_url=database_url,
        listen=f"127.0.0.1:{free_port()}",
        vantage="inproc",
        shutdown_grace=timedelta(seconds=1),
        spool_dir=tmp_path / "spool",
    )
    return build(settings)


async def wait_until(predicate: Callable[[], bool], within: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.05)


async def test_dead_database_daemon_keeps_probing_and_spools_on_stop(
    simulator: Simulator, tmp_path: Path
) -> None:
    catalog = simulator.write_catalog(tmp_path / "catalog.yaml", interval="1s", timeout="500ms")
    daemon = daemon_for(catalog, tmp_path, DEAD_DB)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    await wait_until(lambda: daemon.writer.stats().pending >= 4)
    port = daemon.settings.listen_address[1]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        ready = await client.get("/readyz")
        metrics = (await client.get("/metrics")).text
        health = await client.get("/healthz")
    assert health.status_code == 200, "the daemon is alive"
    assert ready.status_code == 503
    assert any("store" in reason for reason in ready.json()["reasons"])
    assert "scd_store_healthy 0.0" in metrics
    assert 'scd_probe_success{check="oidc"' in metrics
    assert "pw@" not in metrics
    stop.set()
    assert await asyncio.wait_for(task, 20) == 0
    spooled = list((tmp_path / "spool").glob("results-*.jsonl"))
    assert len(spooled) == 1
    n_spooled = len(spooled[0].read_text().splitlines())
    assert n_spooled >= 4

    # The database is back (a real SQLite file this time): the next start writes them.
    db = tmp_path / "back.db"
    daemon = daemon_for(catalog, tmp_path, f"sqlite:///{db}")
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    await wait_until(lambda: daemon.writer.stats().written_total >= n_spooled)
    stop.set()
    assert await asyncio.wait_for(task, 20) == 0
    assert not list((tmp_path / "spool").glob("results-*.jsonl"))
    store = Store(f"sqlite:///{db}")
    rows = ResultRepository(store).read(vantage="inproc")
    store.dispose()
    assert len(rows) >= n_spooled
    assert {r.check_id for r in rows} == {
        "prestador-a/autenticacion/oidc",
        "prestador-a/carpeta/health",
    }


async def test_catalog_reload_keeps_the_old_catalog_when_the_new_one_is_bad(
    simulator: Simulator, tmp_path: Path
) -> None:
    catalog = simulator.write_catalog(tmp_path / "catalog.yaml", interval="1s", timeout="500ms")
    good = catalog.read_text()
    daemon = daemon_for(catalog, tmp_path, f"sqlite:///{tmp_path}/r.db")
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await wait_until(lambda: len(daemon.pipeline.snapshot().latest) == 2)
        catalog.write_text(good + "\nbogus_top_level_key: 1\n")
        with structlog.testing.capture_logs() as logs:
            assert await daemon.reload_catalog() is False
        assert daemon.scheduler.job_count == 2
        # Said (with the problem, file:line), counted, and shown on /metrics.
        (failed,) = [e for e in logs if e["event"] == "catalog.reload_failed"]
        assert any(f"{catalog}:" in p and "bogus_top_level_key" in p for p in failed["problems"])
        daemon.publish_snapshot()
        text = daemon.metrics.render().decode()
        assert "scd_catalog_reload_failures_total 1.0" in text
        assert "scd_catalog_last_reload_successful 0.0" in text

        # A valid catalog without the carpeta service: its series leave /metrics.
        catalog.write_text(_without_service(good))
        assert await daemon.reload_catalog() is True
        assert daemon.scheduler.job_count == 1
        daemon.publish_snapshot()
        text = daemon.metrics.render().decode()
        assert "scd_catalog_last_reload_successful 1.0" in text
        assert 'service="carpeta"' not in text
        assert 'service="autenticacion"' in text
        await wait_until(
            lambda: any(
                c.id == "prestador-a/carpeta/health" and c.retired_at is not None
                for c in CheckRepository(daemon.store).list()
            )
        )
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0


def _without_service(text: str) -> str:
    import yaml

    data = yaml.safe_load(text)
    for provider in data["providers"]:
        provider["services"] = [s for s in provider["services"] if s["id"] != "carpeta"]
    return str(yaml.safe_dump(data, sort_keys=False))
