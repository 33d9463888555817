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
from typing import Any

import structlog

from scd_monitor.probes.base import ProbeResult
from scd_monitor.store.repository import from_row, to_row

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
