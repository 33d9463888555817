"""The words the catalog's ``incidents:`` section speaks: severities, signal kinds,
audiences and event kinds.

They are plain values the catalog validates (``min_severity: high``, ``types: [outage]``,
``audience: authority``, ``events: [opened]``) and the incidents package computes with
(:mod:`scd_monitor.incidents.model`); they live here, below both, so that the catalog
never imports the incidents package.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Literal

__all__ = [
    "AUDIENCES",
    "EVENT_KINDS",
    "Audience",
    "EventKind",
    "Severity",
    "SignalKind",
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
    OIDC_KEY_REMOVED = "oidc_key_removed"
    """An OIDC provider removed a signing key from its JWKS while a token it signed (the
    monitor's last one) was still valid: relying parties holding such tokens fail."""

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
    SignalKind.OUTAGE: 8,
    SignalKind.CERT_EXPIRED: 7,
    SignalKind.OIDC_KEY_REMOVED: 6,
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
