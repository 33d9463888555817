"""The values the state tracker and the SLA engine speak: states and spans of time.

Every datetime here is timezone-aware UTC. A span is half-open ``[start, end)``.
A check's timeline is a sorted list of non-overlapping spans; time covered by no
span is UNKNOWN (no data).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta


class State(enum.StrEnum):
    """The state of a check or a service at an instant."""

    UP = "up"
    DOWN = "down"
    DEGRADED = "degraded"
    """Answers correctly, but slower than the service's latency threshold."""
    MAINTENANCE = "maintenance"
    UNKNOWN = "unknown"
    """No fresh data, or the monitor itself is at fault."""


@dataclass(frozen=True, slots=True)
class Span:
    """A state held over ``[start, end)``."""

    start: datetime
    end: datetime
    state: State
    reason: str | None = None
    """Why: an error kind (``timeout``), ``stale``, ``monitor_fault``, a maintenance reason …"""

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open period ``[start, end)``; both ends aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("period ends must be timezone-aware")
        if self.end < self.start:
            raise ValueError("period ends before it starts")

    @property
    def duration(self) -> timedelta:
        return self.end - self.start
