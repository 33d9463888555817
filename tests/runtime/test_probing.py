"""Probing processes: the link, the shares, real child processes probing a real server."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from scd_monitor.catalog import ResolvedCheck, parse_catalog
from scd_monitor.config.settings import Settings, auto_probe_processes
from scd_monitor.probes.base import ProbeResult
from scd_monitor.runtime.link import (
    MAX_FRAME,
    WORKER_MODULE,
    ProtocolError,
    WorkerConfig,
    frame,
    read_frame,
)
from scd_monitor.runtime.probing import ProbeWorkers
from scd_monitor.runtime.scheduling import SchedulerObserver
from scd_monitor.runtime.shard import Shard, worker_of

# -- the link -------------------------------------------------------------------------


async def _reader(data: bytes, *, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def test_frames_round_trip_and_end_cleanly() -> None:
    message = ("results", [1, "dos", None], {"misfires": 2})
    reader = await _reader(frame(message) + frame(("stopped", 0)))
    assert await read_frame(reader) == message
    assert await read_frame(reader) == ("stopped", 0)
    assert await read_frame(reader) is None


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x00\x00", "header"),
        (b"\x00\x00\x00\x10abc", "inside a message"),
        ((MAX_FRAME + 1).to_bytes(4, "big"), "limit"),
    ],
)
async def test_broken_frames_are_protocol_errors(data: bytes, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        await read_frame(await _reader(data))


# -- the shares -----------------------------------------------------------------------


def make_checks(
    n: int, url: str = "http://127.0.0.1:9/", *, interval: float = 1
) -> list[ResolvedCheck]:
    catalog = parse_catalog(
        f"""
providers:
  - id: p
    name: P
    services:
      - id: s
        type: otro
        checks: [{{id: c, kind: http, url: "{url}"}}]
