"""Batched, off-loop writes of probe results, surviving a database outage.

The event loop hands each result to :meth:`ResultWriter.submit` (a non-blocking
append). A dedicated thread writes them in batches. When the database refuses a write,
the batch stays in memory and is retried with capped exponential backoff; nothing is
dropped until ``buffer_limit`` results are waiting, and every drop is counted and
logged, never silent.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from scd_monitor.errors import StoreError
from scd_monitor.probes.base import ProbeResult
from scd_monitor.store.results import ResultRepository

log = structlog.get_logger("scd_monitor.store")


@dataclass(frozen=True, slots=True)
class WriterStats:
    """A snapshot of the writer for metrics and ``/readyz``."""

    pending: int
    written_total: int
    batches_total: int
    errors_total: int
    dropped_total: int
    last_success_monotonic: float | None
    last_error: str | None
    healthy: bool


class ResultWriter:
    """Owns the writer thread. ``start()``, ``submit()`` many times, ``close()``."""

    def __init__(
        self,
        results: ResultRepository,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        buffer_limit: int = 200_000,
        max_backoff: float = 30.0,
        observe_write: Callable[[float], None] | None = None,
    ) -> None:
        self._results = results
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._buffer_limit = buffer_limit
        self._max_backoff = max_backoff
        self._observe_write = observe_write
        self._pending: deque[ProbeResult] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._written = 0
        self._batches = 0
        self._errors = 0
        self._dropped = 0
        self._last_success: float | None = None
        self._last_error: str | None = None
        self._failing = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scd-store-writer", daemon=True)
        self._thread.start()

    def submit(self, result: ProbeResult) -> None:
        """Queue one result for writing. Never blocks on the database."""
        with self._cond:
            if len(self._pending) >= self._buffer_limit:
                self._pending.popleft()
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 1000 == 0:
                    log.error(
                        "store.buffer_full",
                        dropped_total=self._dropped,
                        buffer_limit=self._buffer_limit,
                        hint="the database has been unreachable for long; oldest results dropped",
                    )
            self._pending.append(result)
            if len(self._pending) >= self._batch_size:
                self._cond.notify()

    def stats(self) -> WriterStats:
        with self._cond:
            return WriterStats(
                pending=len(self._pending),
                written_total=self._written,
                batches_total=self._batches,
                errors_total=self._errors,
                dropped_total=self._dropped,
                last_success_monotonic=self._last_success,
                last_error=self._last_error,
                healthy=not self._failing,
            )

    def flush(self, timeout: float) -> bool:
        """Wait until every queued result is written; False if time ran out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify()
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
                self._cond.notify()
            return True

    def close(self, timeout: float = 10.0) -> bool:
        """Write what is queued (bounded by ``timeout``), then stop the thread."""
        flushed = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, timeout))
        if not flushed:
            log.error("store.unflushed_on_close", pending=len(self._pending))
        return flushed

    def take_pending(self) -> list[ProbeResult]:
        """Remove and return what is still queued (after :meth:`close`, for the spool)."""
        with self._cond:
            items = list(self._pending)
            self._pending.clear()
            return items

    def _take_batch(self) -> list[ProbeResult]:
        with self._cond:
            if not self._pending and not self._closing:
                self._cond.wait(self._flush_interval)
            n = min(len(self._pending), self._batch_size)
            return [self._pending[i] for i in range(n)]

    def _run(self) -> None:
        backoff = 0.5
        while True:
            batch = self._take_batch()
            if not batch:
                with self._cond:
                    if self._closing:
                        return
                continue
            started = time.monotonic()
            try:
                self._results.write(batch)
            except StoreError as exc:
                with self._cond:
                    self._errors += 1
                    self._last_error = str(exc)
                    first = not self._failing
                    self._failing = True
                if first:
                    log.error("store.write_failed", error=str(exc), pending=len(self._pending))
                with self._cond:
                    if self._closing:
                        return
                    self._cond.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            elapsed = time.monotonic() - started
            if self._observe_write is not None:
                self._observe_write(elapsed)
            with self._cond:
                # Only the writer removes items, and only from the left: the first
                # len(batch) items are exactly the batch unless drops happened meanwhile.
                for item in batch:
                    if self._pending and self._pending[0] is item:
                        self._pending.popleft()
                self._written += len(batch)
                self._batches += 1
                self._last_success = time.monotonic()
                recovered = self._failing
                self._failing = False
                self._last_error = None
                self._cond.notify_all()
            if recovered:
                log.info("store.write_recovered", written=len(batch), pending=len(self._pending))
            backoff = 0.5
