"""Batched, off-loop writes of probe results, surviving a database outage, poison rows
and its own bugs.

The event loop hands each result to :meth:`ResultWriter.submit` (a non-blocking
append, after the result is written to the spool journal, :mod:`.spool`). A dedicated
thread writes them in batches. What can go wrong, and what happens:

* the database is unreachable (a transient :class:`StoreError`): the batch stays in
  memory (and in the journal) and is retried with capped exponential backoff; nothing
  is dropped from memory until ``buffer_limit`` results are waiting, and every drop is
  counted and logged (its journal segment is then kept for the next start);
* the database refuses a row (:class:`RejectedRowsError`: a value it cannot take): the
  batch is bisected, the good halves are written, and each bad row is stored through
  :meth:`ResultRepository.write_isolated` (identity and verdict kept, a note instead of
  its evidence), counted as poisoned; one row never holds up the others. Should even
  that be refused, the database is at fault, not the row: back off and retry;
* the writer's own code raises: the thread logs it, counts a restart and carries on
  (and a thread found dead is started again by the next ``submit``).

Journal segments are deleted once every result in them is committed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import structlog

from scd_monitor.errors import StoreError
from scd_monitor.probes.base import ProbeResult
from scd_monitor.store.results import RejectedRowsError, ResultRepository, clean_text, one_line
from scd_monitor.store.spool import Journal, read_spool_file

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
    poisoned_total: int = 0
    """Results stored in a changed form: values replaced, or isolated by bisection."""
    restarts_total: int = 0
    """Times the writer's loop failed on its own error and was started again."""
    alive: bool = True
    """The writer thread is running (or not started yet)."""
    stalled_seconds: float = 0.0
    """Seconds since results were last committed while some are waiting (0 if none)."""
    journal_errors_total: int = 0
    """Failures to append to, sync or clean the spool journal (results kept in memory)."""
    spool_files: int = 0
    """Spool files on disk holding results not yet known to be committed."""


class _Item(NamedTuple):
    seq: int
    result: ProbeResult
    queued: float


class _Refused(StoreError):
    """The database refused even an isolated, cleaned row: it is at fault, not the row."""


