"""The supervisor of the daemon's background work (runtime.jobs, on APScheduler):
isolation, logging once with the cause, backoff, component status, units, stopping."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import timedelta

import pytest
import structlog

from scd_monitor.clock import SystemClock
from scd_monitor.errors import StoreError
from scd_monitor.runtime.jobs import BACKOFF_CAP, PeriodicJob, PeriodicJobs, backoff, describe

FAST = timedelta(milliseconds=50)


async def _until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
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
            await _until(lambda: min(calls.values()) >= 3)
        finally:
            jobs.shutdown()
    assert calls["good"] >= 3
    failed = [e for e in logs if e["event"] == "component.failed"]
    # Each failing job is reported once when it starts failing, not at every run, with
    # its error and when it is retried.
    assert sorted(e["component"] for e in failed) == ["bug", "store"]
    assert {e["error"] for e in failed} == {
        "StoreError: database unreachable",
        "ZeroDivisionError: a bug",
    }
    assert all(e["retry_in_s"] >= 0 for e in failed)
    # A bug (not one of our errors) also leaves its traceback.
    assert any(e["event"] == "component.crashed" and e["component"] == "bug" for e in logs)
    statuses = jobs.statuses()
    assert statuses["good"].up and statuses["good"].restarts_total == 0
    assert not statuses["store"].up and statuses["store"].restarts_total >= 3
    assert statuses["store"].problem is not None
    assert "store: failing since" in statuses["store"].problem
    assert "StoreError: database unreachable" in statuses["store"].problem


async def test_recovery_is_logged_once_after_failures() -> None:
    outcomes = iter([False, False, True, True])

    async def flaky() -> None:
        if not next(outcomes, True):
            raise StoreError("down")

    jobs = PeriodicJobs([PeriodicJob("flaky", FAST, flaky)], clock=SystemClock())
    with structlog.testing.capture_logs() as logs:
        assert not await jobs.run_now("flaky")
        assert not jobs.statuses()["flaky"].up
        assert not await jobs.run_now("flaky")
        assert await jobs.run_now("flaky")
        assert jobs.statuses()["flaky"].up
        assert await jobs.run_now("flaky")
    events = [e["event"] for e in logs]
    assert events == ["component.failed", "component.recovered"]
    assert logs[1]["failures"] == 2
    assert jobs.runs("flaky") == 4
    status = jobs.statuses()["flaky"]
    assert status.restarts_total == 2 and status.last_success_timestamp is not None


def test_backoff_doubles_from_the_interval_up_to_the_cap() -> None:
    second = timedelta(seconds=1)
    assert [backoff(second, n).total_seconds() for n in range(1, 9)] == [
        1, 2, 4, 8, 16, 32, 60, 60,
    ]  # fmt: skip
    # A slow job (a directory read every 10 minutes) is retried in seconds first, and
    # never waits longer than its own interval.
    ten_minutes = timedelta(minutes=10)
    assert [backoff(ten_minutes, n).total_seconds() for n in (1, 2, 3, 8, 9, 50)] == [
        5, 10, 20, 600, 600, 600,
    ]  # fmt: skip
    assert backoff(timedelta(days=3650), 10_000) == timedelta(days=3650)
    assert backoff(second, 0, cap=BACKOFF_CAP) == second


async def test_a_failing_job_waits_longer_and_longer() -> None:
    times: list[float] = []

    async def down() -> None:
        times.append(asyncio.get_running_loop().time())
        raise StoreError("down")

    jobs = PeriodicJobs(
        [PeriodicJob("down", timedelta(milliseconds=100), down, first_after=timedelta(0))],
        clock=SystemClock(),
    )
    jobs.start()
    try:
        await _until(lambda: len(times) >= 4)
    finally:
        jobs.shutdown()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 0.1 s, then about 0.2 s, 0.4 s (±10 % jitter): each wait longer than the last.
    assert gaps[1] > gaps[0] * 1.5 and gaps[2] > gaps[1] * 1.5, gaps


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


async def test_a_full_batch_asks_for_another_round_at_once() -> None:
    rounds = 0

    async def batch() -> bool:
        nonlocal rounds
        rounds += 1
        return rounds < 3  # two full batches, then a short one

    jobs = PeriodicJobs(
        [PeriodicJob("outbox", timedelta(hours=1), batch, first_after=timedelta(0))],
        clock=SystemClock(),
    )
    jobs.start()
    try:
        await _until(lambda: rounds >= 3)
        await asyncio.sleep(0.1)
    finally:
        jobs.shutdown()
    assert rounds == 3


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


async def test_a_stalled_round_marks_its_component_down() -> None:
    release = asyncio.Event()

    async def stuck() -> None:
        await release.wait()

    job = PeriodicJob(
        "sla", FAST, stuck, first_after=timedelta(0), stalled_after=timedelta(milliseconds=100)
    )
    jobs = PeriodicJobs([job], clock=SystemClock())
    jobs.start()
    try:
        await _until(lambda: not jobs.statuses()["sla"].up)
        problem = jobs.statuses()["sla"].problem
        assert problem is not None and "stalled" in problem
        release.set()
        await _until(lambda: jobs.statuses()["sla"].up)
    finally:
        jobs.shutdown()


async def test_units_of_a_component_are_independent() -> None:
    calls = {"a": 0, "b": 0}

    async def read(unit: str) -> None:
        calls[unit] += 1
        if unit == "b":
            raise RuntimeError("hostile source")

    def unit(name: str) -> PeriodicJob:
        return PeriodicJob(
            "discovery", FAST, lambda: read(name), first_after=timedelta(0), unit=name
        )

    jobs = PeriodicJobs([unit("a"), unit("b")], clock=SystemClock())
    jobs.start()
    try:
        await _until(lambda: calls["a"] >= 5 and calls["b"] >= 2)
        status = jobs.statuses()["discovery"]
        assert not status.up
        assert status.problem is not None and status.problem.startswith("discovery (b): ")
        assert "discovery (a)" not in status.problem
        # The bad unit leaves (a reload dropped the source): the component is up again.
        jobs.set_units("discovery", [unit("a")])
        assert jobs.idents("discovery") == ["discovery:a"]
        await _until(lambda: jobs.statuses()["discovery"].up)
        jobs.set_units("discovery", [])
        assert jobs.idents("discovery") == []
    finally:
        jobs.shutdown()


async def test_stop_lets_a_round_finish_within_the_grace() -> None:
    finished = asyncio.Event()
    started = asyncio.Event()

    async def deliver() -> None:
        started.set()
        await asyncio.sleep(0.2)
        finished.set()

    jobs = PeriodicJobs(
        [PeriodicJob("outbox", FAST, deliver, first_after=timedelta(0))], clock=SystemClock()
    )
    jobs.start()
    await asyncio.wait_for(started.wait(), 5)
    assert await jobs.stop(5.0) == 0
    assert finished.is_set()


async def test_stop_cancels_a_round_past_the_grace() -> None:
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.sleep(60)

    jobs = PeriodicJobs(
        [PeriodicJob("outbox", FAST, hang, first_after=timedelta(0))], clock=SystemClock()
    )
    jobs.start()
    await asyncio.wait_for(started.wait(), 5)
    assert await jobs.stop(0.1) == 1


def test_describe_names_the_cause_on_one_line() -> None:
    try:
        try:
            raise OSError("disk\nfull")
        except OSError as exc:
            raise StoreError("cannot write") from exc
    except StoreError as exc:
        assert describe(exc) == "StoreError: cannot write <- caused by OSError: disk full"
    assert len(describe(ValueError("x" * 10_000))) <= 500


def test_job_names_are_unique() -> None:
    async def nothing() -> None:
        return None

    with pytest.raises(ValueError, match="unique"):
        PeriodicJobs([PeriodicJob("a", FAST, nothing)] * 2, clock=SystemClock())
