"""The state tracker: stored probe results → per-check state spans, as stored facts.

It reads this vantage's new probe results from the store in id order, feeds each
check's :class:`~scd_monitor.sla.derive.CheckStateMachine`, and writes, in **one
transaction** with the advanced cursor: the spans that became final, the machines'
snapshots (which carry the provisional tail) and hourly latency rollups. A crash or a
database error therefore never loses or doubles a span; a restart resumes every
machine where it stopped, so an outage that spans a restart stays one outage.
``rebuild`` replays the retained results from scratch with the same code. A confirmed
change of a check's state (up, down, maintenance, unknown) is logged at ``info``
(``check.state_changed``; not while rebuilding), the probes themselves only at ``debug``.

Replicas of one vantage (``SCD_MONITOR_SHARD=i/n``, :mod:`scd_monitor.runtime.shard`)
write that vantage's results from several processes at once, while only shard 0 tracks
them. Result ids come from one sequence, and a transaction that took a lower id may
commit after one that took a higher id: a cursor moved past the higher one would skip
the lower one for good. With ``settle`` set (the daemon sets it when sharded), a round
therefore stops before the first missing id above the cursor until that id has been
missing for ``settle``: a transaction in flight commits within it; an id still missing
after it was never going to be (a rolled-back batch, a duplicate skipped on conflict,
pruned rows) and is passed. The sharded tracker also keeps the latest result of every
check (:meth:`StateTracker.latest`): the other replicas' checks have none in this
process's results pipeline. The tracker
only orchestrates: the rows are read and written by
:class:`~scd_monitor.store.spans.SpanRepository` and
:class:`~scd_monitor.store.rollups.LatencyRepository`, in the transaction it opens.

All methods block; the daemon calls them from a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType

import structlog
from sqlalchemy import Connection, func, select

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
from scd_monitor.store.oidckeys import (
    KeyEvent,
    KeyObservation,
    KeyState,
    OidcKeyRepository,
    observation_of,
)
from scd_monitor.store.rollups import LatencyBucket, LatencyRepository
from scd_monitor.store.spans import SpanRepository, StoredSpan
from scd_monitor.store.tables import probe_results

log = structlog.get_logger("scd_monitor.runtime.tracker")

_Rollup = tuple[int, int, LatencyHistogram]
"""Successful probes, those at or under the latency threshold, their histogram."""


EARLY_KEPT = timedelta(days=1)
"""How long an early key removal is kept in memory for incident detection (the incident
rule's ``lasts`` is shorter; one day covers any sensible setting)."""


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
        settle: timedelta | None = None,
        keep_latest: bool = False,
    ) -> None:
        self._store = store
        self._spans = SpanRepository(store)
        self._rollups = LatencyRepository(store)
        self._oidc_keys = OidcKeyRepository(store)
        self._key_states: dict[str, KeyState] | None = None
        self._key_observations: list[KeyObservation] = []
        self._key_changes: dict[tuple[str, str, bool], int] = {}
        self._key_changes_view: Mapping[tuple[str, str, bool], int] = MappingProxyType({})
        self._pending_key_changes: dict[tuple[str, str, bool], int] | None = None
        self._early: tuple[KeyEvent, ...] = ()
        """Early key removals of the last :data:`EARLY_KEPT` (for incident detection)."""
        self._vantage = vantage
        self._clock = clock
        self._batch_limit = batch_limit
        self._lock = threading.Lock()
        self._policies: dict[str, DerivePolicy] = {}
        self._machines: dict[str, CheckStateMachine] = {}
        self._last_rows: dict[str, StoredSpan] = {}
        self._loaded = False
        self._current: Mapping[str, CheckStatus] = MappingProxyType({})
        self._settle = settle.total_seconds() if settle is not None else None
        self._gaps: dict[int, float] = {}
        """Ids missing above the cursor → when first seen missing (monotonic seconds)."""
        self._keep_latest = keep_latest
        self._latest: dict[str, ProbeResult] = {}
        self._latest_view: Mapping[str, ProbeResult] = MappingProxyType({})
        self._replaying = False
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

    def early_key_removals(self) -> tuple[KeyEvent, ...]:
        """Signing keys removed while a token they signed was valid, recent ones
        (:data:`EARLY_KEPT`); immutable, safe to read from any thread."""
        return self._early

    def key_changes(self) -> Mapping[tuple[str, str, bool], int]:
        """OIDC key events recorded since the start, by (check, change, early)."""
        return self._key_changes_view

    def latest(self) -> Mapping[str, ProbeResult]:
        """The latest tracked result per check (empty unless ``keep_latest``; immutable)."""
        return self._latest_view

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
                self._key_states = None
                self._key_observations = []
                self._pending_key_changes = None
                raise
            if self._pending_key_changes is not None:  # committed: count them
                self._key_changes = self._pending_key_changes
                self._key_changes_view = MappingProxyType(dict(self._key_changes))
                self._pending_key_changes = None
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
            self._gaps.clear()
            self._loaded = False
            self._replaying = True
        try:
            return self.run_until_idle()
        finally:
            self._replaying = False

    def _process(self) -> int:
        """One round, in one transaction: read the results after the cursor, feed them
        to the machines, store what they produced and advance the cursor."""
        v = self._vantage
        with self._store.transaction("state tracking") as conn:
            if not self._loaded:
                self._load(self._spans.machines(conn, vantage=v))
            cursor = self._spans.cursor(conn, v)
            rows = self._spans.results_after(conn, v, cursor, limit=self._batch_limit)
            if rows and self._settle is not None:
                rows = self._settled(conn, cursor, rows)
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
            self._spans.save_machines(
                conn, v, ((c, self._machines[c].snapshot()) for c in touched), now
            )
            self._rollups.add_many(
                conn,
                (
                    LatencyBucket(check_id, v, hour, ok, under, hist)
                    for (check_id, hour), (ok, under, hist) in latency.items()
                ),
            )
            self._record_keys(conn)
            self._spans.advance_cursor(conn, v, rows[-1][0], now)
        return len(rows)

    def _record_keys(self, conn: Connection) -> None:
        """Key rotations of OIDC providers seen in this round's results
        (:mod:`scd_monitor.store.oidckeys`), in the round's transaction."""
        observations, self._key_observations = self._key_observations, []
        if not observations:
            return
        if self._key_states is None:
            self._key_states = self._oidc_keys.states(conn, self._vantage)
            since = self._clock.now() - EARLY_KEPT
            self._early = tuple(
                e
                for e in self._oidc_keys.events_in(conn, since=since, vantage=self._vantage)
                if e.early
            )
        events = self._oidc_keys.apply(conn, self._vantage, observations, self._key_states)
        if any(e.early for e in events):
            cutoff = self._clock.now() - EARLY_KEPT
            kept = [e for e in self._early if e.at >= cutoff]
            self._early = (*kept, *(e for e in events if e.early))
        counts = dict(self._key_changes)
        for event in events:
            key = (event.check_id, event.change, event.early)
            counts[key] = counts.get(key, 0) + 1
            emit = log.warning if event.early else log.info
            emit(
                "oidc.key_changed",
                check=event.check_id,
                vantage=self._vantage,
                change=event.change,
                kid=event.kid,
                early=event.early,
                at=event.at.isoformat(),
            )
        # Counted once the transaction commits (in run_once), not before.
        self._pending_key_changes = counts

    def _settled(
        self, conn: Connection, cursor: int | None, rows: list[tuple[int, ProbeResult]]
    ) -> list[tuple[int, ProbeResult]]:
        """``rows`` up to the first id above the cursor that is missing (any vantage's)
        and has not been missing for ``settle`` yet (module doc)."""
        assert self._settle is not None
        high = rows[-1][0]
        if cursor is not None:
            low = cursor
        else:  # the vantage's first round: from the last id below its first result
            first = rows[0][0]
            below = conn.execute(
                select(func.max(probe_results.c.id)).where(probe_results.c.id < first)
            ).scalar()
            low = int(below) if below is not None else max(0, first - 1 - self._batch_limit)
        in_range = (probe_results.c.id > low, probe_results.c.id <= high)
        present = conn.execute(select(func.count()).where(*in_range)).scalar_one()
        if present == high - low:  # no id missing: the usual case
            self._gaps.clear()
            return rows
        ids = set(conn.execute(select(probe_results.c.id).where(*in_range)).scalars())
        now = self._clock.monotonic()
        gaps = {i: self._gaps.get(i, now) for i in range(low + 1, high + 1) if i not in ids}
        self._gaps = gaps
        young = [i for i, since in gaps.items() if now - since < self._settle]
        if not young:
            return rows
        first = min(young)
        kept = [row for row in rows if row[0] < first]
        if len(kept) < len(rows):
            log.debug(
                "state.waiting_for_result_id",
                missing_id=first,
                held_back=len(rows) - len(kept),
                missing_for_s=round(now - gaps[first], 3),
            )
        return kept

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
            before = _coarse(machine)
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
            if result.kind == "oidc" and not self._replaying:
                keys = observation_of(result.check_id, result.started_at, result.outcome.details)
                if keys is not None:
                    self._key_observations.append(keys)
            if self._keep_latest:
                seen = self._latest.get(result.check_id)
                if seen is None or seen.started_at <= result.started_at:
                    self._latest[result.check_id] = result
            after = _coarse(machine)
            if after is not before and not self._replaying:
                log.info(
                    "check.state_changed",
                    check=result.check_id,
                    vantage=self._vantage,
                    state=after.value,
                    previous=before.value,
                    at=result.started_at.isoformat(),
                    since=machine.down_since.isoformat() if machine.down_since else None,
                    error_kind=result.outcome.error_kind.value
                    if result.outcome.error_kind
                    else None,
                )
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
        if self._keep_latest:
            for gone in [c for c in self._latest if c not in self._policies]:
                del self._latest[gone]
            self._latest_view = MappingProxyType(dict(self._latest))


def _coarse(machine: CheckStateMachine) -> State:
    """The machine's state as a log line tells it: down, maintenance, unknown or up
    (degraded is up: it goes with each slow observation, not worth a line)."""
    if machine.down_since is not None:
        return State.DOWN
    state = machine.state
    return State.UP if state is State.DEGRADED else state
