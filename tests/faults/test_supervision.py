"""Every background loop is supervised (issue 12): the state tracker, the SLA worker,
X-Road discovery, incident evaluation and the outbox.

A fault is injected into one component of a real daemon probing real servers on
127.0.0.1 (a store fault under the tracker, the SLA worker process killed, a failing
directory round, a failing evaluation, a failing outbox round). Then, for each:

- the failure is logged with its cause (``component.failed``), the component is down
  (``scd_component_up{component=…} 0``) and ``/readyz`` answers 503 saying why;
- every other component stays up; probes go on and every probe logged is stored; the
  state tracker and the SLA figures advance (when they are not the one at fault);
  ``/healthz`` answers in under a second;
- once the fault is gone the component is retried, comes back (``scd_component_up`` 1,
  ``component.recovered``), its restarts counted, ``/readyz`` 200 again.

Monkeypatching inside the in-process daemon is used for the injection only.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from scd_monitor.errors import StoreError
from scd_monitor.runtime.daemon import Daemon
from scd_monitor.sla.derive import CheckStateMachine
from scd_simulator.directory import FakeService, XRoadDirectory
from scd_simulator.fleet import Simulator
from tests.faults.harness import (
    Running,
    assert_keeps_working,
    probes_logged,
    running_daemon,
    tracker_cursor,
    wait_until,
)

OIDC = "prestador-a/autenticacion/oidc"
CARPETA = "prestador-a/carpeta/health"
CHECKS = {OIDC, CARPETA}
COMPONENTS = {"tracker", "sla", "discovery", "incidents", "outbox"}
FAST: dict[str, Any] = {
    "state_interval": timedelta(seconds=1),
    "sla_interval": timedelta(seconds=1),
    "sla_worker": True,
}


@pytest.fixture
async def simulator(tmp_path: Path) -> AsyncIterator[Simulator]:
    directory = XRoadDirectory(member_classes={"GOB": "Entidades públicas"})
    directory.add_subsystem(
        "GOB", "899999001", "CARPETA", name="MinTIC", services=[FakeService("documentos")]
    )
    async with Simulator(tmp_path / "sim", xroad=directory) as sim:
        sim.add_endpoint(OIDC, kind="oidc")
        sim.add_endpoint(CARPETA, kind="carpeta")
        yield sim


def write_catalog(sim: Simulator, path: Path) -> Path:
    """The simulator's checks, its X-Road source (read every 10 minutes) and incidents
    evaluated and delivered every second, to a file sink."""
    sim.write_catalog(path, interval="1s", timeout="500ms", xroad_interval="10m")
    catalog = yaml.safe_load(path.read_text(encoding="utf-8"))
    catalog["xroad"][0]["timeout"] = "5s"
    catalog["incidents"] = {
        "evaluate_every": "1s",
        "outbox": {"interval": "1s"},
        "routes": [{"audience": "operations", "sinks": ["operaciones"]}],
        "sinks": [{"id": "operaciones", "kind": "file", "directory": str(path.parent / "out")}],
    }
    path.write_text(yaml.safe_dump(catalog, sort_keys=False, allow_unicode=True), "utf-8")
    return path


# -- what /metrics and /readyz say ---------------------------------------------------------


async def components(running: Running) -> dict[str, tuple[float, float]]:
    """``{component: (scd_component_up, scd_component_restarts_total)}`` from /metrics."""
    text = (await running.get("/metrics")).text
    up: dict[str, float] = {}
    restarts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "scd_component_up":
                up[sample.labels["component"]] = sample.value
            elif sample.name == "scd_component_restarts_total":
                restarts[sample.labels["component"]] = sample.value
    return {name: (value, restarts.get(name, -1.0)) for name, value in up.items()}


async def until(running: Running, name: str, value: float, *, within: float = 20) -> None:
    """Wait until ``scd_component_up{component=name}`` is ``value``, asking ``/healthz``
    meanwhile (it must answer in under a second)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (await components(running)).get(name, (-1.0, -1.0))[0] != value:
        assert await running.healthz_seconds() < 1.0
        if loop.time() > deadline:
            pytest.fail(f"scd_component_up{{component={name!r}}} never became {value}")
        await asyncio.sleep(0.2)


def stored_equals_logged(running: Running) -> bool:
    logged, stored = probes_logged(running), running.stored_counts()
    return all(stored.get(c, 0) == logged.get(c, -1) for c in CHECKS)


# -- the faults ---------------------------------------------------------------------------------


@dataclass
class Fault:
    """Switch a fault on and off in one component of a running daemon."""

    component: str
    inject: Callable[[Daemon, pytest.MonkeyPatch], None]
    error: str
    """What the ``component.failed`` log line says (a part of it)."""


