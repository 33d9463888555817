"""The incidents of a month, as the export lists them (issue 6's store → IncidentRef)."""

from __future__ import annotations

from scd_monitor.catalog.incident_kinds import Severity
from scd_monitor.exports.model import IncidentRef
from scd_monitor.sla.model import Period
from scd_monitor.store import Store
from scd_monitor.store.incidents import IncidentRepository

SEVERITY_ES = {
    Severity.CRITICAL: "crítica",
    Severity.HIGH: "alta",
    Severity.MEDIUM: "media",
    Severity.LOW: "baja",
}


def incidents_of(store: Store, period: Period) -> list[IncidentRef]:
    """Every incident open at some time during ``period``, with its report identifier."""
    rows = IncidentRepository(store).incidents_between(period.start, period.end)
    return [
        IncidentRef(
            row.code,
            row.provider,
            row.service,
            SEVERITY_ES[row.severity],
            row.started_at,
            row.resolved_at,
        )
        for row in rows
    ]
