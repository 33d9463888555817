"""The results pipeline: where every :class:`ProbeResult` goes after its probe.

It keeps, per check, the latest result and a few counters (everything ``/metrics``
needs), hands the result to the store writer and logs one canonical line,
``probe.finished``: at ``debug`` (at 300 probes per second, a line per probe at ``info``
costs a good share of the event loop), at ``info`` when the outcome changes from the
check's previous result (the first failure, a different error kind, the first success
after failures, or the check's first result in this process). Confirmed state changes
are the state tracker's ``check.state_changed`` lines, at ``info``. It runs on
the event loop and does no I/O itself. :meth:`ResultsPipeline.snapshot` gives an
immutable view for the metrics collector, which may read it from another thread.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from types import MappingProxyType

import structlog

from scd_monitor.analysis.views import CheckCounters, Snapshot
from scd_monitor.catalog.models import ResolvedCheck
from scd_monitor.probes.base import ProbeResult

log = structlog.get_logger("scd_monitor.probe")


class ResultsPipeline:
    """Receives results from the scheduler, fans them out, keeps the latest state."""

    def __init__(self, *, vantage: str, sink: Callable[[ProbeResult], None]) -> None:
        self._vantage = vantage
        self._sink = sink
        self._checks: tuple[ResolvedCheck, ...] = ()
        self._latest: dict[str, ProbeResult] = {}
        self._runs: Counter[str] = Counter()
        self._failures: dict[str, Counter[str]] = {}
        self._snapshot: Snapshot | None = None

    def set_checks(self, checks: Sequence[ResolvedCheck]) -> None:
        """The checks now in the catalog; state of removed checks is forgotten."""
        self._checks = tuple(checks)
        keep = {c.id for c in checks}
        for gone in set(self._latest) - keep:
            del self._latest[gone]
        for gone in set(self._runs) - keep:
            del self._runs[gone]
            self._failures.pop(gone, None)
        self._snapshot = None

    def submit(self, check: ResolvedCheck, result: ProbeResult) -> None:
        self._sink(result)
        previous = self._latest.get(result.check_id)
        self._latest[result.check_id] = result
        self._runs[result.check_id] += 1
        o = result.outcome
        if not o.ok and o.error_kind is not None:
            self._failures.setdefault(result.check_id, Counter())[o.error_kind.value] += 1
        self._snapshot = None
        changed = (
            previous is None
            or previous.outcome.ok != o.ok
            or previous.outcome.error_kind != o.error_kind
        )
        if changed:
            emit = log.info
        elif log.is_enabled_for(logging.DEBUG):
            emit = log.debug
        else:
            return  # nothing built for a line nobody reads
        emit(
            "probe.finished",
            check=result.check_id,
            kind=result.kind,
            vantage=result.vantage,
            target=check.target,
            ok=o.ok,
            error_kind=o.error_kind.value if o.error_kind else None,
            error=o.message,
            status=o.status_code,
            duration_s=round(result.duration, 4),
            lag_s=round(result.lag, 4) if result.lag is not None else None,
            phases={k: round(v, 4) for k, v in o.phases.items()} or None,
            cert_not_after=o.cert_not_after.isoformat() if o.cert_not_after else None,
        )

    def snapshot(self) -> Snapshot:
        """An immutable view of the current state (cached until the next change)."""
        snap = self._snapshot
        if snap is None:
            snap = Snapshot(
                checks=self._checks,
                latest=MappingProxyType(dict(self._latest)),
                counters=MappingProxyType(
                    {
                        cid: CheckCounters(
                            runs=n,
                            failures_by_kind=MappingProxyType(dict(self._failures.get(cid, {}))),
                        )
                        for cid, n in self._runs.items()
                    }
                ),
                vantage=self._vantage,
            )
            self._snapshot = snap
        return snap
