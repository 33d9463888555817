"""The spool: every probe result on local disk until the database has committed it.

A write-ahead journal (issue 12). :meth:`Journal.append` writes each result, one JSON
object a line, to the open segment file (``results-<UTC time>-<pid>-<n>.jsonl``) with
one unbuffered ``write`` *before* the result is queued for the database; the writer
thread fsyncs the segment at least once a flush interval (:meth:`Journal.sync`). A
segment rotates after ``segment_results`` results or ``segment_seconds``, and is
deleted only once every result in it is committed (:meth:`Journal.release`) — never
when it is read. A result dropped from the writer's full buffer keeps its segment on
disk for the next start.

At start, :meth:`Journal.open` takes the directory (an exclusive lock: one daemon per
spool) and lists the files a previous run left (segments of a run that was killed or
stopped with the database down, and spool files of releases before the journal); the
writer reads and queues them again, oldest first and only as many as half its buffer
holds at a time (the rest wait on disk), and the files are released like segments,
after commit. Results already stored are skipped by the store (a result's identity is its
check, vantage and start), so a crash at any point of a replay loses nothing and stores
nothing twice. A line that cannot be read is kept aside in ``rejected-<file>`` (and
logged), and does not hold up the others.

What a hard stop can lose:

* the process killed (SIGKILL, OOM killer, a crash): nothing that the pipeline handed
  to the writer; the appended line is in the kernel once ``append`` returns;
* the machine stopping (power loss, kernel panic): the results appended since the last
  fsync: at most one flush interval's worth, plus those appended while one database
  write was in progress (the writer syncs between writes); a line cut in half is
  rejected, not misread.

The journal works best-effort: a disk that cannot be written (full, read-only) is
logged and counted, and results still go to the database from memory.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from scd_monitor.probes.base import ProbeResult
from scd_monitor.store.results import from_row, to_row

log = structlog.get_logger("scd_monitor.store")

_DATETIME_FIELDS = ("started_at", "cert_not_after")
_PATTERN = "results-*.jsonl"
_LOCK = ".lock"


def encode(result: ProbeResult) -> bytes:
    """One spool line (JSON in ASCII: lone surrogates and NUL travel as escapes)."""
    row = to_row(result)
    for key in _DATETIME_FIELDS:
        if row[key] is not None:
            row[key] = row[key].isoformat()
    return (json.dumps(row, separators=(",", ":"), default=str) + "\n").encode("ascii")


def decode(line: str) -> ProbeResult:
    """The result of a spool line; ValueError, KeyError or TypeError if it is not one."""
    row: dict[str, Any] = json.loads(line)
    for key in _DATETIME_FIELDS:
        if row.get(key) is not None:
            row[key] = datetime.fromisoformat(row[key])
    return from_row(row)


@dataclass(slots=True)
class SpoolFile:
    """A file found in the spool at start, with what could be read of it."""

    path: Path
    results: list[ProbeResult]
    rejected: int = 0


def read_spool_file(path: Path) -> SpoolFile:
    """Every readable result of ``path``, in order; unreadable lines are copied to
    ``rejected-<name>`` next to it and logged."""
    results: list[ProbeResult] = []
    rejected: list[str] = []
    with path.open("r", encoding="utf-8", errors="replace", newline="\n") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                results.append(decode(line))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                rejected.append(line if line.endswith("\n") else line + "\n")
                if len(rejected) <= 5:
                    log.error(
                        "spool.bad_line",
                        file=str(path),
                        line=number,
                        error=str(exc).encode("ascii", "backslashreplace").decode()[:200],
                    )
    if rejected:
        aside = path.with_name(f"rejected-{path.name}")
        with aside.open("a", encoding="utf-8", errors="backslashreplace") as out:
            out.writelines(rejected)
        log.error("spool.lines_rejected", file=str(path), lines=len(rejected), kept=str(aside))
    return SpoolFile(path, results, len(rejected))


@dataclass(slots=True)
class _Segment:
    path: Path
    last_seq: int
    keep: bool = False
    fd: int | None = None
    """Open for appending (the current segment, or a rotated one not yet synced)."""
    results: int = 0
    opened: float = field(default_factory=time.monotonic)


class Journal:
    """The spool directory of one daemon. ``open()`` once (the files left there), then
    ``append`` (event loop) and ``sync``/``release`` (writer thread); ``close()`` last."""

    def __init__(
        self,
        directory: Path,
        *,
        segment_results: int = 1000,
        segment_seconds: float = 60.0,
    ) -> None:
        self.directory = directory
        self._segment_results = segment_results
        self._segment_seconds = segment_seconds
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._current: _Segment | None = None
        self._to_close: list[_Segment] = []
        self._dirty = False
        self._new_file = False
        self._lock_fd: int | None = None
        self._enabled = False
        self._counter = 0
        self.errors_total = 0

    # -- start and stop ------------------------------------------------------------------

    def open(self) -> list[Path]:
        """Take the directory; the files earlier runs left there, oldest first (read
        them with :func:`read_spool_file`, register them with :meth:`adopt`). On a
        directory that cannot be used the journal is off (logged, counted): results
        still reach the database from memory."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self._error("spool.in_use", "another daemon uses this spool directory")
                return []
            self._lock_fd = fd
            found = sorted(self.directory.glob(_PATTERN))
        except OSError as exc:
            self._error("spool.unusable", str(exc))
            return []
        self._enabled = True
        return found

    def close(self, committed_through: int) -> list[Path]:
        """Sync and close every segment, delete those fully committed; the files kept
        (their results are queued again at the next start)."""
        self.sync()
        with self._lock:
            current, self._current = self._current, None
            if current is not None:
                self._to_close.append(current)
        self.sync()
        self.release(committed_through)
        with self._lock:
            kept = [s.path for s in self._segments]
            self._enabled = False
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
        return kept

    # -- the event loop's side -------------------------------------------------------------

    def append(self, seq: int, result: ProbeResult) -> None:
        """Write ``result`` (the writer's sequence number ``seq``) to the open segment.
        Never raises: a failure is logged (the first of a run of them) and counted."""
        if not self._enabled:
            return
        try:
            line = encode(result)
        except (ValueError, TypeError, UnicodeError) as exc:
            self._error("spool.append_failed", f"{type(exc).__name__}: {exc}")
            return
        with self._lock:
            try:
                segment = self._segment()
                assert segment.fd is not None
                written = os.write(segment.fd, line)
                while written < len(line):  # a short write (rare: signals, disk full)
                    written += os.write(segment.fd, line[written:])
            except OSError as exc:
                self._error("spool.append_failed", str(exc))
                return
            segment.last_seq = seq
            segment.results += 1
            self._dirty = True

    def adopt(self, path: Path, last_seq: int) -> None:
        """A file read at start, whose results the writer queued up to ``last_seq``:
        deleted once they are committed."""
        with self._lock:
            self._segments.append(_Segment(path, last_seq))

    def keep(self, seq: int) -> None:
        """The result ``seq`` was dropped from memory: keep its file for the next start."""
        with self._lock:
            for segment in self._segments:
                if seq <= segment.last_seq:
                    segment.keep = True
                    return

    # -- the writer thread's side -----------------------------------------------------------

    def sync(self) -> None:
        """fsync what was appended (and the directory, after a new segment); close
        rotated segments. Cheap when nothing was appended."""
        with self._sync_lock:
            with self._lock:
                if not (self._dirty or self._to_close):
                    return
                fds = [s.fd for s in self._to_close if s.fd is not None]
                if self._current is not None and self._current.fd is not None:
                    fds.append(self._current.fd)
                closing, self._to_close = self._to_close, []
                new_file, self._new_file = self._new_file, False
                self._dirty = False
            try:
                for fd in fds:
                    os.fsync(fd)
                if new_file:
                    _fsync_directory(self.directory)
            except OSError as exc:
                self._error("spool.sync_failed", str(exc))
            finally:
                for segment in closing:
                    if segment.fd is not None:
                        os.close(segment.fd)
                        segment.fd = None

    def release(self, committed_through: int) -> None:
        """Delete every closed file whose results are all committed (sequence numbers
        up to ``committed_through``), unless one of its results was dropped."""
        with self._lock:
            done = [
                s
                for s in self._segments
                if s.fd is None and s.last_seq <= committed_through and not s.keep
            ]
            self._segments = [s for s in self._segments if s not in done]
        for segment in done:
            try:
                segment.path.unlink(missing_ok=True)
            except OSError as exc:
                self._error("spool.delete_failed", f"{segment.path}: {exc}")

    def files(self) -> int:
        """Spool files on disk that hold results not known to be committed."""
        with self._lock:
            return len(self._segments)

    # -- inside -----------------------------------------------------------------------------

    def _segment(self) -> _Segment:
        """The open segment (under ``_lock``), rotated when full or old."""
        current = self._current
        if current is not None and (
            current.results >= self._segment_results
            or time.monotonic() - current.opened >= self._segment_seconds
        ):
            self._to_close.append(current)
            current = self._current = None
        if current is None:
            self._counter += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            path = self.directory / f"results-{stamp}-{os.getpid()}-{self._counter:06d}.jsonl"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
            current = self._current = _Segment(path, 0, fd=fd)
            self._segments.append(current)
            self._new_file = True
        return current

    def error(self, event: str, error: str) -> None:
        """Count and log (the first of a run of them) a failure of the spool."""
        self._error(event, error)

    def _error(self, event: str, error: str) -> None:
        self.errors_total += 1
        if self.errors_total == 1 or self.errors_total % 1000 == 0:
            log.error(
                event,
                directory=str(self.directory),
                error=error,
                errors_total=self.errors_total,
                hint="results go on to the database from memory; a hard stop may lose some",
            )


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
