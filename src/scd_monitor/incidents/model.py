"""The values incidents compute with: signals, and the monitor's own service.

Severities, signal kinds, audiences and event kinds are words of the catalog's
``incidents:`` section too: they live in :mod:`scd_monitor.catalog.incident_kinds`.

A :class:`Signal` is one condition that detection found true of one service *now*
(an outage, a sustained degradation, an SLA at risk, a certificate about to expire …).
The lifecycle (:mod:`scd_monitor.incidents.lifecycle`) turns the signals of a service,
evaluation after evaluation, into one incident and its events. Everything here is a
plain immutable value; Spanish labels for the reports live in
:mod:`scd_monitor.incidents.labels`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from scd_monitor.catalog.incident_kinds import Severity, SignalKind

__all__ = [
    "MONITOR_PROVIDER",
    "MONITOR_SERVICE",
    "Signal",
    "primary",
]

MONITOR_PROVIDER = "scd-monitor"
"""Provider id of monitor-side incidents (the catalog reserves it for the canaries)."""
MONITOR_SERVICE = "monitor"


@dataclass(frozen=True, slots=True)
class Signal:
    """One condition true of one service at the evaluation instant."""

    provider: str
    service: str
    kind: SignalKind
    key: str
    """The condition's identity within the service (``outage``, ``cert:<check id>``,
    ``sla_burn:1h`` …): the lifecycle tracks onsets and suppression by key."""
    severity: Severity
    summary: str
    """One line in Spanish for the report's *condiciones de operación*."""
    since: datetime | None = None
    """When the condition started, when the facts say (an outage's first failing probe);
    otherwise the lifecycle remembers when it first saw it."""
    after: timedelta = timedelta(0)
    """How long the condition must last before it counts."""
    checks: tuple[str, ...] = ()
    error_kinds: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    """Small JSON values (counts, thresholds, subjects) for the report."""

    @property
    def service_key(self) -> tuple[str, str]:
        return (self.provider, self.service)


def primary(signals: Iterable[Signal]) -> Signal | None:
    """The signal that names an incident: highest severity, then kind priority."""
    return max(signals, key=lambda s: (s.severity.rank, s.kind.priority), default=None)
