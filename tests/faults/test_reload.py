"""Catalog reloads and broken catalog files (issue 12, items 4 and 5).

- A catalog file broken on disk (with or without SIGHUP) stops nothing: the state
  tracker's cursor and the SLA figures keep advancing on the catalog in force, the reload
  is refused with the problems (``file:line``), logged and counted, and a repaired file
  reloads.
- A 50,000-check catalog with one error is parsed off the event loop: ``/healthz``
  answers in under a second all along, probes go on, the error is reported with its line;
  SIGTERM during such a reload stops the daemon at once.
- An alias bomb (9 levels of 9 aliases) is refused in well under a second, without the
  daemon's memory growing.

The in-process tests use :func:`~tests.faults.harness.running_daemon`; the last one runs
``scd-monitor run`` as a subprocess and sends it real SIGHUP and SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from scd_monitor.store import ResultRepository, Store
from scd_simulator.fleet import Simulator
from tests.faults.harness import (
    Running,
    alias_bomb,
    assert_keeps_working,
    free_port,
    huge_catalog,
    probes_logged,
    rss_kib,
    running_daemon,
    tracker_cursor,
    wait_until,
)

OIDC = "prestador-a/autenticacion/oidc"
CARPETA = "prestador-a/carpeta/health"
CHECKS = {OIDC, CARPETA}
# The SLA worker process is on (the default): it is what used to re-read the file.
FAST: dict[str, Any] = {
    "state_interval": timedelta(seconds=1),
    "sla_interval": timedelta(seconds=1),
    "sla_worker": True,
}


@pytest.fixture
async def simulator(tmp_path: Path) -> AsyncIterator[Simulator]:
    sim = Simulator(tmp_path / "sim")
    sim.add_endpoint(OIDC, kind="oidc")
    sim.add_endpoint(CARPETA, kind="carpeta")
    async with sim:
        yield sim


def sla_now(running: Running) -> float | None:
    report = running.daemon.sla_report
    return report.now.timestamp() if report is not None else None


async def advances(running: Running, *, within: float = 15) -> None:
    """The tracker's cursor and the SLA figures both move on (twice), and ``/healthz``
    answers in under a second meanwhile."""
    cursor, sla = tracker_cursor(running), sla_now(running)
    for _ in range(2):
        deadline = asyncio.get_running_loop().time() + within
        while True:
            assert await running.healthz_seconds() < 1.0
            now_cursor, now_sla = tracker_cursor(running), sla_now(running)
            if (
                now_cursor is not None
                and (cursor is None or now_cursor > cursor)
                and now_sla is not None
                and (sla is None or now_sla > sla)
            ):
                cursor, sla = now_cursor, now_sla
                break
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"stuck: cursor {cursor} → {now_cursor}, SLA at {sla} → {now_sla}")
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("sighup", [False, True], ids=["file-broken", "file-broken-and-sighup"])
async def test_a_broken_catalog_on_disk_stops_neither_states_nor_sla(
    simulator: Simulator, tmp_path: Path, sighup: bool
) -> None:
    catalog = simulator.write_catalog(tmp_path / "catalog.yaml", interval="1s", timeout="500ms")
    good = catalog.read_text()
    async with running_daemon(catalog, tmp_path, **FAST) as running:
        daemon = running.daemon
        await assert_keeps_working(running, CHECKS)

        catalog.write_text(good + "\n  bogus: [\n")  # not YAML any more
        with capture_logs() as logs:
            if sighup:
                assert await daemon.reload_catalog() is False
            await advances(running)
        if sighup:
            (failed,) = [e for e in logs if e["event"] == "catalog.reload_failed"]
            assert any(p.startswith(f"{catalog}:") for p in failed["problems"])
            assert daemon.catalogs.reload_failures_total == 1
            assert not daemon.catalogs.last_reload_ok
        assert daemon.scheduler.job_count == 2, "the catalog in force stays"
        assert not [e for e in logs if e["event"] in ("component.failed", "component.crashed")]
        ready = await running.get("/readyz")
        assert ready.status_code == 200, ready.text

        catalog.write_text(good)  # repaired
        if sighup:
            assert await daemon.reload_catalog() is True
            assert daemon.catalogs.last_reload_ok
        await advances(running)
        await assert_keeps_working(running, CHECKS)


async def test_a_huge_catalog_with_one_error_is_refused_without_freezing_the_daemon(
    simulator: Simulator, tmp_path: Path
) -> None:
    catalog = simulator.write_catalog(tmp_path / "catalog.yaml", interval="1s", timeout="500ms")
    async with running_daemon(catalog, tmp_path, **FAST) as running:
        await assert_keeps_working(running, CHECKS)
        text, bad_line = huge_catalog(50_000, error=True)
        catalog.write_text(text)
        loop = asyncio.get_running_loop()
        before = probes_logged(running)
        slowest, samples = 0.0, 0
        with capture_logs() as logs:
            started = loop.time()
            reload = asyncio.create_task(running.daemon.reload_catalog())
            while not reload.done():
                slowest = max(slowest, await running.healthz_seconds())
                samples += 1
                await asyncio.sleep(0.05)
            took = loop.time() - started
        assert reload.result() is False
        print(f"\n50,000-check reload refused in {took:.2f} s; /healthz slowest "
              f"{slowest * 1000:.0f} ms over {samples} requests")  # fmt: skip
        assert slowest < 1.0, f"/healthz took {slowest:.2f} s during the reload"
        assert took < 60
        (failed,) = [e for e in logs if e["event"] == "catalog.reload_failed"]
        assert failed["problems"] == [
            f"{catalog}:{bad_line}: providers[24].services[19].checks[49].timeout: invalid "
            "duration 'soon': use a number and a unit (ms, s, m, h, d, w), e.g. '30s'"
        ]
        assert running.daemon.scheduler.job_count == 2
        if took > 2.5:  # probes of 1 s kept running while the file was parsed
            after = probes_logged(running)
            assert all(after[c] >= before[c] + 2 for c in CHECKS), (before, after)
        await assert_keeps_working(running, CHECKS)


async def test_sigterm_during_a_huge_reload_stops_the_daemon_at_once(
    simulator: Simulator, tmp_path: Path
) -> None:
    catalog = simulator.write_catalog(tmp_path / "catalog.yaml", interval="1s", timeout="500ms")
    loop = asyncio.get_running_loop()
    async with running_daemon(catalog, tmp_path, **FAST) as running:
        await assert_keeps_working(running, CHECKS, rounds=1)
        catalog.write_text(huge_catalog(50_000, error=True)[0])
        running.daemon.reload_soon()  # what SIGHUP does
        await wait_until(lambda: _reload_threads() > 0, within=5)
        await asyncio.sleep(0.3)
        stopping = loop.time()
    stopped_in = loop.time() - stopping
    print(f"\nstopped {stopped_in:.2f} s after SIGTERM, during a 50,000-check reload")
    assert stopped_in < 8, f"the daemon took {stopped_in:.1f} s to stop"
    # The abandoned reload stops at its next YAML value (not at the end of the file).
    await wait_until(lambda: _reload_threads() == 0, within=10)


def _reload_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "catalog-reload" and t.is_alive())


async def test_an_alias_bomb_reload_is_refused_quickly_with_bounded_memory(
    simulator: Simulator, tmp_path: Path
) -> None:
    catalog = simulator.write_catalog(tmp_path / "catalog.yaml", interval="1s", timeout="500ms")
    async with running_daemon(catalog, tmp_path, **FAST) as running:
        await assert_keeps_working(running, CHECKS, rounds=1)
        catalog.write_text(alias_bomb())
        rss_before = rss_kib(os.getpid())
        peak = rss_before
        with capture_logs() as logs:
            started = time.perf_counter()
            reload = asyncio.create_task(running.daemon.reload_catalog())
            while not reload.done():
                peak = max(peak, rss_kib(os.getpid()))
                await asyncio.sleep(0.005)
            took = time.perf_counter() - started
        peak = max(peak, rss_kib(os.getpid()))
        assert reload.result() is False
        print(f"\nalias bomb refused in {took * 1000:.0f} ms; RSS {rss_before // 1024} MiB → "
              f"peak {peak // 1024} MiB")  # fmt: skip
        assert took < 2.0
        assert peak - rss_before < 50 * 1024, "RSS grew by more than 50 MiB"
        (failed,) = [e for e in logs if e["event"] == "catalog.reload_failed"]
        (problem,) = failed["problems"]
        assert re.match(rf"{re.escape(str(catalog))}:\d+: YAML aliases would add", problem)
        assert running.daemon.scheduler.job_count == 2
        await assert_keeps_working(running, CHECKS)


# -- the real process: SIGHUP and SIGTERM ----------------------------------------------------


def _events(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def _count(log: Path, event: str) -> int:
    return sum(1 for e in _events(log) if e.get("event") == event)


async def test_real_sighup_and_sigterm_against_hostile_catalogs(
    simulator: Simulator, tmp_path: Path
) -> None:
    catalog = simulator.write_catalog(tmp_path / "catalog.yaml", interval="1s", timeout="500ms")
    port = free_port()
    database = f"sqlite:///{tmp_path}/process.db"
    log = tmp_path / "daemon.log"
    env = {
        **os.environ,
        "SCD_MONITOR_LOG_FORMAT": "json",
        "SCD_MONITOR_LOG_LEVEL": "debug",  # probe.finished per probe
        "SCD_MONITOR_STATE_INTERVAL": "1s",
        "SCD_MONITOR_SLA_INTERVAL": "1s",
        "SCD_MONITOR_SPOOL_DIR": str(tmp_path / "spool"),
        "SCD_MONITOR_EXPORT_DIR": "",
        "SCD_MONITOR_SHUTDOWN_GRACE": "2s",
    }
    command = [
        sys.executable, "-m", "scd_monitor", "run", "--catalog", str(catalog),
        "--listen", f"127.0.0.1:{port}", "--database-url", database, "--vantage", "proc",
    ]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    loop = asyncio.get_running_loop()

    async def healthz() -> float:
        started = time.perf_counter()
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            response = await client.get("/healthz")
        assert response.status_code == 200
        return time.perf_counter() - started

    async def watch_until(event: str, count: int, within: float) -> tuple[float, float, int]:
        """Poll /healthz (and the RSS) until the log has ``count`` ``event`` lines."""
        deadline = loop.time() + within
        slowest, peak = 0.0, rss_kib(proc.pid)
        while _count(log, event) < count:
            assert proc.poll() is None, log.read_text()[-3000:]
            slowest = max(slowest, await healthz())
            peak = max(peak, rss_kib(proc.pid))
            if loop.time() > deadline:
                pytest.fail(f"no {event} within {within} s:\n{log.read_text()[-3000:]}")
            await asyncio.sleep(0.02)
        return slowest, loop.time(), peak

    try:
        deadline = loop.time() + 30
        while True:
            try:
                await healthz()
                break
            except httpx.TransportError:
                assert proc.poll() is None, log.read_text()
                assert loop.time() < deadline, log.read_text()
                await asyncio.sleep(0.1)
        await wait_until(lambda: _count(log, "probe.finished") >= 4, within=20)

        # An alias bomb: refused at once, the process does not grow.
        catalog.write_text(alias_bomb())
        rss_before = rss_kib(proc.pid)
        sent = loop.time()
        proc.send_signal(signal.SIGHUP)
        slowest, done, peak = await watch_until("catalog.reload_failed", 1, within=10)
        print(f"\nprocess: alias bomb refused in {done - sent:.2f} s, RSS {rss_before // 1024}"
              f" → {peak // 1024} MiB, /healthz slowest {slowest * 1000:.0f} ms")  # fmt: skip
        assert done - sent < 3
        assert peak - rss_before < 50 * 1024
        assert slowest < 1.0

        # A 50,000-check catalog with one error: the loop keeps answering.
        catalog.write_text(huge_catalog(50_000, error=True)[0])
        probes_before = _count(log, "probe.finished")
        sent = loop.time()
        proc.send_signal(signal.SIGHUP)
        slowest, done, peak = await watch_until("catalog.reload_failed", 2, within=90)
        print(f"process: 50,000-check reload refused in {done - sent:.2f} s, /healthz slowest "
              f"{slowest * 1000:.0f} ms, RSS peak {peak // 1024} MiB")  # fmt: skip
        assert slowest < 1.0
        if done - sent > 2.5:
            assert _count(log, "probe.finished") >= probes_before + 4, "probes went on"

        # SIGHUP again, and SIGTERM in the middle of that reload: a prompt, clean exit.
        proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.5)
        sent = loop.time()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 20)
        stopped_in = loop.time() - sent
        print(f"process: exit {code} {stopped_in:.2f} s after SIGTERM during a reload")
        assert code == 0
        assert stopped_in < 8
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    events = _events(log)
    assert any(e.get("event") == "daemon.stopped" for e in events)
    # Every probe the daemon logged is stored.
    logged: dict[str, int] = {}
    for e in events:
        if e.get("event") == "probe.finished":
            logged[e["check"]] = logged.get(e["check"], 0) + 1
    store = Store(database)
    try:
        stored: dict[str, int] = {}
        for r in ResultRepository(store).read(vantage="proc"):
            stored[r.check_id] = stored.get(r.check_id, 0) + 1
    finally:
        store.dispose()
    assert stored == logged
    assert set(logged) == CHECKS
