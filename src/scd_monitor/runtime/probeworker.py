"""A probing process: ``python -m scd_monitor.runtime.probeworker``, started by the daemon.

It runs a :class:`~scd_monitor.runtime.scheduling.ProbeScheduler` over the checks the
daemon sends and sends the results back (:mod:`scd_monitor.runtime.probing` describes the
link, :mod:`scd_monitor.runtime.link` its messages). It does nothing else: no store, no
metrics, no listener. Started by hand it waits for a daemon on its standard input and
exits when that input ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import Any

import structlog

from scd_monitor.clock import SystemClock
from scd_monitor.logs import configure_logging
from scd_monitor.probes import build_probes
from scd_monitor.probes.base import ProbeResult
from scd_monitor.runtime.heap import SETTLE_EVERY, settle
from scd_monitor.runtime.link import WorkerConfig, frame, read_frame
from scd_monitor.runtime.scheduling import ProbeScheduler, SchedulerObserver

log = structlog.get_logger("scd_monitor.runtime.probeworker")

FLUSH_EVERY = 0.05
"""Seconds between two batches of results (and at most this much added latency)."""
FLUSH_AT = 256
"""A batch is sent at once when it holds this many results."""


class _Outbox:
    """Results and scheduler counters waiting for the next batch."""

    def __init__(self) -> None:
        self.results: list[ProbeResult] = []
        self.misfires = 0
        self.skipped = 0
        self.in_flight = 0
        self.changed = False
        self.full = asyncio.Event()

    def add(self, _check: object, result: ProbeResult) -> None:
        self.results.append(result)
        self.changed = True
        if len(self.results) >= FLUSH_AT:
            self.full.set()

    def misfire(self, _job: str) -> None:
        self.misfires += 1
        self.changed = True

    def skip(self, _job: str) -> None:
        self.skipped += 1
        self.changed = True

    def set_in_flight(self, n: int) -> None:
        self.in_flight = n
        self.changed = True

    def take(self) -> tuple[str, list[ProbeResult], dict[str, int]] | None:
        if not self.changed:
            return None
        message = (
            "results",
            self.results,
            {"misfires": self.misfires, "skipped": self.skipped, "in_flight": self.in_flight},
        )
        self.results = []
        self.misfires = self.skipped = 0
        self.changed = False
        self.full.clear()
        return message


async def _pipes() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The link: standard input and output. Standard output is then pointed at standard
    error, so a stray print of a library cannot corrupt the link."""
    loop = asyncio.get_running_loop()
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    reader = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0)
    )
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(out_fd, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return reader, writer


async def serve() -> int:
    reader, writer = await _pipes()
    first: Any = await read_frame(reader)
    if first is None:
        return 0
    if first[0] != "config":
        raise SystemExit(f"expected the configuration first, got {first[0]!r}")
    config: WorkerConfig = first[1]
    configure_logging(config.log_format, config.log_level)
    structlog.contextvars.bind_contextvars(probe_worker=config.index)
    outbox = _Outbox()
    scheduler = ProbeScheduler(
        probes=build_probes(),
        on_result=outbox.add,
        vantage=config.vantage,
        clock=SystemClock(),
        max_concurrency=config.max_concurrency,
        observer=SchedulerObserver(
            misfire=outbox.misfire, skipped=outbox.skip, in_flight=outbox.set_in_flight
        ),
    )
    scheduler.start([])
    writer.write(frame(("ready", os.getpid())))
    await writer.drain()
    loop = asyncio.get_running_loop()

    async def flush_forever() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(outbox.full.wait(), FLUSH_EVERY)
            message = outbox.take()
            if message is not None:
                writer.write(frame(message))
                await writer.drain()

    def settle_later() -> None:
        settle()
        loop.call_later(SETTLE_EVERY.total_seconds(), settle_later)

    flusher = loop.create_task(flush_forever())
    checks: dict[str, Any] = {}
    settle_handle = loop.call_later(60.0, settle_later)
    cancelled = 0
    try:
        while True:
            message = await read_frame(reader)
            if message is None:  # the daemon is gone: nobody to send results to
                cancelled = await scheduler.stop(0)
                return 0
            kind = message[0]
            if kind == "checks":
                _kind, changed, removed = message
                for ident in removed:
                    checks.pop(ident, None)
                for check in changed:
                    checks[check.id] = check
                await scheduler.update_checks(list(checks.values()))
            elif kind == "stop":
                cancelled = await scheduler.stop(float(message[1]))
                break
            else:
                log.error("probeworker.unknown_message", kind=str(kind))
    finally:
        settle_handle.cancel()
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
    last = outbox.take()
    if last is not None:
        writer.write(frame(last))
    writer.write(frame(("stopped", cancelled)))
    await writer.drain()
    writer.close()
    return 0


def main() -> int:
    # The daemon stops its workers itself (with the shutdown grace); a signal meant for
    # the whole process group (Ctrl-C, a container manager) must not cut them short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return asyncio.run(serve())


if __name__ == "__main__":
    sys.exit(main())
