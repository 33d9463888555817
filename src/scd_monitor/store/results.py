"""Probe results: the raw rows every SLA figure is derived from.

All methods are blocking; the daemon calls them from the writer thread
(:mod:`scd_monitor.store.writer`) or through ``asyncio.to_thread``, never on the
event loop's hot path. Database errors are translated into :class:`StoreError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select

from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.store.engine import Store
from scd_monitor.store.tables import probe_results, tracker_cursors

MESSAGE_MAX = 1000


class ResultRepository:
    """Writing, reading and pruning probe results."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, results: Sequence[ProbeResult]) -> None:
        """Insert a batch of results in one transaction (all or nothing)."""
        if not results:
            return
        rows = [to_row(r) for r in results]
        with self.store.transaction(f"writing {len(rows)} probe results") as conn:
            conn.execute(insert(probe_results), rows)

    def read(
        self,
        *,
        check_id: str | None = None,
        vantage: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[ProbeResult]:
        """Results in time order, filtered; ``[since, until)``."""
        query = select(probe_results).order_by(probe_results.c.started_at, probe_results.c.id)
        if check_id is not None:
            query = query.where(probe_results.c.check_id == check_id)
        if vantage is not None:
            query = query.where(probe_results.c.vantage == vantage)
        if since is not None:
            query = query.where(probe_results.c.started_at >= since)
        if until is not None:
            query = query.where(probe_results.c.started_at < until)
        if limit is not None:
            query = query.limit(limit)
        with self.store.transaction("reading probe results") as conn:
            return [from_row(row._mapping) for row in conn.execute(query)]

    def prune(self, *, vantage: str, older_than: datetime, batch: int = 10_000) -> int:
        """Delete this vantage's raw results older than ``older_than`` that the state
        tracker has already turned into spans; return how many were deleted.

        Spans, machine snapshots and latency rollups are kept: the SLA of any past month
        stays computable; only re-deriving it from raw results needs them.
        """
        deleted = 0
        while True:
            with self.store.transaction("pruning probe results") as conn:
                cursor = conn.execute(
                    select(tracker_cursors.c.last_result_id).where(
                        tracker_cursors.c.vantage == vantage
                    )
                ).scalar()
                if cursor is None:
                    return deleted
                ids = (
                    select(probe_results.c.id)
                    .where(
                        probe_results.c.vantage == vantage,
                        probe_results.c.started_at < older_than,
                        probe_results.c.id <= cursor,
                    )
                    .limit(batch)
                )
                n = conn.execute(
                    delete(probe_results).where(probe_results.c.id.in_(ids.scalar_subquery()))
                ).rowcount
            deleted += n
            if n < batch:
                return deleted


def to_row(result: ProbeResult) -> dict[str, Any]:
    """The ``probe_results`` row of a result (its message cut to :data:`MESSAGE_MAX`)."""
    o = result.outcome
    message = o.message
    if message is not None and len(message) > MESSAGE_MAX:
        message = message[: MESSAGE_MAX - 1] + "…"
    return {
        "check_id": result.check_id,
        "vantage": result.vantage,
        "started_at": result.started_at,
        "duration_seconds": result.duration,
        "ok": o.ok,
        "error_kind": o.error_kind.value if o.error_kind else None,
        "message": message,
        "status_code": o.status_code,
        "phases": dict(o.phases) or None,
        "cert_not_after": o.cert_not_after,
        "details": {"kind": result.kind, **o.details},
    }


def from_row(row: Any) -> ProbeResult:
    """The result of a ``probe_results`` row (a mapping)."""
    details = dict(row["details"] or {})
    kind = str(details.pop("kind", ""))
    return ProbeResult(
        check_id=row["check_id"],
        kind=kind,
        vantage=row["vantage"],
        started_at=row["started_at"],
        duration=row["duration_seconds"],
        outcome=Outcome(
            ok=row["ok"],
            error_kind=ErrorKind(row["error_kind"]) if row["error_kind"] else None,
            message=row["message"],
            status_code=row["status_code"],
            phases=dict(row["phases"] or {}),
            cert_not_after=row["cert_not_after"],
            details=details,
        ),
    )
