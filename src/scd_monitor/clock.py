"""Time, injected: every component asks a :class:`Clock` instead of the system."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Where components get the time from."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """A monotonic reading in seconds, for durations."""
        ...


class FixedClock:
    """A clock stopped at ``at`` (settable); monotonic time stands at 0. For a
    computation "as of" one instant (the SLA worker) and for tests."""

    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return 0.0


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()
