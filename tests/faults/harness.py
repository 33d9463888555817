"""What every fault-injection test needs: a real daemon built in-process, its endpoints,
and the three things that must hold whatever one hostile input does (issue 12):

- every *other* check's results are stored (counts equal to the probes logged);
- state and SLA keep advancing (the tracker's cursor, the SLA worker's figures);
- the daemon stays responsive (``/healthz`` answers in under a second).

Targets are real servers on 127.0.0.1 (:class:`scd_simulator.rawhttp.HttpServer` for
hostile answers, :class:`scd_simulator.fleet.Simulator` for healthy ones).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from scd_monitor.config.settings import load_settings
from scd_monitor.probes.base import Probe
from scd_monitor.runtime.daemon import Daemon, build
from scd_monitor.store import ResultRepository, Store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_until(predicate: Callable[[], bool], within: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.05)


@dataclass
class Running:
    daemon: Daemon
    port: int
    database_url: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def healthz_seconds(self) -> float:
        """How long ``/healthz`` takes to answer (fails the test if it is not 200)."""
        started = time.perf_counter()
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as client:
            response = await client.get("/healthz")
        assert response.status_code == 200, response.text
        return time.perf_counter() - started

    async def get(self, path: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as client:
            return await client.get(path)

    def stored_counts(self) -> dict[str, int]:
        """Stored results per check id (this daemon's vantage)."""
        store = Store(self.database_url)
        try:
            rows = ResultRepository(store).read(vantage=self.daemon.settings.vantage)
        finally:
            store.dispose()
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.check_id] = counts.get(r.check_id, 0) + 1
        return counts


@asynccontextmanager
async def running_daemon(
    catalog: Path,
    tmp_path: Path,
    database_url: str | None = None,
    *,
    probes: Mapping[str, Probe] | None = None,
    **settings: Any,
) -> AsyncIterator[Running]:
    """A daemon on ``catalog`` (SQLite in ``tmp_path`` unless ``database_url``), run until
    the block ends; then stopped gracefully (its exit code must be 0). ``probes``: the
    probe kinds to use instead of the real ones (e.g. one that wraps a real probe)."""
    url = database_url or f"sqlite:///{tmp_path}/faults.db"
    port = free_port()
    options: dict[str, Any] = {
        "catalog": catalog,
        "database_url": url,
        "listen": f"127.0.0.1:{port}",
        "vantage": "faults",
        "shutdown_grace": timedelta(seconds=2),
        "spool_dir": tmp_path / "spool",
        "export_dir": "",
    }
    options.update(settings)
    daemon = build(load_settings(**options), probes=probes)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        yield Running(daemon, port, url)
    finally:
        stop.set()
        code = await asyncio.wait_for(task, 30)
    assert code == 0


# -- the invariants, checked together (added for the hostile-input tests) ---------------


def probes_logged(running: Running) -> dict[str, int]:
    """Probes run per check id, as the pipeline logged them (one ``probe.finished`` each)."""
    counters = running.daemon.pipeline.snapshot().counters
    return {check: c.runs for check, c in counters.items()}


async def assert_keeps_working(
    running: Running,
    others: set[str],
    *,
    rounds: int = 2,
    within: float = 15,
    stored_before: dict[str, int] | None = None,
) -> float:
    """The three invariants of issue 12 for the checks ``others`` (every check but the
    hostile one): each ran at least ``rounds`` times and every probe logged is stored
    (beyond ``stored_before``, what an earlier run of the same database stored); the
    state tracker and the SLA figures move on; ``/healthz`` answers in under a second
    (each time it is asked while waiting). Returns the slowest ``/healthz``."""
    daemon = running.daemon
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    slowest = 0.0

    async def poll(what: str, predicate: Callable[[], bool]) -> None:
        nonlocal slowest
        while not predicate():
            slowest = max(slowest, await running.healthz_seconds())
            assert slowest < 1.0, f"/healthz took {slowest:.2f} s"
            if loop.time() > deadline:
                pytest.fail(f"{what}: not in time")
            await asyncio.sleep(0.2)

    while True:  # the daemon is starting: wait for its endpoints to listen
        try:
            await running.healthz_seconds()
            break
        except httpx.TransportError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)
    await poll(
        "every other check ran",
        lambda: all(probes_logged(running).get(c, 0) >= rounds for c in others),
    )
    states = daemon.tracker.current()
    seen = {c: states[c].last_observation_at if c in states else None for c in others}
    sla_before = daemon.sla_report.now if daemon.sla_report is not None else None

    def stored_equals_logged() -> bool:
        logged = probes_logged(running)
        stored = running.stored_counts()
        earlier = stored_before or {}
        return all(stored.get(c, 0) - earlier.get(c, 0) == logged.get(c, -1) for c in others)

    def state_advanced() -> bool:
        now = daemon.tracker.current()
        return all(
            c in now
            and now[c].last_observation_at is not None
            and (seen[c] is None or now[c].last_observation_at > seen[c])
            for c in others
        )

    def sla_advanced() -> bool:
        report = daemon.sla_report
        return report is not None and (sla_before is None or report.now > sla_before)

    await poll("every probe logged is stored", stored_equals_logged)
    await poll("the state tracker advances", state_advanced)
    await poll("the SLA figures advance", sla_advanced)
    slowest = max(slowest, await running.healthz_seconds())
    assert slowest < 1.0, f"/healthz took {slowest:.2f} s"
    return slowest


# -- the state tracker's cursor and memory (added for the reload and supervision tests) ---


def tracker_cursor(running: Running) -> int | None:
    """The id of the last stored result the state tracker turned into spans."""
    from scd_monitor.store.spans import SpanRepository

    store = Store(running.database_url)
    try:
        with store.transaction("reading the tracker cursor") as conn:
            return SpanRepository(store).cursor(conn, running.daemon.settings.vantage)
    finally:
        store.dispose()


def rss_kib(pid: int) -> int:
    """Resident memory of process ``pid`` in KiB (``VmRSS`` of /proc/<pid>/status)."""
    with Path(f"/proc/{pid}/status").open(encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


# -- hostile catalogs (added for the reload tests) -------------------------------------


def huge_catalog(checks: int, *, error: bool) -> tuple[str, int | None]:
    """A catalog of ``checks`` HTTP checks (50 per service, 20 services per provider) and,
    with ``error``, one bad duration in the middle; returns the text and that line."""
    lines = ["defaults:", "  interval: 1m", "  timeout: 5s", "providers:"]
    for s in range(checks // 50):
        if s % 20 == 0:
            lines += [f"- id: p{s // 20}", f"  name: P {s // 20}", "  services:"]
        lines += [f"  - id: s{s}", "    type: otro", "    checks:"]
        for c in range(50):
            lines += [
                f"    - id: c{c}",
                "      kind: http",
                f"      url: http://127.0.0.1:9/{s}/{c}",
            ]
    bad = None
    if error:
        bad = len(lines) // 2
        while not lines[bad - 1].startswith("      url:"):
            bad += 1
        lines.insert(bad, "      timeout: soon")
        bad += 1  # 1-based
    return "\n".join(lines) + "\n", bad


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    out = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, levels):
        out.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    out.append(f"providers: *a{levels - 1}")
    return "\n".join(out) + "\n"