"""
    )
    (base,) = catalog.resolved_checks()
    return [
        dataclasses.replace(
            base,
            check=f"c{i}",
            interval=timedelta(seconds=interval),
            timeout=timedelta(seconds=2),
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(("shards", "workers"), [(1, 1), (1, 3), (2, 2), (3, 4)])
def test_each_check_of_a_replica_has_exactly_one_worker(shards: int, workers: int) -> None:
    checks = make_checks(400)
    for index in range(shards):
        shard = Shard(index, shards)
        mine = shard.select(checks)
        parts = shard.split(mine, workers)
        assert sorted(c.id for part in parts for c in part) == sorted(c.id for c in mine)
        # Not correlated with the shard: every worker gets a fair part.
        assert all(len(part) > len(mine) / workers / 2 for part in parts), [len(p) for p in parts]
        # Stable: the same whatever the order or the other checks.
        again = shard.split(list(reversed(mine))[: len(mine) // 2], workers)
        for w, part in enumerate(again):
            assert all(worker_of(c.id, shards, workers) == w for c in part)
            assert {c.id for c in part} <= {c.id for c in parts[w]}


@pytest.mark.parametrize(("cores", "expected"), [(1, 0), (2, 1), (4, 3), (64, 8)])
def test_auto_leaves_one_core_to_the_daemon(cores: int, expected: int) -> None:
    assert auto_probe_processes(cores) == expected


def test_the_setting_takes_a_number_or_auto() -> None:
    assert Settings(probe_processes="2").probe_process_count == 2  # type: ignore[arg-type]
    assert Settings(probe_processes=0).probe_process_count == 0
    assert Settings().probe_processes == "auto"
    with pytest.raises(ValueError, match="probe_processes"):
        Settings(probe_processes="many")  # type: ignore[arg-type]


# -- real processes against a real server ---------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, float]]]:
    """An HTTP server on 127.0.0.1 answering 200; ``control["delay"]`` slows answers."""
    control = {"delay": 0.0}

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(control["delay"])
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    async with srv:
        yield f"http://127.0.0.1:{port}/health", control


class Sink:
    def __init__(self) -> None:
        self.results: list[ProbeResult] = []
        self.lags: list[float] = []
        self.in_flight: list[int] = []

    def __call__(self, check: ResolvedCheck, result: ProbeResult) -> None:
        assert check.id == result.check_id
        self.results.append(result)

    def ids(self) -> set[str]:
        return {r.check_id for r in self.results}

    def observer(self) -> SchedulerObserver:
        return SchedulerObserver(lag=self.lags.append, in_flight=self.in_flight.append)


def workers(sink: Sink, count: int) -> ProbeWorkers:
    probing = ProbeWorkers(
        count=count,
        shard=Shard(),
        on_result=sink,
        vantage="test",
        max_concurrency=16,
        log_format="json",
        log_level="warning",
        observer=sink.observer(),
    )
    probing.restart_first = 0.2
    return probing


async def until(predicate: object, within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_workers_probe_their_shares_and_follow_changes(
    server: tuple[str, dict[str, float]],
) -> None:
    url, _control = server
    checks = make_checks(6, url)
    sink = Sink()
    probing = workers(sink, 2)
    probing.start(checks)
    try:
        assert probing.job_count == 6
        await until(lambda: sink.ids() == {c.id for c in checks})
        assert all(r.ok for r in sink.results), [r.outcome for r in sink.results if not r.ok]
        assert all(r.vantage == "test" and r.scheduled_at is not None for r in sink.results)
        assert len(sink.lags) == len(sink.results)
        pids = probing.pids()
        assert len(set(pids)) == 2 and os.getpid() not in pids
        assert probing.status().up

        # A check removed is no longer probed; one added is.
        added = make_checks(7, url)[6]
        await probing.update_checks([*checks[1:], added])
        assert probing.job_count == 6
        await until(lambda: added.id in sink.ids())
        sink.results.clear()
        await asyncio.sleep(2.5)
        assert checks[0].id not in sink.ids()
        assert sink.ids() == {c.id for c in [*checks[1:], added]}
    finally:
        cancelled = await probing.stop(5)
    assert cancelled == 0
    assert all(p is None for p in probing.pids())


async def test_a_killed_worker_is_started_again_with_its_share(
    server: tuple[str, dict[str, float]],
) -> None:
    url, _control = server
    checks = make_checks(8, url)
    sink = Sink()
    probing = workers(sink, 2)
    probing.start(checks)
    try:
        await until(lambda: sink.ids() == {c.id for c in checks})
        victim = probing.pids()[1]
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        await until(lambda: not probing.status().up)
        status = probing.status()
        assert status.problem is not None and "worker 1" in status.problem
        assert "-9" in status.problem
        await until(lambda: probing.status().up and probing.pids()[1] not in (None, victim))
        assert probing.status().restarts_total == 1
        share = {c.id for c in checks if worker_of(c.id, 1, 2) == 1}
        sink.results.clear()
        await until(lambda: share <= sink.ids())
    finally:
        await probing.stop(5)


async def test_stop_lets_in_flight_probes_finish_and_ignores_group_signals(
    server: tuple[str, dict[str, float]],
) -> None:
    url, control = server
    checks = make_checks(2, url, interval=1)
    sink = Sink()
    probing = workers(sink, 1)
    probing.start(checks)
    try:
        await until(lambda: len(sink.results) >= 2)
        pid = probing.pids()[0]
        assert pid is not None
        os.kill(pid, signal.SIGTERM)  # a signal to the process group: ignored
        os.kill(pid, signal.SIGINT)
        control["delay"] = 1.0
        await until(lambda: bool(sink.in_flight) and sink.in_flight[-1] > 0)
        assert probing.in_flight > 0
        before = len(sink.results)
    finally:
        cancelled = await probing.stop(5)
    assert cancelled == 0
    assert probing.pids() == [None]
    slow = sink.results[before:]
    assert slow and all(r.ok and r.duration >= 0.9 for r in slow)
    assert probing.status().restarts_total == 0


def test_a_worker_whose_daemon_is_gone_exits() -> None:
    worker = subprocess.Popen(
        [sys.executable, "-m", WORKER_MODULE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert worker.stdin is not None
    config = WorkerConfig(
        index=0, count=1, vantage="t", max_concurrency=1, log_format="json", log_level="error"
    )
    worker.stdin.write(frame(("config", config)) + frame(("checks", make_checks(2), [])))
    worker.stdin.flush()
    worker.stdin.close()
    assert worker.wait(timeout=30) == 0
