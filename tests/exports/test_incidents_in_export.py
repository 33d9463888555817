"""The export lists the month's incidents from the incident store, with their codes."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert

from scd_monitor.exports.incidents import incidents_of
from scd_monitor.sla.model import Period
from scd_monitor.store import Store
from scd_monitor.store.tables import incidents


def test_incidents_of_a_month(store: Store) -> None:
    def add(code: str, started: datetime, resolved: datetime | None, severity: str) -> None:
        with store.engine.begin() as conn:
            conn.execute(
                insert(incidents).values(
                    code=code,
                    provider="alfa",
                    service="autenticacion",
                    generation=int(code[-1]),
                    status="resolved" if resolved else "open",
                    type="outage",
                    severity=severity,
                    kinds=["outage"],
                    started_at=started,
                    detected_at=started,
                    ended_at=resolved,
                    resolved_at=resolved,
                    context={},
                    updated_at=started,
                )
            )

    oct1, nov1 = datetime(2026, 10, 1, 5, tzinfo=UTC), datetime(2026, 11, 1, 5, tzinfo=UTC)
    add(
        "SCD-2026-000001",
        datetime(2026, 9, 20, tzinfo=UTC),
        datetime(2026, 9, 21, tzinfo=UTC),
        "low",
    )
    add(
        "SCD-2026-000002",
        datetime(2026, 9, 30, tzinfo=UTC),
        datetime(2026, 10, 2, tzinfo=UTC),
        "high",
    )
    add("SCD-2026-000003", datetime(2026, 10, 15, tzinfo=UTC), None, "critical")
    add("SCD-2026-000004", datetime(2026, 11, 2, tzinfo=UTC), None, "medium")
    refs = incidents_of(store, Period(oct1, nov1))
    assert [(r.id, r.severity) for r in refs] == [
        ("SCD-2026-000002", "alta"),
        ("SCD-2026-000003", "crítica"),
    ]
    assert refs[1].resolved_at is None
