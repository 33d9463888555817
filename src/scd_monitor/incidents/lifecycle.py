"""The incident lifecycle of one service: a pure state machine over its signals.

One :class:`TrackerState` per service, fed the service's signals at every evaluation by
:func:`step`, which returns the next state and the :class:`Transition` events (opened,
updated, resolved). No clock, no I/O: the state round-trips through JSON and is stored
by the incident service in the same transaction as the incidents it describes, so a
restart resumes every service where it stopped.

Phases::

    IDLE ──signal confirmed──► OPEN ──no sustaining signal──► RECOVERING
      ▲                        ▲  ▲                              │    │
      │                        │  └──────signal again (recurred)─┘    │ clear for
      │                        │                                      │ resolve_after
      │                        └──signal within quiet_period (reopened)┐   ▼
      └─────────────quiet_period over, next signal opens a new one── RESOLVED

Rules:

- A signal counts (*confirmed*) once it has lasted its ``after``: from its ``since``
  when the facts give one (an outage's first failing probe), otherwise from when the
  machine first saw it (kept in ``onsets`` while it stays present).
- **One incident per service**: the service's signals all go into its one open
  incident (``generation`` numbers its incidents). Its *type* is the kind of the
  strongest signal seen (severity, then kind priority); its *severity* the peak.
- **Updates** that are reported (``notify``): escalation (severity up or type changed),
  a new condition (a key not seen in this incident), a re-opening, an operator's note
  (added by the service). Not reported, only recorded: the conditions cleared
  (``cleared``), a problem back before the recovery was confirmed (``recurred``).
- **Damping**: an incident is resolved only after its conditions stayed clear for
  ``resolve_after``; a problem back within ``quiet_period`` after the resolution
  re-opens the same incident.
- **No data is no news**: while a service cannot be observed (no fresh data, a monitor
  fault), its absent signals are not read as cleared (``hold``).
- **SLA echo**: an SLA-at-risk signal keeps an incident open only if the incident never
  had another kind; signals present when an incident is resolved (and, after a manual
  resolution, every signal present) are *suppressed* until they clear, so they cannot
  re-open or open anything on their own.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from scd_monitor.catalog.incident_kinds import EventKind, Severity, SignalKind
from scd_monitor.incidents.model import Signal, primary

__all__ = ["Phase", "TrackerState", "Transition", "resolve", "step"]


class Phase(enum.StrEnum):
    IDLE = "idle"
    OPEN = "open"
    RECOVERING = "recovering"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class TrackerState:
    """Everything the lifecycle remembers about one service."""

    generation: int = 0
    """How many incidents this service has had; the current (or last) one's number."""
    phase: Phase = Phase.IDLE
    started_at: datetime | None = None
    detected_at: datetime | None = None
    cleared_at: datetime | None = None
    resolved_at: datetime | None = None
    severity: Severity | None = None
    kind: SignalKind | None = None
    kinds: frozenset[SignalKind] = frozenset()
    keys: frozenset[str] = frozenset()
    """Condition keys seen in the current (or last) incident."""
    onsets: Mapping[str, datetime] = field(default_factory=dict)
    """Key → since when it has been present without interruption."""
    suppressed: frozenset[str] = frozenset()
    present: frozenset[str] = frozenset()
    """Keys present (not suppressed) at the last step."""

    @property
    def is_open(self) -> bool:
        return self.phase in (Phase.OPEN, Phase.RECOVERING)

    @property
    def is_blank(self) -> bool:
        """Nothing worth storing: idle, no pending onset, nothing suppressed."""
        return (
            self.phase is Phase.IDLE
            and not self.onsets
            and not self.suppressed
            and not self.present
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "phase": self.phase.value,
            "started_at": _t(self.started_at),
            "detected_at": _t(self.detected_at),
            "cleared_at": _t(self.cleared_at),
            "resolved_at": _t(self.resolved_at),
            "severity": self.severity.value if self.severity else None,
            "kind": self.kind.value if self.kind else None,
            "kinds": sorted(k.value for k in self.kinds),
            "keys": sorted(self.keys),
            "onsets": {k: _t(v) for k, v in sorted(self.onsets.items())},
            "suppressed": sorted(self.suppressed),
            "present": sorted(self.present),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrackerState:
        return cls(
            generation=int(data["generation"]),
            phase=Phase(data["phase"]),
            started_at=_dt(data.get("started_at")),
            detected_at=_dt(data.get("detected_at")),
            cleared_at=_dt(data.get("cleared_at")),
            resolved_at=_dt(data.get("resolved_at")),
            severity=Severity(data["severity"]) if data.get("severity") else None,
            kind=SignalKind(data["kind"]) if data.get("kind") else None,
            kinds=frozenset(SignalKind(k) for k in data.get("kinds", ())),
            keys=frozenset(data.get("keys", ())),
            onsets={k: _required(v) for k, v in data.get("onsets", {}).items()},
            suppressed=frozenset(data.get("suppressed", ())),
            present=frozenset(data.get("present", ())),
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """One lifecycle event of one incident (``generation``) of one service."""

    kind: EventKind
    reason: str
    """``opened``; ``escalated``, ``new_condition``, ``reopened``, ``recurred``,
    ``cleared`` (updates); ``resolved`` or ``manual`` (resolutions)."""
    at: datetime
    generation: int
    notify: bool
    phase: Phase
    """The incident's phase right after this event."""
    severity: Severity
    incident_kind: SignalKind
    signals: tuple[Signal, ...] = ()
    """The confirmed signals at this instant (empty when the conditions cleared)."""


def step(
    state: TrackerState,
    signals: Sequence[Signal],
    now: datetime,
    *,
    resolve_after: timedelta,
    quiet_period: timedelta,
    hold: bool = False,
) -> tuple[TrackerState, list[Transition]]:
    """Feed the service's signals at ``now``; return the next state and its events.

    ``hold``: nothing is known about the service now (no fresh data, a monitor fault):
    absent signals are not taken as cleared — onsets and suppressions are kept and an
    open incident neither starts recovering nor is resolved; signals that are present
    still count.
    """
    present_all = {s.key for s in signals}
    suppressed = state.suppressed if hold else state.suppressed & present_all
    onsets: dict[str, datetime] = dict(state.onsets) if hold else {}
    for s in signals:
        first = state.onsets.get(s.key, now)
        if s.since is not None:
            first = min(first, s.since)
        onsets[s.key] = min(first, onsets.get(s.key, first))
    live = [s for s in signals if s.key not in suppressed]
    confirmed = [s for s in live if now - onsets[s.key] >= s.after]
    st = replace(
        state,
        onsets=onsets,
        suppressed=frozenset(suppressed),
        present=state.present | {s.key for s in live} if hold else frozenset(s.key for s in live),
    )
    events: list[Transition] = []

    quiet_over = st.resolved_at is not None and now - st.resolved_at > quiet_period
    if st.phase is Phase.RESOLVED and quiet_over:
        st = replace(st, phase=Phase.IDLE)

    if st.phase is Phase.IDLE:
        if not confirmed:
            return st, events
        top = primary(confirmed)
        assert top is not None
        st = replace(
            st,
            generation=st.generation + 1,
            phase=Phase.OPEN,
            started_at=min(onsets[s.key] for s in confirmed),
            detected_at=now,
            cleared_at=None,
            resolved_at=None,
            severity=top.severity,
            kind=top.kind,
            kinds=frozenset(s.kind for s in confirmed),
            keys=frozenset(s.key for s in confirmed),
        )
        events.append(_event(st, "opened", "opened", now, confirmed, notify=True))
        return st, events

    if st.phase is Phase.RESOLVED:
        if not confirmed:
            return st, events
        st, _escalated, _new = _merge(st, confirmed)
        st = replace(st, phase=Phase.OPEN, cleared_at=None, resolved_at=None)
        events.append(_event(st, "updated", "reopened", now, confirmed, notify=True))
        return st, events

    # OPEN or RECOVERING
    st, escalated, new = _merge(st, confirmed)
    only_sla = all(k is SignalKind.SLA_AT_RISK for k in st.kinds)
    sustaining = [s for s in confirmed if s.kind.sustains or only_sla]
    if escalated or new:
        reason = "escalated" if escalated else "new_condition"
        events.append(_event(st, "updated", reason, now, confirmed, notify=True))
    if hold:
        return st, events
    if sustaining:
        if st.phase is Phase.RECOVERING:
            st = replace(st, phase=Phase.OPEN, cleared_at=None)
            if not (escalated or new):
                events.append(_event(st, "updated", "recurred", now, confirmed, notify=False))
        return st, events
    if st.phase is Phase.OPEN:
        st = replace(st, phase=Phase.RECOVERING, cleared_at=now)
        if resolve_after > timedelta(0):
            events.append(_event(st, "updated", "cleared", now, confirmed, notify=False))
    assert st.cleared_at is not None
    if now - st.cleared_at >= resolve_after:
        st = replace(
            st,
            phase=Phase.RESOLVED,
            resolved_at=now,
            suppressed=st.suppressed | {s.key for s in live},
        )
        events.append(_event(st, "resolved", "resolved", now, (), notify=True))
    return st, events


def resolve(state: TrackerState, now: datetime) -> tuple[TrackerState, Transition | None]:
    """An operator resolves the service's open incident: the conditions present now are
    suppressed until they clear. ``None`` (and the state unchanged) if none is open."""
    if not state.is_open:
        return state, None
    st = replace(
        state,
        phase=Phase.RESOLVED,
        cleared_at=state.cleared_at or now,
        resolved_at=now,
        suppressed=state.suppressed | state.present,
    )
    return st, _event(st, "resolved", "manual", now, (), notify=True)


def _merge(st: TrackerState, confirmed: Sequence[Signal]) -> tuple[TrackerState, bool, bool]:
    """Fold confirmed signals into the incident: (state, escalated, new condition)."""
    if not confirmed:
        return st, False, False
    top = primary(confirmed)
    assert top is not None and st.severity is not None and st.kind is not None
    escalated = False
    severity, kind = st.severity, st.kind
    if (top.severity.rank, top.kind.priority) > (severity.rank, kind.priority):
        escalated = top.severity.rank > severity.rank or top.kind is not kind
        severity, kind = top.severity, top.kind
    keys = {s.key for s in confirmed}
    new = not keys <= st.keys
    return (
        replace(
            st,
            severity=severity,
            kind=kind,
            kinds=st.kinds | {s.kind for s in confirmed},
            keys=st.keys | keys,
        ),
        escalated,
        new,
    )


def _event(
    st: TrackerState,
    kind: EventKind,
    reason: str,
    now: datetime,
    signals: Sequence[Signal],
    *,
    notify: bool,
) -> Transition:
    assert st.severity is not None and st.kind is not None
    return Transition(
        kind=kind,
        reason=reason,
        at=now,
        generation=st.generation,
        notify=notify,
        phase=st.phase,
        severity=st.severity,
        incident_kind=st.kind,
        signals=tuple(signals),
    )


def _t(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: object) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _required(value: object) -> datetime:
    return datetime.fromisoformat(str(value))
