"""The per-check state machine: one check's probe results from one vantage → state spans.

Pure: no I/O, no clock. The daemon feeds it one result at a time (and persists its
:meth:`CheckStateMachine.snapshot` between restarts); :func:`derive_spans` rebuilds
history from stored results. Both run the same code and give the same spans.

Rules
-----
Each kept result is an *observation* at its ``started_at`` with a :class:`Verdict`
(:func:`classify`): ``ok`` within the latency threshold is OK, ``ok`` but slower is
SLOW, a failure whose ``details["maintenance"] is True`` is MAINTENANCE (an X-Road
security server answering 503), a failure of kind ``internal`` is the monitor's own
fault and is **ignored** (as if the probe never ran: no failure, no success, and
:attr:`~CheckStateMachine.last_observation_at` does not move), any other failure is
FAIL.

An observation covers ``[t, next observation)``, at most ``[t, t + staleness)``. Time
no observation covers is a gap: no span is emitted for it (consumers read uncovered
time as UNKNOWN), and spans never merge across a gap.

Debounce. The machine's *confirmed* state is unknown, up or down; it starts unknown.
While not down, FAILs accumulate in a run; at ``failures_to_open`` the check is DOWN
back-dated to the run's first failure; a success or a maintenance observation first
cancels the run, and the cancelled failures read as the state they interrupted (UP,
or UNKNOWN before the first confirmed result; a failure is no evidence of slowness,
so they never read DEGRADED). While down or unknown, successes accumulate; at
``successes_to_close`` the check is up back-dated to the run's first success, each
success of the run reading UP or DEGRADED by its own latency; a failure or a
maintenance observation first cancels the run, and its successes read the confirmed
state (DOWN, or UNKNOWN). So the debounce delays the verdict but never moves the
start or the end of an outage. DEGRADED and MAINTENANCE are per observation, not
debounced (DEGRADED only while up: a slow success while down or unknown is one more
success of the confirming run).

*Unknown until known*: before its first confirmed result (``successes_to_close``
successes or ``failures_to_open`` failures in a row) a check has no state: its time
reads UNKNOWN (reason ``unconfirmed``), never UP, so a check that has never
succeeded is not counted available, and never DOWN before the outage is confirmed.
The confirmed outage is still back-dated to its first failing probe, so no charged
downtime ever precedes the first failure of a confirmed outage.

Choices the issue left open:

- *Initial state*: UNKNOWN (above). :attr:`CheckStateMachine.state` is UNKNOWN until
  the first confirmed result.
- *Maintenance* resets both runs but keeps the confirmed state: an outage that goes
  into maintenance is the same outage after it (same start, same reason; the
  maintenance time reads MAINTENANCE, not DOWN) and needs ``successes_to_close``
  successes to close; a check that was up needs ``failures_to_open`` failures after
  the maintenance to be DOWN.
- *Gaps* do not reset anything: an outage across a restart of the daemon stays one
  outage, with no span over the gap.
- *Duplicates*: an observation at the instant of the last one is dropped online (first
  wins). :func:`derive_spans` keeps one result per instant regardless of input order:
  ``internal`` results never win, then the verdict most favourable to the provider
  (OK, SLOW, MAINTENANCE, FAIL; among failures the smallest error kind). Redundant
  copies are identical, so both paths agree; conflicting ones are a data error.
- *Pending runs at the end of the data* read as the confirmed state (UP while up, DOWN
  while down, UNKNOWN before the first confirmed result) in
  :meth:`CheckStateMachine.provisional`: no alarm, no charge yet.
- *A policy change* applied to a restored snapshot takes effect from the next
  observation.

Spans' ``reason``: DOWN carries the error kind of the outage's first failing probe
(every DOWN span of one outage carries the same one), MAINTENANCE ``"maintenance"``,
DEGRADED ``"slow"``, UNKNOWN ``"unconfirmed"``, UP ``None``.

Final and provisional
---------------------
:meth:`CheckStateMachine.feed` and :meth:`CheckStateMachine.close_until` return only
*completed* spans: final (no later result can change them) and maximal (the next span
differs in state or reason, or a gap follows), so a consumer appends them as they
are. :meth:`CheckStateMachine.provisional` returns everything after them: the current
span (final in its start and state, open at its end) and the tail that a pending run
may still rewrite. Completed spans followed by the provisional ones make the timeline
as it reads now; no two of its adjacent spans need merging.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from scd_monitor.probes.base import ErrorKind, ProbeResult
from scd_monitor.sla.model import Span, State

__all__ = [
    "MAINTENANCE_REASON",
    "SLOW_REASON",
    "UNCONFIRMED_REASON",
    "CheckStateMachine",
    "DerivePolicy",
    "MachineSnapshot",
    "Observation",
    "OutOfOrderError",
    "Verdict",
    "classify",
    "derive_spans",
]

MAINTENANCE_REASON = "maintenance"
"""The ``reason`` of MAINTENANCE spans."""
SLOW_REASON = "slow"
"""The ``reason`` of DEGRADED spans."""
UNCONFIRMED_REASON = "unconfirmed"
"""The ``reason`` of UNKNOWN spans before a check's first confirmed result."""

