"""The values incidents speak: severities, signal kinds, signals, audiences, event kinds.

A :class:`Signal` is one condition that detection found true of one service *now*
(an outage, a sustained degradation, an SLA at risk, a certificate about to expire …).
The lifecycle (:mod:`scd_monitor.incidents.lifecycle`) turns the signals of a service,
evaluation after evaluation, into one incident and its events. Everything here is a
plain immutable value; Spanish labels for the reports live in
:mod:`scd_monitor.incidents.labels`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

__all__ = [
    "AUDIENCES",
    "EVENT_KINDS",
    "MONITOR_PROVIDER",
    "MONITOR_SERVICE",
    "Audience",
    "EventKind",
    "Severity",
    "Signal",
    "SignalKind",
    "primary",
]


class Severity(enum.StrEnum):
    """How bad an incident is; ordered (``LOW < MEDIUM < HIGH < CRITICAL``)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    @classmethod
    def highest(cls, values: Iterable[Severity]) -> Severity | None:
        return max(values, key=lambda s: s.rank, default=None)


_SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class SignalKind(enum.StrEnum):
    """What kind of condition a signal (and an incident, by its main signal) is."""

    OUTAGE = "outage"
    """The service is confirmed down (by its rule, from the state tracker)."""
    DEGRADATION = "degradation"
    """The service answers, but slower than its latency threshold (or a non-critical
    check is down) for longer than the rule's ``after``."""
    SLA_AT_RISK = "sla_at_risk"
    """A burn rate over its threshold, or month-to-date availability below the target."""
    CERT_EXPIRING = "cert_expiring"
    CERT_EXPIRED = "cert_expired"
    DIRECTORY_ANOMALY = "directory_anomaly"
    """X-Road: subsystems or services vanished, global configuration expiring, expired
    or not refreshed."""
    MONITOR_FAULT = "monitor_fault"
    """The monitor itself is at fault (canaries down, mass failure): operations only."""

    @property
    def priority(self) -> int:
        """Tie-break between kinds of equal severity for an incident's type."""
        return _KIND_PRIORITY[self]

    @property
    def sustains(self) -> bool:
        """Whether the condition alone keeps an incident of other kinds open.

        An SLA at risk does not: burn rates stay high for hours after an outage ends,
        and that echo must neither keep the outage's incident open nor open another.
        """
        return self is not SignalKind.SLA_AT_RISK


_KIND_PRIORITY = {
    SignalKind.OUTAGE: 7,
    SignalKind.CERT_EXPIRED: 6,
    SignalKind.DIRECTORY_ANOMALY: 5,
    SignalKind.DEGRADATION: 4,
    SignalKind.SLA_AT_RISK: 3,
    SignalKind.CERT_EXPIRING: 2,
    SignalKind.MONITOR_FAULT: 1,
}

Audience = Literal["authority", "provider", "operations"]
AUDIENCES: tuple[Audience, ...] = ("authority", "provider", "operations")

EventKind = Literal["opened", "updated", "resolved"]
EVENT_KINDS: tuple[EventKind, ...] = ("opened", "updated", "resolved")

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