class ResultWriter:
    """Owns the writer thread. ``recover()`` (the spool), ``start()``, ``submit()`` many
    times, ``close()``."""

    def __init__(
        self,
        results: ResultRepository,
        *,
        journal: Journal | None = None,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        buffer_limit: int = 200_000,
        max_backoff: float = 30.0,
        restart_delay: float = 1.0,
        observe_write: Callable[[float], None] | None = None,
    ) -> None:
        self._results = results
        self._journal = journal
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._buffer_limit = buffer_limit
        self._max_backoff = max_backoff
        self._restart_delay = restart_delay
        self._observe_write = observe_write
        self._pending: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._seq = 0
        self._done_through = 0
        """Every result up to this sequence number is committed (or was dropped)."""
        self._written = 0
        self._batches = 0
        self._errors = 0
        self._dropped = 0
        self._poisoned = 0
        self._restarts = 0
        self._last_success: float | None = None
        self._last_error: str | None = None
        self._failing = False
        self._backlog: deque[Path] = deque()
        """Spool files of earlier runs not read yet (the queue was too full)."""

    # -- life cycle -------------------------------------------------------------------------

    def recover(self) -> int:
        """Open the journal and queue again what earlier runs left in the spool (before
        :meth:`start`): oldest first, while the queue is under half ``buffer_limit``
        (the writer thread queues the rest as it drains). Each file is deleted once its
        results are committed. Returns how many results were queued now."""
        if self._journal is None:
            return 0
        found = self._journal.open()
        with self._cond:
            self._backlog.extend(found)
        queued = self._refill()
        if found:
            log.info(
                "spool.replayed",
                results=queued,
                files=len(found),
                waiting_files=len(self._backlog),
                hint="queued again; each file is deleted once its results are committed",
            )
        return queued

    def start(self) -> None:
        with self._cond:
            self._start_thread()

    def submit(self, result: ProbeResult) -> None:
        """Queue one result for writing (after appending it to the journal). Never
        blocks on the database."""
        with self._cond:
            self._enqueue(result, journal=True)
            if self._thread is not None and not self._thread.is_alive() and not self._closing:
                self._restarts += 1
                log.error("store.writer_restarted", restarts_total=self._restarts)
                self._start_thread()

    def stats(self) -> WriterStats:
        journal = self._journal
        with self._cond:
            now = time.monotonic()
            stalled = 0.0
            if self._pending:
                since = self._pending[0].queued
                if self._last_success is not None:
                    since = max(since, self._last_success)
                stalled = max(0.0, now - since)
            thread = self._thread
            return WriterStats(
                pending=len(self._pending),
                written_total=self._written,
                batches_total=self._batches,
                errors_total=self._errors,
                dropped_total=self._dropped,
                last_success_monotonic=self._last_success,
                last_error=self._last_error,
                healthy=not self._failing,
                poisoned_total=self._poisoned,
                restarts_total=self._restarts,
                alive=thread is None or thread.is_alive() or self._closing,
                stalled_seconds=stalled,
                journal_errors_total=journal.errors_total if journal is not None else 0,
                spool_files=(journal.files() if journal is not None else 0) + len(self._backlog),
            )

    def flush(self, timeout: float) -> bool:
        """Wait until every queued result (and spool file of earlier runs) is written;
        False if time ran out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify()
            while self._pending or self._backlog:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
                self._cond.notify()
            return True

    def close(self, timeout: float = 10.0) -> bool:
        """Write what is queued (bounded by ``timeout``), then stop the thread and close
        the journal: what is still unwritten stays in the spool for the next start."""
        flushed = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, timeout))
        if self._journal is not None:
            with self._cond:
                through = self._done_through
                pending = len(self._pending)
            kept = self._journal.close(through) + list(self._backlog)
            if kept:
                log.warning(
                    "spool.kept",
                    pending=pending,
                    files=len(kept),
                    directory=str(self._journal.directory),
                    hint="the database did not take them; they are written on the next start",
                )
        if not flushed:
            log.error("store.unflushed_on_close", pending=len(self._pending))
        return flushed

    # -- inside -----------------------------------------------------------------------------

    def _start_thread(self) -> None:
        self._thread = threading.Thread(
            target=self._supervise, name="scd-store-writer", daemon=True
        )
        self._thread.start()

    def _enqueue(self, result: ProbeResult, *, journal: bool = False) -> None:
        """Under ``_cond``: number the result, journal it, queue it (dropping the oldest
        when the buffer is full)."""
        self._seq += 1
        if journal and self._journal is not None:
            self._journal.append(self._seq, result)
        if len(self._pending) >= self._buffer_limit:
            oldest = self._pending.popleft()
            self._done_through = max(self._done_through, oldest.seq)
            if self._journal is not None:
                self._journal.keep(oldest.seq)
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.error(
                    "store.buffer_full",
                    dropped_total=self._dropped,
                    buffer_limit=self._buffer_limit,
                    hint="the database has been unreachable for long; oldest results "
                    "dropped from memory (kept in the spool, if it can be written)",
                )
        self._pending.append(_Item(self._seq, result, time.monotonic()))
        if len(self._pending) >= self._batch_size:
            self._cond.notify()

    def _refill(self) -> int:
        """Queue spool files of earlier runs while the queue is under half
        ``buffer_limit``; how many results were queued."""
        journal = self._journal
        queued = 0
        while journal is not None:
            with self._cond:
                if not self._backlog or len(self._pending) >= self._buffer_limit // 2:
                    return queued
                path = self._backlog.popleft()
            try:
                spool_file = read_spool_file(path)
            except OSError as exc:  # left on disk for the next start
                journal.error("spool.read_failed", f"{path}: {exc}")
                continue
            with self._cond:
                # Registered first, so that a result dropped from a full buffer while
                # queueing keeps its file; in one go, so that its numbers follow.
                journal.adopt(path, self._seq + len(spool_file.results))
                for result in spool_file.results:
                    self._enqueue(result)
            queued += len(spool_file.results)
        return queued

    def _supervise(self) -> None:
        """The thread: the write loop, started again whenever its own code fails."""
        while True:
            try:
                self._run()
                return
            except Exception as exc:  # a bug must not stop storage: log, count, restart
                with self._cond:
                    self._restarts += 1
                    self._failing = True
                    self._last_error = f"writer failed: {one_line(exc)}"
                    restarts = self._restarts
                log.exception("store.writer_crashed", restarts_total=restarts)
                with self._cond:
                    if self._closing:
                        return
                    self._cond.wait(self._restart_delay)

    def _take_batch(self) -> list[_Item]:
        with self._cond:
            if not self._pending and not self._closing:
                self._cond.wait(self._flush_interval)
            n = min(len(self._pending), self._batch_size)
            return [self._pending[i] for i in range(n)]

    def _sync_journal(self) -> None:
        if self._journal is not None:
            self._journal.sync()

    def _run(self) -> None:
        backoff = 0.5
        while True:
            self._sync_journal()
            if self._backlog:
                self._refill()
            batch = self._take_batch()
            if not batch:
                with self._cond:
                    if self._closing:
                        return
                continue
            self._sync_journal()
            try:
                self._write(batch)
            except StoreError as exc:
                with self._cond:
                    self._errors += 1
                    self._last_error = one_line(exc)
                    first = not self._failing
                    self._failing = True
                    pending = len(self._pending)
                if first:
                    log.error("store.write_failed", error=one_line(exc), pending=pending)
                if not self._wait(backoff):
                    return
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = 0.5

    def _wait(self, seconds: float) -> bool:
        """Back off for ``seconds``, syncing the journal meanwhile; False when closing."""
        deadline = time.monotonic() + seconds
        while True:
            with self._cond:
                if self._closing:
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True
                self._cond.wait(min(remaining, self._flush_interval))
            self._sync_journal()

    def _write(self, batch: list[_Item]) -> None:
        """Commit ``batch``; a refused row is isolated, never retried as it is. Raises
        :class:`StoreError` when the database fails (what is not committed stays)."""
        started = time.monotonic()
        try:
            poisoned = self._results.write([item.result for item in batch])
        except RejectedRowsError as exc:
            log.warning("store.batch_refused", results=len(batch), error=one_line(exc))
            self._bisect(batch, exc)
            return
        except StoreError:
            raise
        except Exception as exc:  # not the database's: treat it as the rows', isolate them
            log.warning("store.batch_refused", results=len(batch), error=one_line(exc))
            self._bisect(batch, exc)
            return
        if self._observe_write is not None:
            self._observe_write(time.monotonic() - started)
        self._committed(batch, poisoned=poisoned)

    def _bisect(self, items: Sequence[_Item], error: BaseException) -> None:
        """Commit ``items``, which failed together with ``error``: halves written on
        their own, a single bad row isolated. In order, so that what is committed is
        always the front of the queue."""
        if len(items) == 1:
            self._isolate(items[0], error)
            return
        middle = len(items) // 2
        for half in (items[:middle], items[middle:]):
            try:
                poisoned = self._results.write([item.result for item in half])
            except RejectedRowsError as exc:
                self._bisect(half, exc)
                continue
            except StoreError:
                raise
            except Exception as exc:  # as in _write
                self._bisect(half, exc)
                continue
            self._committed(half, poisoned=poisoned)

    def _isolate(self, item: _Item, error: BaseException) -> None:
        result = item.result
        try:
            self._results.write_isolated(result, error)
        except StoreError as exc:
            if not isinstance(exc, RejectedRowsError):
                raise
            raise _Refused(f"the database refuses even a cleaned result ({one_line(exc)})") from exc
        except Exception as exc:  # as in _write; the row is not the cause then
            raise _Refused(f"storing an isolated result failed: {one_line(exc)}") from exc
        log.error(
            "store.result_isolated",
            check=clean_text(result.check_id)[0],
            started_at=result.started_at.isoformat(),
            error=one_line(error),
            hint="stored with its identity and verdict, and a note instead of its details",
        )
        self._committed([item], poisoned=1)

    def _committed(self, items: Sequence[_Item], *, poisoned: int) -> None:
        with self._cond:
            # Only the writer removes items from the left, besides drops of the oldest
            # when the buffer is full: the batch is at the front unless dropped meanwhile.
            for item in items:
                if self._pending and self._pending[0].seq == item.seq:
                    self._pending.popleft()
            self._done_through = max(self._done_through, items[-1].seq)
            through = self._done_through
            self._written += len(items)
            self._batches += 1
            self._poisoned += poisoned
            self._last_success = time.monotonic()
            recovered = self._failing
            self._failing = False
            self._last_error = None
            pending = len(self._pending)
            self._cond.notify_all()
        if recovered:
            log.info("store.write_recovered", written=len(items), pending=pending)
        if self._journal is not None:
            self._journal.release(through)
