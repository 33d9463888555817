"""The daemon's periodic jobs on APScheduler: isolation, logging once, bringing a run forward."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
import structlog

from scd_monitor.clock import SystemClock
from scd_monitor.errors import StoreError
from scd_monitor.runtime.jobs import PeriodicJob, PeriodicJobs

FAST = timedelta(milliseconds=50)


async def _until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(5.0):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_a_failing_job_never_stops_the_others() -> None:
    calls = {"good": 0, "store": 0, "bug": 0}

    async def good() -> None:
        calls["good"] += 1

    async def store_down() -> None:
        calls["store"] += 1
        raise StoreError("database unreachable")

    async def bug() -> None:
        calls["bug"] += 1
        raise ZeroDivisionError("a bug")

    jobs = PeriodicJobs(
        [PeriodicJob("good", FAST, good), PeriodicJob("store", FAST, store_down),
         PeriodicJob("bug", FAST, bug)],
        clock=SystemClock(),
    )  # fmt: skip
    with structlog.testing.capture_logs() as logs:
        jobs.start()
        try:
            await _until(lambda: min(calls.values()) >= 4)
        finally:
            jobs.shutdown()
    assert calls["good"] >= 4
    failed = [e for e in logs if e["event"] == "job.failed"]
    # Each failing job is reported once when it starts failing, not at every run.
    assert sorted(e["job"] for e in failed) == ["bug", "store"]
    assert any(e["event"] == "job.crashed" and e["job"] == "bug" for e in logs)


async def test_recovery_is_logged_once_after_failures() -> None:
    outcomes = iter([False, False, True, True])

    async def flaky() -> None:
        if not next(outcomes, True):
            raise StoreError("down")

    jobs = PeriodicJobs([PeriodicJob("flaky", FAST, flaky)], clock=SystemClock())
    with structlog.testing.capture_logs() as logs:
        assert not await jobs.run_now("flaky")
        assert not await jobs.run_now("flaky")
        assert await jobs.run_now("flaky")
        assert await jobs.run_now("flaky")
    events = [e["event"] for e in logs]
    assert events == ["job.failed", "job.recovered"]
    assert jobs.runs("flaky") == 4


async def test_run_soon_brings_a_slow_job_forward() -> None:
    ran = asyncio.Event()

    async def hourly() -> None:
        ran.set()

    jobs = PeriodicJobs([PeriodicJob("hourly", timedelta(hours=1), hourly)], clock=SystemClock())
    jobs.start()
    try:
        await asyncio.sleep(0.05)
        assert not ran.is_set()
        jobs.run_soon("hourly")
        await asyncio.wait_for(ran.wait(), 5)
    finally:
        jobs.shutdown()


async def test_a_job_never_overlaps_itself() -> None:
    running = 0
    overlaps = 0
    runs = 0

    async def slow() -> None:
        nonlocal running, overlaps, runs
        running += 1
        overlaps += running > 1
        await asyncio.sleep(0.2)
        running -= 1
        runs += 1

    jobs = PeriodicJobs([PeriodicJob("slow", FAST, slow)], clock=SystemClock())
    jobs.start()
    try:
        await _until(lambda: runs >= 3)
    finally:
        jobs.shutdown()
    assert overlaps == 0


def test_job_names_are_unique() -> None:
    async def nothing() -> None:
        return None

    with pytest.raises(ValueError, match="unique"):
        PeriodicJobs([PeriodicJob("a", FAST, nothing)] * 2, clock=SystemClock())
