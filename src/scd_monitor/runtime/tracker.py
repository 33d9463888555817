"""The state tracker: stored probe results → per-check state spans, as stored facts.

It reads this vantage's new probe results from the store in id order, feeds each
check's :class:`~scd_monitor.sla.derive.CheckStateMachine`, and writes, in **one
transaction** with the advanced cursor: the spans that became final, the machines'
snapshots (which carry the provisional tail) and hourly latency rollups. A crash or a
database error therefore never loses or doubles a span; a restart resumes every
machine where it stopped, so an outage that spans a restart stays one outage.
``rebuild`` replays the retained results from scratch with the same code. The tracker
only orchestrates: the rows are read and written by
:class:`~scd_monitor.store.spans.SpanRepository` and
:class:`~scd_monitor.store.rollups.LatencyRepository`, in the transaction it opens.

All methods block; the daemon calls them from a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType

import structlog

from scd_monitor.analysis.policy import DEFAULT_POLICY, derive_policy
from scd_monitor.analysis.views import CheckStatus
from scd_monitor.catalog.models import Catalog
from scd_monitor.clock import Clock
from scd_monitor.probes.base import ProbeResult
from scd_monitor.sla.derive import (
    CheckStateMachine,
    DerivePolicy,
    MachineSnapshot,
    OutOfOrderError,
)
from scd_monitor.sla.latency import LatencyHistogram
from scd_monitor.sla.model import Span, State
from scd_monitor.store import Store
from scd_monitor.store.rollups import LatencyBucket, LatencyRepository
from scd_monitor.store.spans import SpanRepository, StoredSpan

log = structlog.get_logger("scd_monitor.runtime.tracker")

_Rollup = tuple[int, int, LatencyHistogram]
"""Successful probes, those at or under the latency threshold, their histogram."""


def hour_of(instant: datetime) -> datetime:
    return instant.replace(minute=0, second=0, microsecond=0)


class StateTracker:
    """Turns this vantage's stored results into spans, incrementally and atomically."""

    def __init__(
        self,
        store: Store,
        *,
        vantage: str,
        clock: Clock,
        batch_limit: int = 20_000,
    ) -> None:
        self._store = store
        self._spans = SpanRepository(store)
        self._rollups = LatencyRepository(store)
        self._vantage = vantage
        self._clock = clock
        self._batch_limit = batch_limit
        self._lock = threading.Lock()
        self._policies: dict[str, DerivePolicy] = {}
        self._machines: dict[str, CheckStateMachine] = {}
        self._last_rows: dict[str, StoredSpan] = {}
        self._loaded = False
        self._current: Mapping[str, CheckStatus] = MappingProxyType({})
        self.processed_total = 0
        self.out_of_order_total = 0
        self.failed_results_total = 0

    # -- configuration and views ------------------------------------------------------

    def set_catalog(self, catalog: Catalog) -> None:
        with self._lock:
            self._policies = {c.id: derive_policy(catalog, c) for c in catalog.resolved_checks()}

    def current(self) -> Mapping[str, CheckStatus]:
        """The last published states (immutable; safe to read from any thread)."""
        return self._current

    # -- processing ----------------------------------------------------------------------

    def run_once(self) -> int:
        """Process new results (at most ``batch_limit``); return how many were processed.

        On any error (the database's, or one of ours) the transaction is rolled back and
        the in-memory machines are dropped, to be reloaded from their stored snapshots
        next time, so memory never runs ahead of the stored facts.
        """
        with self._lock:
            try:
                n = self._process()
            except BaseException:
                self._machines.clear()
                self._last_rows.clear()
                self._loaded = False
                raise
            self.processed_total += n
            self._publish()
            return n

    def run_until_idle(self, *, max_rounds: int = 10_000) -> int:
        total = 0
        for _ in range(max_rounds):
            n = self.run_once()
            total += n
            if n < self._batch_limit:
                break
        return total

    def rebuild(self) -> int:
        """Forget this vantage's derived facts and derive them again from stored results."""
        with self._lock:
            with self._store.transaction("rebuilding states") as conn:
                self._spans.forget_vantage(conn, self._vantage)
                self._rollups.forget_vantage(conn, self._vantage)
            self._machines.clear()
            self._last_rows.clear()
            self._loaded = False
        return self.run_until_idle()

    def _process(self) -> int:
        """One round, in one transaction: read the results after the cursor, feed them
        to the machines, store what they produced and advance the cursor."""
        v = self._vantage
        with self._store.transaction("state tracking") as conn:
            if not self._loaded:
                self._load(self._spans.machines(conn, vantage=v))
            rows = self._spans.results_after(
                conn, v, self._spans.cursor(conn, v), limit=self._batch_limit
            )
            if not rows:
                return 0
            new_spans, touched, latency = self._feed(result for _, result in rows)
            now = self._clock.now()
            for check_id, spans in new_spans.items():
                last = self._spans.save_spans(
                    conn, check_id, v, spans, last=self._last_rows.get(check_id)
                )
                if last is not None:
                    self._last_rows[check_id] = last
            for check_id in touched:
                snapshot = self._machines[check_id].snapshot()
                self._spans.save_machine(conn, check_id, v, snapshot, now)
            for (check_id, hour), (ok, under, hist) in latency.items():
                self._rollups.add(conn, LatencyBucket(check_id, v, hour, ok, under, hist))
            self._spans.advance_cursor(conn, v, rows[-1][0], now)
        return len(rows)

    def _feed(
        self, results: Iterable[ProbeResult]
    ) -> tuple[dict[str, list[Span]], set[str], dict[tuple[str, datetime], _Rollup]]:
        """Feed ``results`` to their machines: the spans that became final per check,
        the checks whose machines moved, and latency rollups per check and hour."""
        new_spans: dict[str, list[Span]] = {}
        touched: set[str] = set()
        latency: dict[tuple[str, datetime], _Rollup] = {}
        for result in results:
            machine = self._machine(result.check_id)
            if machine is None:
                continue
            try:
                spans = machine.feed(result)
                self._add_latency(latency, result)
            except OutOfOrderError:
                # A result older than what the machine has seen (e.g. replayed from the
                # spool): it cannot be applied incrementally; `states rebuild` uses it.
                self.out_of_order_total += 1
                log.warning(
                    "state.result_out_of_order",
                    check=result.check_id,
                    started_at=result.started_at.isoformat(),
                )
                continue
            except Exception:
                # One result the machine cannot take (a bug, or a value nothing foresaw)
                # is skipped and said once per result; the other checks go on.
                self.failed_results_total += 1
                log.exception(
                    "state.result_failed",
                    check=result.check_id,
                    started_at=result.started_at.isoformat(),
                )
                continue
            touched.add(result.check_id)
            if spans:
                new_spans.setdefault(result.check_id, []).extend(spans)
        return new_spans, touched, latency

    def _load(self, snapshots: Mapping[tuple[str, str], MachineSnapshot]) -> None:
        """Resume the machines from their stored ``snapshots``."""
        self._machines.clear()
        for (check_id, _), snapshot in snapshots.items():
            policy = self._policies.get(check_id, DEFAULT_POLICY)
            self._machines[check_id] = CheckStateMachine(policy, snapshot)
        self._last_rows.clear()
        self._loaded = True

    def _machine(self, check_id: str) -> CheckStateMachine | None:
        machine = self._machines.get(check_id)
        if machine is None:
            policy = self._policies.get(check_id)
            if policy is None:
                return None  # not (or no longer) in the catalog: nothing to judge it by
            machine = CheckStateMachine(policy)
            self._machines[check_id] = machine
        return machine

    def _add_latency(
        self,
        acc: dict[tuple[str, datetime], _Rollup],
        result: ProbeResult,
    ) -> None:
        if not result.ok:
            return
        policy = self._policies.get(result.check_id)
        if policy is None:
            return
        key = (result.check_id, hour_of(result.started_at))
        ok, under, hist = acc.get(key) or (0, 0, LatencyHistogram())
        hist.add(result.duration)
        under += 1 if result.duration <= policy.latency_threshold.total_seconds() else 0
        acc[key] = (ok + 1, under, hist)

    def _publish(self) -> None:
        now = self._clock.now()
        current: dict[str, CheckStatus] = {}
        for check_id, machine in self._machines.items():
            policy = self._policies.get(check_id)
            last = machine.last_observation_at
            state = machine.state
            if policy is None:
                continue
            if last is None or now - last > policy.staleness:
                state = State.UNKNOWN
            since = machine.down_since if state is State.DOWN else None
            current[check_id] = CheckStatus(state=state, since=since, last_observation_at=last)
        self._current = MappingProxyType(current)
