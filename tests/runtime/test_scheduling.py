"""The scheduler with in-process probes: cadence, no overlap, bounds, crashes, draining."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from datetime import timedelta

import pytest
import structlog.testing

from scd_monitor.catalog import ResolvedCheck, parse_catalog
from scd_monitor.clock import SystemClock
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.runtime.scheduling import ProbeScheduler, SchedulerObserver, run_probe


def make_checks(n: int, *, interval: float, timeout: float = 0.5) -> list[ResolvedCheck]:
    catalog = parse_catalog(
        """
providers:
  - id: p
    name: P
    services:
      - id: s
        type: otro
        checks: [{id: c, kind: tls, host: 127.0.0.1}]
"""
    )
    (base,) = catalog.resolved_checks()
    return [
        dataclasses.replace(
            base,
            check=f"c{i}",
            interval=timedelta(seconds=interval),
            timeout=timedelta(seconds=timeout),
        )
        for i in range(n)
    ]


class FakeProbe:
    def __init__(self, delay: float = 0.0, *, crash: bool = False) -> None:
        self.delay = delay
        self.crash = crash
        self.running = 0
        self.max_running = 0
        self.per_check_running: dict[str, int] = {}
        self.max_per_check = 0
        self.calls: list[str] = []

    async def __call__(self, check: ResolvedCheck) -> Outcome:
        self.calls.append(check.id)
        self.running += 1
        self.per_check_running[check.id] = self.per_check_running.get(check.id, 0) + 1
        self.max_running = max(self.max_running, self.running)
        self.max_per_check = max(self.max_per_check, self.per_check_running[check.id])
        try:
            await asyncio.sleep(self.delay)
            if self.crash:
                raise RuntimeError("probe bug")
            return Outcome(ok=True)
        finally:
            self.running -= 1
            self.per_check_running[check.id] -= 1


def scheduler(
    probe: FakeProbe, results: list[ProbeResult], *, max_concurrency: int = 100, **obs: object
) -> ProbeScheduler:
    return ProbeScheduler(
        probes={"tls": probe},
        on_result=lambda _c, r: results.append(r),
        vantage="test",
        clock=SystemClock(),
        max_concurrency=max_concurrency,
        observer=SchedulerObserver(**obs),  # type: ignore[arg-type]
        rng=random.Random(7),
    )


async def test_each_check_runs_on_its_interval() -> None:
    probe = FakeProbe()
    results: list[ProbeResult] = []
    lags: list[float] = []
    sched = scheduler(probe, results, lag=lags.append)
    sched.start(make_checks(3, interval=0.3))
    await asyncio.sleep(1.75)
    await sched.stop(grace=1)
    counts = {cid: probe.calls.count(cid) for cid in set(probe.calls)}
    assert len(counts) == 3
    # First run jittered within [0, 0.3) s, then every 0.3 s: 5 or 6 runs in 1.75 s.
    assert all(5 <= n <= 6 for n in counts.values()), counts
    assert all(r.ok and r.vantage == "test" for r in results)
    assert len(lags) == len(results)
    assert all(0 <= lag < 0.25 for lag in lags), lags


async def test_a_slow_check_never_overlaps_itself_and_skips_are_counted() -> None:
    probe = FakeProbe(delay=0.45)
    results: list[ProbeResult] = []
    skipped: list[str] = []
    sched = scheduler(probe, results, skipped=skipped.append)
    sched.start(make_checks(1, interval=0.2, timeout=0.19))
    await asyncio.sleep(1.5)
    await sched.stop(grace=1)
    assert probe.max_per_check == 1
    assert skipped, "runs that would overlap must be reported"


async def test_global_concurrency_is_bounded() -> None:
    probe = FakeProbe(delay=0.2)
    results: list[ProbeResult] = []
    sched = scheduler(probe, results, max_concurrency=3)
    sched.start(make_checks(12, interval=0.5, timeout=0.4))
    await asyncio.sleep(1.2)
    await sched.stop(grace=1)
    assert probe.max_running == 3
    assert len(results) >= 6


async def test_stop_lets_in_flight_probes_finish_within_grace() -> None:
    probe = FakeProbe(delay=0.3)
    results: list[ProbeResult] = []
    sched = scheduler(probe, results)
    sched.start(make_checks(4, interval=0.5, timeout=0.45))
    await asyncio.sleep(0.55)  # every check has started at least once
    while sched.in_flight == 0:
        await asyncio.sleep(0.01)
    before = len(results)
    cancelled = await sched.stop(grace=2)
    assert cancelled == 0
    assert len(results) > before
    n = len(results)
    await asyncio.sleep(0.6)
    assert len(results) == n, "nothing runs after stop()"


async def test_stop_cancels_probes_past_the_grace() -> None:
    probe = FakeProbe(delay=5)
    results: list[ProbeResult] = []
    sched = scheduler(probe, results)
    sched.start(make_checks(2, interval=0.1, timeout=0.09))
    while sched.in_flight < 2:
        await asyncio.sleep(0.01)
    cancelled = await sched.stop(grace=0.1)
    assert cancelled == 2


async def test_removed_checks_stop_running() -> None:
    probe = FakeProbe()
    results: list[ProbeResult] = []
    sched = scheduler(probe, results)
    checks = make_checks(2, interval=0.2)
    sched.start(checks)
    await asyncio.sleep(0.5)
    sched.set_checks(checks[:1])
    assert sched.job_count == 1
    await asyncio.sleep(0.1)
    n_removed = probe.calls.count(checks[1].id)
    await asyncio.sleep(0.6)
    await sched.stop(grace=1)
    assert probe.calls.count(checks[1].id) == n_removed
    assert probe.calls.count(checks[0].id) >= 4


async def test_a_crashing_probe_is_an_internal_error_result() -> None:
    (check,) = make_checks(1, interval=1)
    result = await run_probe(FakeProbe(crash=True), check, vantage="v", clock=SystemClock())
    assert not result.ok
    assert result.error_kind is ErrorKind.INTERNAL
    assert result.outcome.message == "RuntimeError: probe bug"


async def test_a_probe_ignoring_its_timeout_is_cut_off() -> None:
    (check,) = make_checks(1, interval=1, timeout=0.05)
    import scd_monitor.runtime.scheduling as sched_mod

    original = sched_mod._SAFETY_MARGIN
    sched_mod._SAFETY_MARGIN = 0.05
    try:
        result = await run_probe(FakeProbe(delay=5), check, vantage="v", clock=SystemClock())
    finally:
        sched_mod._SAFETY_MARGIN = original
    assert result.error_kind is ErrorKind.TIMEOUT
    assert result.duration == pytest.approx(0.1, abs=0.08)


async def test_a_large_update_hands_the_event_loop_back_as_it_goes() -> None:
    """Scheduling thousands of checks (a reload) never holds the loop for long."""
    results: list[ProbeResult] = []
    sched = scheduler(FakeProbe(), results)
    sched.start([])
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = loop.time()
        while not done.is_set():
            await asyncio.sleep(0)
            gaps.append(loop.time() - last)
            last = loop.time()

    ticker = asyncio.create_task(tick())
    checks = make_checks(3000, interval=3600)
    await sched.update_checks(checks)
    assert sched.job_count == 3000
    await sched.update_checks(checks[:10])  # and removing them, too
    assert sched.job_count == 10
    done.set()
    await ticker
    await sched.stop(1.0)
    assert len(gaps) > 20, "the loop ran between chunks"
    assert max(gaps) < 0.5, f"the loop waited {max(gaps):.2f} s"


async def test_skips_are_warned_once_per_period_not_once_each() -> None:
    # An overloaded daemon skips hundreds of runs a second: one warning line per period
    # says how many, the metric counts each (the observer), the details stay at debug.
    probe = FakeProbe(delay=0.45)
    results: list[ProbeResult] = []
    skipped: list[str] = []
    sched = scheduler(probe, results, skipped=skipped.append)
    with structlog.testing.capture_logs() as logs:
        sched.start(make_checks(3, interval=0.1, timeout=0.09))
        await asyncio.sleep(1.2)
        await sched.stop(grace=1)
    warnings = [e for e in logs if e["event"] == "scheduler.runs_skipped"]
    assert len(skipped) >= 6
    assert len(warnings) == 1  # the first skip; the next period (10 s) never came
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["skipped"] == 1
    assert warnings[0]["checks_sample"][0] in {"p/s/c0", "p/s/c1", "p/s/c2"}
    details = [e for e in logs if e["event"] == "scheduler.run_skipped"]
    assert details and all(e["log_level"] == "debug" for e in details)