_SNAPSHOT_VERSION = 2
"""Version 2 adds ``known`` (version 1 had no unknown-until-confirmed state)."""


class Verdict(enum.StrEnum):
    """What one kept observation says, before the debounce."""

    OK = "ok"
    SLOW = "slow"
    MAINTENANCE = "maintenance"
    FAIL = "fail"


_SUCCESS = frozenset({Verdict.OK, Verdict.SLOW})

_PREFERENCE: dict[Verdict, int] = {
    Verdict.OK: 0,
    Verdict.SLOW: 1,
    Verdict.MAINTENANCE: 2,
    Verdict.FAIL: 3,
}
"""Which of two results at one instant :func:`derive_spans` keeps (lowest wins)."""


class OutOfOrderError(ValueError):
    """A result started before one already fed, or before a :meth:`close_until` bound."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DerivePolicy:
    """How one check's results become states."""

    latency_threshold: timedelta
    """An answer slower than this is DEGRADED (the service's SLA threshold)."""
    staleness: timedelta
    """How long one observation stays valid (the daemon uses 2 * interval + timeout)."""
    failures_to_open: int = 3
    """Consecutive failures that confirm DOWN."""
    successes_to_close: int = 1
    """Consecutive successes that confirm the check is up again."""

    def __post_init__(self) -> None:
        if self.failures_to_open < 1 or self.successes_to_close < 1:
            raise ValueError("failures_to_open and successes_to_close must be at least 1")
        if self.staleness <= timedelta(0):
            raise ValueError("staleness must be positive")
        if self.latency_threshold < timedelta(0):
            raise ValueError("latency_threshold must not be negative")


def classify(result: ProbeResult, policy: DerivePolicy) -> Verdict | None:
    """The verdict of one result, or ``None`` when it is the monitor's own fault."""
    outcome = result.outcome
    if outcome.ok:
        if result.duration <= policy.latency_threshold.total_seconds():
            return Verdict.OK
        return Verdict.SLOW
    if outcome.details.get("maintenance") is True:
        return Verdict.MAINTENANCE
    if outcome.error_kind is ErrorKind.INTERNAL:
        return None
    return Verdict.FAIL