def _store_fault_under_the_tracker(daemon: Daemon, mp: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise StoreError("the results table cannot be read (injected)")

    mp.setattr(daemon.tracker._spans, "results_after", refuse)


def _kill_the_sla_worker(daemon: Daemon, mp: pytest.MonkeyPatch) -> None:
    """A real fault: the worker process dies (the OOM killer, an operator); and while the
    fault lasts every new worker finds the database gone (a URL that leads nowhere)."""
    pool = daemon.sla._pool
    assert pool is not None
    processes = getattr(pool, "_processes", None) or {}
    assert processes, "the SLA worker has run"
    for pid in list(processes):
        os.kill(pid, signal.SIGKILL)
    mp.setattr(daemon.sla, "_database_url", "sqlite:////nonexistent/dir/gone.db")


def _failing_directory_round(daemon: Daemon, mp: pytest.MonkeyPatch) -> None:
    async def refresh(_source: str) -> bool:
        raise RuntimeError("the directory round failed (injected)")

    mp.setattr(daemon.watcher, "refresh", refresh)
    assert daemon.jobs is not None
    daemon.jobs.run_soon("discovery:sim")  # its interval is 10 minutes


def _failing_evaluation(daemon: Daemon, mp: pytest.MonkeyPatch) -> None:
    assert daemon.incidents is not None

    def evaluate(*_args: Any, **_kwargs: Any) -> Any:
        raise StoreError("incidents cannot be stored (injected)")

    mp.setattr(daemon.incidents.service, "evaluate", evaluate)


def _failing_outbox_round(daemon: Daemon, mp: pytest.MonkeyPatch) -> None:
    assert daemon.incidents is not None

    async def run_once() -> Any:
        raise ValueError("a delivery cannot be claimed (injected)")

    mp.setattr(daemon.incidents.dispatcher, "run_once", run_once)


FAULTS = [
    Fault("tracker", _store_fault_under_the_tracker, "StoreError: the results table"),
    Fault("sla", _kill_the_sla_worker, "StoreError: the SLA worker process failed"),
    Fault("discovery", _failing_directory_round, "RuntimeError: the directory round failed"),
    Fault("incidents", _failing_evaluation, "StoreError: incidents cannot be stored"),
    Fault("outbox", _failing_outbox_round, "ValueError: a delivery cannot be claimed"),
]


@contextmanager
def fault_in(daemon: Daemon, fault: Fault) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        fault.inject(daemon, mp)
        yield


@pytest.mark.parametrize("fault", FAULTS, ids=[f.component for f in FAULTS])
async def test_a_failing_component_is_shown_retried_and_recovers_alone(
    simulator: Simulator, tmp_path: Path, fault: Fault
) -> None:
    catalog = write_catalog(simulator, tmp_path / "catalog.yaml")
    name = fault.component
    others = COMPONENTS - {name}
    async with running_daemon(catalog, tmp_path, **FAST) as running:
        daemon = running.daemon
        await assert_keeps_working(running, CHECKS)
        before = await components(running)
        assert set(before) >= COMPONENTS, before
        assert all(before[c] == (1.0, 0.0) for c in COMPONENTS), before
        ready = await running.get("/readyz")
        assert ready.status_code == 200, ready.text

        with capture_logs() as logs, fault_in(daemon, fault):
            await until(running, name, 0.0)
            ready = await running.get("/readyz")
            assert ready.status_code == 503
            reasons = ready.json()["reasons"]
            assert [r for r in reasons if r.startswith(f"{name}")] and all(
                r.startswith(f"{name}") for r in reasons
            ), reasons
            # Every other component keeps working, and so do probes and storage, and the
            # state tracker and the SLA figures unless they are the one at fault.
            now = await components(running)
            assert all(now[c][0] == 1.0 for c in others), now
            if name == "tracker":
                sla = daemon.sla_report.now if daemon.sla_report else None
                await wait_until(lambda: daemon.sla_report is not None
                                 and daemon.sla_report.now != sla)  # fmt: skip
                await wait_until(lambda: stored_equals_logged(running))
            elif name == "sla":
                cursor = tracker_cursor(running)
                await wait_until(lambda: tracker_cursor(running) != cursor)
                await wait_until(lambda: stored_equals_logged(running))
            else:
                await assert_keeps_working(running, CHECKS)
            assert (await components(running))[name][0] == 0.0, "still failing"
        failed = [e for e in logs if e["event"] == "component.failed" and e["component"] == name]
        assert len(failed) == 1, "logged once when it starts failing, not at every retry"
        assert fault.error in failed[0]["error"], failed[0]
        assert failed[0]["retry_in_s"] > 0

        # The fault is gone: retried after its backoff, the component comes back alone.
        with capture_logs() as logs:
            await until(running, name, 1.0, within=45)
        assert any(e["event"] == "component.recovered" and e["component"] == name for e in logs)
        after = await components(running)
        assert after[name][1] >= 1, "its failed rounds are counted"
        assert all(after[c] == (1.0, 0.0) for c in others), after
        ready = await running.get("/readyz")
        assert ready.status_code == 200, ready.text
        await assert_keeps_working(running, CHECKS)


async def test_one_check_the_tracker_cannot_take_never_stops_the_others(
    simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A result that makes one check's state machine raise is skipped and said; the
    tracker stays up and every other check's state goes on."""
    catalog = write_catalog(simulator, tmp_path / "catalog.yaml")
    feed = CheckStateMachine.feed

    def poisoned(self: CheckStateMachine, result: Any) -> Any:
        if result.check_id == CARPETA:
            raise ValueError("this result cannot be judged (injected)")
        return feed(self, result)

    with capture_logs() as logs:
        async with running_daemon(catalog, tmp_path, **FAST) as running:
            await assert_keeps_working(running, CHECKS)
            monkeypatch.setattr(CheckStateMachine, "feed", poisoned)
            cursor = tracker_cursor(running)
            await assert_keeps_working(running, {OIDC})
            assert tracker_cursor(running) != cursor, "the cursor moves past the bad results"
            assert (await components(running))["tracker"][0] == 1.0
            assert running.daemon.tracker.failed_results_total > 0
            monkeypatch.undo()
            await assert_keeps_working(running, CHECKS)
    skipped = [e for e in logs if e["event"] == "state.result_failed"]
    assert skipped and {e["check"] for e in skipped} == {CARPETA}
    assert not [e for e in logs if e["event"] == "component.failed"]
