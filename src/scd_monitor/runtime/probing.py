"""Probing in processes of their own: :class:`ProbeWorkers`, the daemon's side.

With ``SCD_MONITOR_PROBE_PROCESSES=k`` (``k ≥ 1``) the daemon's own process probes
nothing. ``k`` child processes (:mod:`scd_monitor.runtime.probeworker`) each run a
:class:`~scd_monitor.runtime.scheduling.ProbeScheduler` over a stable share of this
replica's checks (:meth:`~scd_monitor.runtime.shard.Shard.split`) and send their results
back in small batches; the daemon hands each result to the pipeline exactly as its own
scheduler would. So the event loops that time probes do nothing else: state tracking, the
store writer, SLA, incidents and ``/metrics`` rendering never hold their interpreter lock,
and a probe's duration and lag are the target's and the probing process's, not the
analysis's. A second core (or more) then probes in parallel.

The link is the child's standard input (daemon → worker) and standard output (worker →
daemon), each message a 4-byte big-endian length and a pickle: the checks to run (only
the difference after the first), the order to stop; results with the scheduler's counters
(misfires, skipped runs, probes in flight). Pickles cross only between this daemon and the
children it started, over pipes no one else holds. The child's standard error is the
daemon's: its log lines land in the same stream.

A worker that exits unexpectedly (killed, out of memory, a bug) is logged, its component
``probing`` is down (``/readyz``, ``scd_component_up``) and it is started again after a
back-off (1 s, doubling to 30 s; reset after a minute of good running) with its whole
share; the probes it had in flight are lost, as in a crash of a single daemon. A worker
whose daemon is gone (its standard input closes) stops at once. Workers ignore SIGINT and
SIGTERM (a terminal's Ctrl-C or a container manager signals the whole group): the daemon
stops them, letting in-flight probes finish within the shutdown grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from scd_monitor.catalog.models import ResolvedCheck
from scd_monitor.probes.base import ProbeResult
from scd_monitor.runtime.link import (
    WORKER_MODULE,
    ProtocolError,
    WorkerConfig,
    frame,
    read_frame,
)
from scd_monitor.runtime.scheduling import SchedulerObserver
from scd_monitor.runtime.shard import Shard
from scd_monitor.web.metrics import ComponentStatus

log = structlog.get_logger("scd_monitor.runtime.probing")

COMPONENT = "probing"
_RESTART_FIRST = 1.0
_RESTART_MAX = 30.0
_GOOD_RUN = 60.0
_STOP_MARGIN = 10.0


@dataclass
class _Worker:
    index: int
    checks: dict[str, ResolvedCheck] = field(default_factory=dict)
    """The share this worker should run (what it is sent at every start)."""
    sent: dict[str, ResolvedCheck] = field(default_factory=dict)
    """What the running process was told (None of it before it starts)."""
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    alive: bool = False
    in_flight: int = 0
    restarts: int = 0
    problem: str | None = None
    last_start: float | None = None
    stopped: asyncio.Future[int] | None = None


class ProbeWorkers:
    """Runs this replica's checks in ``count`` child processes (the module docstring).

    The same interface as :class:`~scd_monitor.runtime.scheduling.ProbeScheduler` as the
    daemon uses it: :meth:`start`, :meth:`update_checks`, :meth:`stop`,
    :attr:`job_count`, :attr:`in_flight`; results reach ``on_result`` on the event loop.
    """

    def __init__(
        self,
        *,
        count: int,
        shard: Shard,
        on_result: Callable[[ResolvedCheck, ProbeResult], None],
        vantage: str,
        max_concurrency: int,
        log_format: str,
        log_level: str,
        observer: SchedulerObserver | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        if count < 1:
            raise ValueError(f"at least one probing process, got {count}")
        self._count = count
        self._shard = shard
        self._on_result = on_result
        self._observer = observer or SchedulerObserver()
        self._config = functools.partial(
            WorkerConfig,
            count=count,
            vantage=vantage,
            max_concurrency=max_concurrency,
            log_format=log_format,
            log_level=log_level,
        )
        self._command = list(command or [sys.executable, "-m", WORKER_MODULE])
        self._workers = [_Worker(index=i) for i in range(count)]
        self._stopping = False
        self._sends: set[asyncio.Task[None]] = set()
        self.restart_first = _RESTART_FIRST

    # -- the scheduler's interface ------------------------------------------------------

    @property
    def count(self) -> int:
        return self._count

    @property
    def job_count(self) -> int:
        return sum(len(w.checks) for w in self._workers)

    @property
    def in_flight(self) -> int:
        return sum(w.in_flight for w in self._workers if w.alive)

    def pids(self) -> list[int | None]:
        """The workers' process ids (None for one not running)."""
        return [w.process.pid if w.process and w.alive else None for w in self._workers]

    def launch(self) -> None:
        """Start the worker processes (each in a task that keeps it running), with no
        checks yet: a process takes a second or more to start, so the daemon launches
        them first and deals the checks when it has them. Needs the running loop."""
        loop = asyncio.get_running_loop()
        for worker in self._workers:
            if worker.task is None:
                worker.task = loop.create_task(self._keep(worker), name=f"probing:{worker.index}")

    def start(self, checks: Sequence[ResolvedCheck]) -> None:
        """Deal ``checks`` to the workers (launched if they were not) and send each its
        share. Must be called with the event loop running."""
        self._deal(checks)
        self.launch()
        loop = asyncio.get_running_loop()
        for worker in self._workers:
            if worker.alive:
                task = loop.create_task(self._send_changes(worker))
                self._sends.add(task)
                task.add_done_callback(self._sends.discard)

    async def update_checks(self, checks: Sequence[ResolvedCheck]) -> None:
        """Put ``checks`` in force: each running worker is sent what changed in its share
        (a worker not running gets its whole share when it starts)."""
        self._deal(checks)
        for worker in self._workers:
            if worker.alive:
                await self._send_changes(worker)

    async def stop(self, grace: float) -> int:
        """Stop every worker: no new probes; in-flight ones get ``grace`` seconds, then
        are cancelled; their results are handed on before this returns. Returns the
        number of probes cancelled."""
        self._stopping = True
        cancelled = 0
        waits = []
        for worker in self._workers:
            if worker.alive and worker.process is not None:
                worker.stopped = asyncio.get_running_loop().create_future()
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self._send(worker, ("stop", grace))
                waits.append(worker)
        for worker in waits:
            assert worker.stopped is not None
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                cancelled += await asyncio.wait_for(
                    asyncio.shield(worker.stopped), grace + _STOP_MARGIN
                )
        for worker in self._workers:
            process = worker.process
            if process is not None and process.returncode is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), _STOP_MARGIN)
                if process.returncode is None:
                    log.error("probing.worker_killed", worker=worker.index, pid=process.pid)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
            if worker.task is not None:
                worker.task.cancel()
                await asyncio.gather(worker.task, return_exceptions=True)
        return cancelled

    def status(self, now: float | None = None) -> ComponentStatus:
        """The ``probing`` component: up while every worker runs."""
        down = [w for w in self._workers if not w.alive]
        problems = [w.problem or f"worker {w.index}: starting" for w in down]
        return ComponentStatus(
            component=COMPONENT,
            up=not down,
            restarts_total=sum(w.restarts for w in self._workers),
            last_success_timestamp=now if not down else None,
            problem="probing: " + "; ".join(problems) if problems else None,
        )

    # -- the shares --------------------------------------------------------------------

    def _deal(self, checks: Sequence[ResolvedCheck]) -> None:
        for worker, share in zip(
            self._workers, self._shard.split(checks, self._count), strict=True
        ):
            worker.checks = {check.id: check for check in share}

    async def _send_changes(self, worker: _Worker) -> None:
        wanted = worker.checks
        removed = [ident for ident in worker.sent if ident not in wanted]
        changed = [c for ident, c in wanted.items() if worker.sent.get(ident) != c]
        if not removed and not changed:
            return
        try:
            await self._send(worker, ("checks", changed, removed))
        except (ConnectionError, RuntimeError) as exc:  # it is exiting; its restart sends all
            log.debug("probing.send_failed", worker=worker.index, error=str(exc))
            return
        worker.sent = dict(wanted)

    async def _send(self, worker: _Worker, message: object) -> None:
        process = worker.process
        if process is None or process.stdin is None:
            raise ConnectionError("the worker is not running")
        data = frame(message)
        async with worker.lock:
            process.stdin.write(data)
            await process.stdin.drain()

    # -- one worker's life ---------------------------------------------------------------

    async def _keep(self, worker: _Worker) -> None:
        """Run the worker; start it again when it exits, until :meth:`stop`."""
        delay = self.restart_first
        while not self._stopping:
            started = time.monotonic()
            try:
                code = await self._run(worker)
                reason = f"exited with code {code}"
            except Exception as exc:  # cannot start it, or it broke the link
                log.exception("probing.worker_failed", worker=worker.index)
                reason = f"{type(exc).__name__}: {exc}"
                if worker.process is not None and worker.process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        worker.process.kill()
                    await worker.process.wait()
            finally:
                worker.alive = False
                worker.in_flight = 0
                worker.sent = {}
            if self._stopping:
                return
            if time.monotonic() - started > _GOOD_RUN:
                delay = self.restart_first
            worker.restarts += 1
            worker.problem = f"worker {worker.index} {reason}; restarting in {delay:g} s"
            log.error(
                "probing.worker_exited",
                worker=worker.index,
                reason=reason,
                checks=len(worker.checks),
                restart_in_s=delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RESTART_MAX)

    async def _run(self, worker: _Worker) -> int:
        """Start the process, send its configuration and share, hand on its results until
        it exits; its exit code."""
        process = await asyncio.create_subprocess_exec(
            *self._command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**20,
        )
        worker.process = process
        worker.last_start = time.monotonic()
        config = self._config(index=worker.index)
        await self._send(worker, ("config", config))
        worker.sent = {}
        worker.alive = True
        worker.problem = None
        await self._send_changes(worker)
        assert process.stdout is not None
        while True:
            message = await read_frame(process.stdout)
            if message is None:
                break
            self._handle(worker, message)
        return await process.wait()

    def _handle(self, worker: _Worker, message: Any) -> None:
        kind = message[0]
        if kind == "ready":
            started = worker.last_start
            log.info(
                "probing.worker_started",
                worker=worker.index,
                pid=worker.process.pid if worker.process else None,
                checks=len(worker.checks),
                start_s=round(time.monotonic() - started, 2) if started else None,
            )
        elif kind == "results":
            _kind, results, stats = message
            self._take(worker, results, stats)
        elif kind == "stopped":
            if worker.stopped is not None and not worker.stopped.done():
                worker.stopped.set_result(int(message[1]))
        else:
            raise ProtocolError(f"unknown message {kind!r} from worker {worker.index}")

    def _take(self, worker: _Worker, results: list[ProbeResult], stats: Mapping[str, int]) -> None:
        observer = self._observer
        for _ in range(stats.get("misfires", 0)):
            observer.misfire("")
        for _ in range(stats.get("skipped", 0)):
            observer.skipped("")
        worker.in_flight = stats.get("in_flight", 0)
        observer.in_flight(self.in_flight)
        checks = worker.checks
        for result in results:
            check = checks.get(result.check_id)
            if check is None:  # removed from the catalog while it was being probed
                continue
            if result.lag is not None:
                observer.lag(result.lag)
            self._on_result(check, result)