@dataclass(frozen=True, slots=True)
class Observation:
    """One kept observation not yet turned into a completed span (part of a snapshot)."""

    at: datetime
    verdict: Verdict
    error: str | None = None
    """The error kind value of a FAIL."""
    end: datetime | None = None
    """End of its coverage, once known (next observation or staleness expiry)."""
    state: State | None = None
    """Its state once decided; ``None`` while a pending run may still rewrite it."""
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class MachineSnapshot:
    """Everything a :class:`CheckStateMachine` needs to resume after a restart."""

    down: bool = False
    known: bool = False
    """Whether the check has had its first confirmed result (``down`` implies it)."""
    outage_start: datetime | None = None
    outage_reason: str | None = None
    tail: tuple[Observation, ...] = ()
    current: Span | None = None
    """The span being built from final observations, not yet completed."""
    last_observation_at: datetime | None = None
    last_state: State | None = None
    """The last observation's decided state (``None`` while it is pending)."""
    closed_until: datetime | None = None

    def __post_init__(self) -> None:
        if self.down and not self.known:  # a confirmed outage is a confirmed state
            object.__setattr__(self, "known", True)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable dict; datetimes as ISO-8601 UTC."""
        return {
            "version": _SNAPSHOT_VERSION,
            "down": self.down,
            "known": self.known,
            "outage_start": _dt_out(self.outage_start),
            "outage_reason": self.outage_reason,
            "tail": [
                {
                    "at": _dt_out(o.at),
                    "verdict": o.verdict.value,
                    "error": o.error,
                    "end": _dt_out(o.end),
                    "state": None if o.state is None else o.state.value,
                    "reason": o.reason,
                }
                for o in self.tail
            ],
            "current": None
            if self.current is None
            else {
                "start": _dt_out(self.current.start),
                "end": _dt_out(self.current.end),
                "state": self.current.state.value,
                "reason": self.current.reason,
            },
            "last_observation_at": _dt_out(self.last_observation_at),
            "last_state": None if self.last_state is None else self.last_state.value,
            "closed_until": _dt_out(self.closed_until),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MachineSnapshot:
        """The inverse of :meth:`to_json`; raises ``ValueError`` on anything malformed."""
        try:
            version = data["version"]
            if version not in (1, _SNAPSHOT_VERSION):
                raise ValueError(f"unsupported snapshot version {version!r}")
            down = data["down"]
            if not isinstance(down, bool):
                raise ValueError("down must be a boolean")
            if version == 1:
                # Version 1 started every check "up": one that was observed is known.
                known = down or data["last_observation_at"] is not None
            else:
                known = data["known"]
                if not isinstance(known, bool):
                    raise ValueError("known must be a boolean")
            if down and not known:
                raise ValueError("a check cannot be down and not known")
            current_data = data["current"]
            current = (
                None
                if current_data is None
                else Span(
                    start=_dt_req(current_data["start"]),
                    end=_dt_req(current_data["end"]),
                    state=State(current_data["state"]),
                    reason=_str_in(current_data["reason"]),
                )
            )
            tail = tuple(
                Observation(
                    at=_dt_req(o["at"]),
                    verdict=Verdict(o["verdict"]),
                    error=_str_in(o["error"]),
                    end=_dt_in(o["end"]),
                    state=None if o["state"] is None else State(o["state"]),
                    reason=_str_in(o["reason"]),
                )
                for o in data["tail"]
            )
            last_state = data["last_state"]
            return cls(
                down=down,
                known=known,
                outage_start=_dt_in(data["outage_start"]),
                outage_reason=_str_in(data["outage_reason"]),
                tail=tail,
                current=current,
                last_observation_at=_dt_in(data["last_observation_at"]),
                last_state=None if last_state is None else State(last_state),
                closed_until=_dt_in(data["closed_until"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed state machine snapshot: {exc!r}") from exc


class CheckStateMachine:
    """The state of one check from one vantage, fed its results in time order."""

    __slots__ = (
        "_closed_until",
        "_current",
        "_down",
        "_known",
        "_last_at",
        "_last_state",
        "_outage_reason",
        "_outage_start",
        "_policy",
        "_tail",
    )

    def __init__(self, policy: DerivePolicy, snapshot: MachineSnapshot | None = None) -> None:
        s = snapshot if snapshot is not None else MachineSnapshot()
        self._policy = policy
        self._down = s.down
        self._known = s.known or s.down
        self._outage_start = s.outage_start
        self._outage_reason = s.outage_reason
        self._tail: list[Observation] = list(s.tail)
        self._current = s.current
        self._last_at = s.last_observation_at
        self._last_state = s.last_state
        self._closed_until = s.closed_until

    @property
    def policy(self) -> DerivePolicy:
        return self._policy

    @property
    def state(self) -> State:
        """The confirmed current state, as the last observation reads now.

        UNKNOWN before the first confirmed result. Not aged: compare
        :attr:`last_observation_at` with the staleness to tell a stale check.
        """
        if self._last_at is None:
            return State.UNKNOWN
        if self._tail and self._tail[-1].state is None:
            return self._confirmed_label()[0]
        assert self._last_state is not None
        return self._last_state

    @property
    def last_observation_at(self) -> datetime | None:
        """When the last kept (non-``internal``) observation started."""
        return self._last_at

    @property
    def down_since(self) -> datetime | None:
        """Start of the current confirmed outage (its first failing probe)."""
        return self._outage_start if self._down else None

    def feed(self, result: ProbeResult) -> list[Span]:
        """Take the next result; return the spans it completed.

        A result at the instant of the last observation is dropped as a duplicate;
        one before it, or before a :meth:`close_until` bound, raises
        :class:`OutOfOrderError`.
        """
        verdict = classify(result, self._policy)
        if verdict is None:
            return []
        at = _utc(result.started_at)
        if self._last_at is not None:
            if at == self._last_at:
                return []
            if at < self._last_at:
                raise OutOfOrderError(
                    f"result started at {at.isoformat()}, before the last observation "
                    f"at {self._last_at.isoformat()}"
                )
        if self._closed_until is not None and at < self._closed_until:
            raise OutOfOrderError(
                f"result started at {at.isoformat()}, before the close_until bound "
                f"{self._closed_until.isoformat()}"
            )
        if self._tail and self._tail[-1].end is None:
            prev = self._tail[-1]
            self._tail[-1] = replace(prev, end=min(at, prev.at + self._policy.staleness))
        error = None
        if verdict is Verdict.FAIL and result.error_kind is not None:
            error = result.error_kind.value
        self._tail.append(Observation(at=at, verdict=verdict, error=error))
        self._last_at = at
        self._decide()
        self._last_state = self._tail[-1].state
        return self._flush()

    def close_until(self, now: datetime) -> list[Span]:
        """Promise that no result started before ``now`` is still to come.

        Ends the last observation's coverage once its staleness has passed, and
        returns the spans that completes. Pass the earliest start a result not yet
        fed could have (e.g. the start of a probe still running); a later
        :meth:`feed` of an earlier result raises :class:`OutOfOrderError`.
        """
        now = _utc(now)
        if self._closed_until is None or now > self._closed_until:
            self._closed_until = now
        if self._tail and self._tail[-1].end is None:
            last = self._tail[-1]
            expiry = last.at + self._policy.staleness
            if now >= expiry:
                self._tail[-1] = replace(last, end=expiry)
        return self._flush()

    def provisional(self, *, until: datetime | None = None) -> list[Span]:
        """Everything not yet completed, as it reads if nothing else happens.

        Pending runs read as the confirmed state; the last observation covers up to
        its staleness expiry, or to ``until`` when that comes first.
        """
        staleness = self._policy.staleness
        pieces: list[Span] = [] if self._current is None else [self._current]
        for o in self._tail:
            if o.state is None:
                state, reason = self._confirmed_label()
            else:
                state, reason = o.state, o.reason
            end = o.end if o.end is not None else o.at + staleness
            pieces.append(Span(o.at, end, state, reason))
        spans = _merge(pieces)
        return spans if until is None else _clip(spans, _utc(until))

    def snapshot(self) -> MachineSnapshot:
        """Everything needed to resume exactly here (see :meth:`MachineSnapshot.to_json`)."""
        return MachineSnapshot(
            down=self._down,
            known=self._known,
            outage_start=self._outage_start,
            outage_reason=self._outage_reason,
            tail=tuple(self._tail),
            current=self._current,
            last_observation_at=self._last_at,
            last_state=self._last_state,
            closed_until=self._closed_until,
        )

    def _confirmed_label(self) -> tuple[State, str | None]:
        if self._down:
            return State.DOWN, self._outage_reason
        if not self._known:
            return State.UNKNOWN, UNCONFIRMED_REASON
        return State.UP, None

    def _settle(self, indices: Sequence[int], state: State, reason: str | None) -> None:
        for i in indices:
            self._tail[i] = replace(self._tail[i], state=state, reason=reason)

    def _decide(self) -> None:
        """Run the debounce on the observation just appended to the tail."""
        last = len(self._tail) - 1
        verdict = self._tail[last].verdict
        # The pending run (label None) is contiguous at the end of the tail, and all of
        # one kind: failures (while not down) or successes (while down or unknown).
        pending = [i for i in range(last) if self._tail[i].state is None]
        if verdict is Verdict.MAINTENANCE:
            self._settle(pending, *self._confirmed_label())
            self._settle([last], State.MAINTENANCE, MAINTENANCE_REASON)
            return
        if pending and (self._tail[pending[0]].verdict is Verdict.FAIL) != (
            verdict is Verdict.FAIL
        ):
            # The other kind of run is cancelled: it reads as the state it interrupted.
            self._settle(pending, *self._confirmed_label())
            pending = []
        run = [*pending, last]
        if verdict is Verdict.FAIL:
            if self._down:
                self._settle(run, State.DOWN, self._outage_reason)
            elif len(run) >= self._policy.failures_to_open:
                first = self._tail[run[0]]
                self._down = self._known = True
                self._outage_start = first.at
                self._outage_reason = first.error
                self._settle(run, State.DOWN, first.error)
        elif self._known and not self._down:
            self._settle_success(last)
        elif len(run) >= self._policy.successes_to_close:
            self._down = False
            self._known = True
            self._outage_start = None
            self._outage_reason = None
            for i in run:
                self._settle_success(i)

    def _settle_success(self, i: int) -> None:
        if self._tail[i].verdict is Verdict.SLOW:
            self._settle([i], State.DEGRADED, SLOW_REASON)
        else:
            self._settle([i], State.UP, None)

    def _flush(self) -> list[Span]:
        """Fold decided, bounded observations into the current span; return completed ones."""
        done: list[Span] = []
        while self._tail and self._tail[0].state is not None and self._tail[0].end is not None:
            o = self._tail.pop(0)
            assert o.state is not None and o.end is not None  # the loop condition, for mypy
            cur = self._current
            if cur is not None and _joins(cur, o.at, o.state, o.reason):
                self._current = Span(cur.start, o.end, cur.state, cur.reason)
            else:
                if cur is not None:
                    done.append(cur)
                self._current = Span(o.at, o.end, o.state, o.reason)
        cur = self._current
        if cur is not None:
            if self._tail:
                head = self._tail[0]
                completed = head.at > cur.end or (
                    head.state is not None and not _joins(cur, head.at, head.state, head.reason)
                )
            else:
                # The next observation starts at or after the close_until bound.
                completed = self._closed_until is not None and self._closed_until > cur.end
            if completed:
                done.append(cur)
                self._current = None
        return done


def derive_spans(
    results: Iterable[ProbeResult], policy: DerivePolicy, *, until: datetime | None = None
) -> list[Span]:
    """Rebuild one check's timeline (one vantage) from its stored results.

    Results may come in any order and with duplicates (see the module docstring for
    which one of several at one instant is kept). Every result is used, even past
    ``until``: a run confirmed after ``until`` still rewrites what precedes it; the
    spans are then clipped to ``until``. Pending runs at the end read as the
    confirmed state.
    """
    chosen: dict[datetime, tuple[tuple[int, str], ProbeResult]] = {}
    for result in results:
        verdict = classify(result, policy)
        if verdict is None:
            continue
        at = _utc(result.started_at)
        error = result.error_kind.value if result.error_kind is not None else ""
        key = (_PREFERENCE[verdict], error if verdict is Verdict.FAIL else "")
        kept = chosen.get(at)
        if kept is None or key < kept[0]:
            chosen[at] = (key, result)
    machine = CheckStateMachine(policy)
    spans: list[Span] = []
    for at in sorted(chosen):
        spans.extend(machine.feed(chosen[at][1]))
    spans.extend(machine.provisional())
    return spans if until is None else _clip(spans, _utc(until))


def _joins(span: Span, start: datetime, state: State, reason: str | None) -> bool:
    return span.end == start and span.state is state and span.reason == reason


def _merge(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for s in spans:
        if merged and _joins(merged[-1], s.start, s.state, s.reason):
            merged[-1] = Span(merged[-1].start, s.end, s.state, s.reason)
        else:
            merged.append(s)
    return merged


def _clip(spans: Iterable[Span], until: datetime) -> list[Span]:
    return [
        s if s.end <= until else Span(s.start, until, s.state, s.reason)
        for s in spans
        if s.start < until
    ]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()}: give a timezone-aware one")
    return value.astimezone(UTC)


def _dt_out(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _dt_in(value: object) -> datetime | None:
    return None if value is None else _dt_req(value)


def _dt_req(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 datetime, got {value!r}")
    return _utc(datetime.fromisoformat(value))


def _str_in(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"expected a string or null, got {value!r}")
