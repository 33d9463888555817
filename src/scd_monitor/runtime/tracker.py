"""The state tracker: stored probe results → per-check state spans, as stored facts.

It reads this vantage's new probe results from the store in id order, feeds each
check's :class:`~scd_monitor.sla.derive.CheckStateMachine`, and writes, in **one
transaction** with the advanced cursor: the spans that became final, the machines'
snapshots (which carry the provisional tail) and hourly latency rollups. A crash or a
database error therefore never loses or doubles a span; a restart resumes every
machine where it stopped, so an outage that spans a restart stays one outage.
``rebuild`` replays the retained results from scratch with the same code.

All methods block; the daemon calls them from a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

import structlog
from sqlalchemy import Connection, and_, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from scd_monitor.analysis.policy import DEFAULT_POLICY, derive_policy
from scd_monitor.analysis.views import CheckStatus
from scd_monitor.catalog.models import Catalog
from scd_monitor.clock import Clock
from scd_monitor.errors import StoreError
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
from scd_monitor.store.repository import from_row
from scd_monitor.store.tables import (
    check_machines,
    check_spans,
    latency_hourly,
    probe_results,
    tracker_cursors,
)

log = structlog.get_logger("scd_monitor.runtime.tracker")


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
        self._vantage = vantage
        self._clock = clock
        self._batch_limit = batch_limit
        self._lock = threading.Lock()
        self._policies: dict[str, DerivePolicy] = {}
        self._machines: dict[str, CheckStateMachine] = {}
        self._last_rows: dict[str, tuple[int, Span]] = {}
        self._loaded = False
        self._current: Mapping[str, CheckStatus] = MappingProxyType({})
        self.processed_total = 0
        self.out_of_order_total = 0

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

        On a database error, in-memory machines are dropped and reloaded from their
        stored snapshots next time, so memory never runs ahead of the stored facts.
        """
        with self._lock:
            try:
                with self._store.engine.begin() as conn:
                    n = self._process(conn)
            except SQLAlchemyError as exc:
                self._machines.clear()
                self._last_rows.clear()
                self._loaded = False
                raise StoreError(f"state tracking failed: {exc}") from exc
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
            try:
                with self._store.engine.begin() as conn:
                    v = self._vantage
                    conn.execute(delete(check_spans).where(check_spans.c.vantage == v))
                    conn.execute(delete(check_machines).where(check_machines.c.vantage == v))
                    conn.execute(delete(latency_hourly).where(latency_hourly.c.vantage == v))
                    conn.execute(delete(tracker_cursors).where(tracker_cursors.c.vantage == v))
            except SQLAlchemyError as exc:
                raise StoreError(f"rebuilding states failed: {exc}") from exc
            self._machines.clear()
            self._last_rows.clear()
            self._loaded = False
        return self.run_until_idle()

    def _process(self, conn: Connection) -> int:
        v = self._vantage
        if not self._loaded:
            self._load(conn)
        cursor = conn.execute(
            select(tracker_cursors.c.last_result_id).where(tracker_cursors.c.vantage == v)
        ).scalar()
        last_id = int(cursor) if cursor is not None else 0
        rows = conn.execute(
            select(probe_results)
            .where(and_(probe_results.c.vantage == v, probe_results.c.id > last_id))
            .order_by(probe_results.c.id)
            .limit(self._batch_limit)
        ).all()
        if not rows:
            return 0
        new_spans: dict[str, list[Span]] = {}
        touched: set[str] = set()
        latency: dict[tuple[str, datetime], tuple[int, int, LatencyHistogram]] = {}
        for row in rows:
            result = from_row(row._mapping)
            machine = self._machine(result.check_id)
            if machine is None:
                continue
            try:
                spans = machine.feed(result)
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
            touched.add(result.check_id)
            if spans:
                new_spans.setdefault(result.check_id, []).extend(spans)
            self._add_latency(latency, result)
        now = self._clock.now()
        for check_id, spans in new_spans.items():
            self._write_spans(conn, check_id, spans)
        for check_id in touched:
            self._write_machine(conn, check_id, now)
        self._write_latency(conn, latency)
        new_last = int(rows[-1]._mapping["id"])
        if cursor is None:
            conn.execute(
                insert(tracker_cursors).values(vantage=v, last_result_id=new_last, updated_at=now)
            )
        else:
            conn.execute(
                update(tracker_cursors)
                .where(tracker_cursors.c.vantage == v)
                .values(last_result_id=new_last, updated_at=now)
            )
        return len(rows)

    def _load(self, conn: Connection) -> None:
        v = self._vantage
        self._machines.clear()
        for row in conn.execute(select(check_machines).where(check_machines.c.vantage == v)):
            policy = self._policies.get(row.check_id, DEFAULT_POLICY)
            snapshot = MachineSnapshot.from_json(row.snapshot)
            self._machines[row.check_id] = CheckStateMachine(policy, snapshot)
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
        acc: dict[tuple[str, datetime], tuple[int, int, LatencyHistogram]],
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

    def _write_spans(self, conn: Connection, check_id: str, spans: Sequence[Span]) -> None:
        v = self._vantage
        last = self._last_rows.get(check_id)
        if last is None:
            row = conn.execute(
                select(check_spans)
                .where(and_(check_spans.c.check_id == check_id, check_spans.c.vantage == v))
                .order_by(check_spans.c.start.desc())
                .limit(1)
            ).first()
            if row is not None:
                m = row._mapping
                last = (
                    int(m["id"]),
                    Span(m["start"], m["end"], State(m["state"]), m["reason"]),
                )
        for span in spans:
            if (
                last is not None
                and last[1].end == span.start
                and last[1].state == span.state
                and last[1].reason == span.reason
            ):
                merged = Span(last[1].start, span.end, span.state, span.reason)
                conn.execute(
                    update(check_spans).where(check_spans.c.id == last[0]).values(end=span.end)
                )
                last = (last[0], merged)
            else:
                new_id = conn.execute(
                    insert(check_spans).values(
                        check_id=check_id,
                        vantage=v,
                        state=span.state.value,
                        reason=span.reason,
                        start=span.start,
                        end=span.end,
                    )
                ).inserted_primary_key
                assert new_id is not None
                last = (int(new_id[0]), span)
        if last is not None:
            self._last_rows[check_id] = last

    def _write_machine(self, conn: Connection, check_id: str, now: datetime) -> None:
        v = self._vantage
        snapshot: Any = self._machines[check_id].snapshot().to_json()
        updated = conn.execute(
            update(check_machines)
            .where(and_(check_machines.c.check_id == check_id, check_machines.c.vantage == v))
            .values(snapshot=snapshot, updated_at=now)
        ).rowcount
        if not updated:
            conn.execute(
                insert(check_machines).values(
                    check_id=check_id, vantage=v, snapshot=snapshot, updated_at=now
                )
            )

    def _write_latency(
        self,
        conn: Connection,
        acc: Mapping[tuple[str, datetime], tuple[int, int, LatencyHistogram]],
    ) -> None:
        v = self._vantage
        for (check_id, hour), (ok, under, hist) in acc.items():
            where = and_(
                latency_hourly.c.check_id == check_id,
                latency_hourly.c.vantage == v,
                latency_hourly.c.hour == hour,
            )
            row = conn.execute(select(latency_hourly).where(where)).first()
            if row is None:
                conn.execute(
                    insert(latency_hourly).values(
                        check_id=check_id,
                        vantage=v,
                        hour=hour,
                        ok_count=ok,
                        under_threshold_count=under,
                        histogram=hist.to_json(),
                    )
                )
            else:
                m = row._mapping
                merged = LatencyHistogram.from_json(m["histogram"]).merge(hist)
                conn.execute(
                    update(latency_hourly)
                    .where(where)
                    .values(
                        ok_count=m["ok_count"] + ok,
                        under_threshold_count=m["under_threshold_count"] + under,
                        histogram=merged.to_json(),
                    )
                )

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
