"""Immutable views the daemon publishes for readers on other threads (metrics, incidents).

The runtime builds them (the results pipeline, the state tracker, directory discovery);
readers only import these types, never the runtime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from scd_monitor.catalog.models import ResolvedCheck
from scd_monitor.probes.base import ProbeResult
from scd_monitor.sla.model import State
from scd_monitor.xroad.directory import Directory


@dataclass(frozen=True, slots=True)
class CheckCounters:
    """Totals of one check since the daemon started."""

    runs: int = 0
    failures_by_kind: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The monitor's state at one instant; never mutated after creation."""

    checks: Sequence[ResolvedCheck]
    latest: Mapping[str, ProbeResult]
    counters: Mapping[str, CheckCounters]
    vantage: str


@dataclass(frozen=True, slots=True)
class CheckStatus:
    """The current confirmed state of one check from this vantage."""

    state: State
    since: datetime | None
    last_observation_at: datetime | None


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """What the metrics show about one source, at one instant."""

    source: str
    instance: str
    directory: Directory | None
    last_success: datetime | None
    failures_total: int
    changes_total: Mapping[tuple[str, str], int]
    """``(kind, change)`` → events recorded since the daemon started."""
    last_error: str | None
    last_duration_seconds: float | None
