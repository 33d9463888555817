"""A spool on local disk for results the database could not take before a shutdown.

When the daemon stops while the database is unreachable, the results still in memory
are written here (one JSON object per line, atomically renamed into place); the next
start loads them back into the writer's queue. Only a hard kill loses them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import structlog

from scd_monitor.probes.base import ProbeResult
from scd_monitor.store.results import from_row, to_row

log = structlog.get_logger("scd_monitor.store")

_DATETIME_FIELDS = ("started_at", "cert_not_after")


def spool_results(directory: Path, results: Sequence[ProbeResult], *, now: datetime) -> Path | None:
    """Write ``results`` to a new spool file in ``directory``; return its path."""
    if not results:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"results-{now.strftime('%Y%m%dT%H%M%S%fZ')}-{os.getpid()}.jsonl"
    tmp = final.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for result in results:
            row = to_row(result)
            for key in _DATETIME_FIELDS:
                if row[key] is not None:
                    row[key] = row[key].isoformat()
            out.write(json.dumps(row, separators=(",", ":")) + "\n")
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(final)
    return final


def load_spool(directory: Path) -> tuple[list[ProbeResult], list[Path]]:
    """Every spooled result (oldest file first) and the files they came from.

    Unreadable lines are logged and skipped, never fatal.
    """
    results: list[ProbeResult] = []
    files = sorted(directory.glob("results-*.jsonl")) if directory.is_dir() else []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                row: dict[str, Any] = json.loads(line)
                for key in _DATETIME_FIELDS:
                    if row.get(key) is not None:
                        row[key] = datetime.fromisoformat(row[key])
                results.append(from_row(row))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("spool.bad_line", file=str(path), line=number, error=str(exc))
    return results, files


class _Writer(Protocol):
    def submit(self, result: ProbeResult) -> None: ...
    def take_pending(self) -> list[ProbeResult]: ...


def replay_spool(writer: _Writer, directory: Path) -> None:
    """Queue results spooled by an earlier stop; they are re-spooled if still unwritten."""
    results, files = load_spool(directory)
    for result in results:
        writer.submit(result)
    for path in files:
        path.unlink(missing_ok=True)
    if files:
        log.info("spool.replayed", results=len(results), files=len(files))


def spool_pending(writer: _Writer, directory: Path, *, now: datetime) -> None:
    """Write what the writer could not store to the spool (at a stop with the database down)."""
    pending = writer.take_pending()
    try:
        path = spool_results(directory, pending, now=now)
    except OSError as exc:
        log.error("spool.write_failed", results=len(pending), error=str(exc))
        return
    log.warning(
        "spool.written",
        results=len(pending),
        path=str(path),
        hint="the database did not take them; they are written on the next start",
    )
