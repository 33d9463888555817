"""The incidents' repository over SQLite and PostgreSQL: trackers guarded by their
revision, the evaluator lease, incident codes, and incidents with their events, notes
and reports read back as plain rows."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from scd_monitor.catalog.incident_kinds import Severity, SignalKind
from scd_monitor.errors import ConflictError
from scd_monitor.store import Store
from scd_monitor.store.incidents import IncidentRepository, NoteRow
from scd_monitor.store.tables import incident_reports

T0 = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)
KEY = ("prestador-a", "autenticacion")


@pytest.fixture
def repo(store: Store) -> IncidentRepository:
    return IncidentRepository(store)


def test_trackers_are_saved_under_their_revision(repo: IncidentRepository) -> None:
    store = repo.store
    with store.transaction("t") as conn:
        repo.save_tracker(conn, KEY, None, None, T0)  # nothing to keep, nothing stored
        assert repo.trackers(conn) == {}
        repo.save_tracker(conn, KEY, {"generation": 1, "phase": "open"}, None, T0)
    with store.transaction("t") as conn:
        assert repo.tracker(conn, KEY) == ({"generation": 1, "phase": "open"}, 1)
        repo.save_tracker(conn, KEY, {"generation": 1, "phase": "idle"}, 1, T0)
        assert repo.trackers(conn) == {KEY: ({"generation": 1, "phase": "idle"}, 2)}
    with pytest.raises(ConflictError, match="changed meanwhile"), store.transaction("t") as conn:
        repo.save_tracker(conn, KEY, {"generation": 2, "phase": "open"}, 1, T0)
    with pytest.raises(ConflictError), store.transaction("t") as conn:
        repo.save_tracker(conn, KEY, {"generation": 2, "phase": "open"}, None, T0)
    with store.transaction("t") as conn:
        repo.save_tracker(conn, KEY, None, 2, T0)
        assert repo.tracker(conn, KEY) is None


def test_the_lease_has_one_holder_until_it_expires(repo: IncidentRepository) -> None:
    ttl = timedelta(seconds=30)
    assert repo.acquire_lease("evaluator", "bogota", T0, ttl)
    assert repo.acquire_lease("evaluator", "bogota", T0 + timedelta(seconds=10), ttl)
    assert not repo.acquire_lease("evaluator", "medellin", T0 + timedelta(seconds=20), ttl)
    assert repo.acquire_lease("evaluator", "medellin", T0 + timedelta(seconds=41), ttl)
    assert not repo.acquire_lease("evaluator", "bogota", T0 + timedelta(seconds=42), ttl)


def test_codes_count_per_year(repo: IncidentRepository) -> None:
    with repo.store.transaction("t") as conn:
        assert [repo.allocate_code(conn, 2026) for _ in range(2)] == [
            "SCD-2026-000001",
            "SCD-2026-000002",
        ]
        assert repo.allocate_code(conn, 2027) == "SCD-2027-000001"


def test_an_incident_reads_back_with_its_events_notes_and_reports(
    repo: IncidentRepository,
) -> None:
    store = repo.store
    with store.transaction("t") as conn:
        incident_id = repo.insert_incident(
            conn,
            code="SCD-2026-000001",
            provider=KEY[0],
            service=KEY[1],
            generation=1,
            status="open",
            open_key=f"{KEY[0]}/{KEY[1]}",
            type=SignalKind.OUTAGE.value,
            severity=Severity.CRITICAL.value,
            kinds=[SignalKind.OUTAGE.value],
            started_at=T0,
            detected_at=T0 + timedelta(minutes=2),
            ended_at=None,
            resolved_at=None,
            context={"provider_name": "Prestador Ñandú S.A.S."},
            updated_at=T0,
        )
        event_id, seq = repo.add_event(
            conn,
            incident_id,
            kind="opened",
            reason="opened",
            at=T0,
            severity=Severity.CRITICAL,
            notify=True,
            details={"signals": []},
        )
        assert seq == 1
        assert (
            repo.add_event(
                conn,
                incident_id,
                kind="updated",
                reason="note",
                at=T0 + timedelta(minutes=5),
                severity=Severity.CRITICAL,
                notify=False,
                details={},
            )[1]
            == 2
        )
        repo.add_note(conn, incident_id, at=T0, author="Ana", text="Se escaló.")
        repo.add_report(
            conn,
            incident_id=incident_id,
            event_id=event_id,
            body='{"informe": "ñ"}\n',
            text="texto",
            html="<p>html</p>",
            schema_version=1,
            now=T0,
        )
    (row,) = repo.list_incidents(open_only=True)
    assert (row.code, row.type, row.kinds, row.severity) == (
        "SCD-2026-000001",
        SignalKind.OUTAGE,
        (SignalKind.OUTAGE,),
        Severity.CRITICAL,
    )
    assert row.context == {"provider_name": "Prestador Ñandú S.A.S."}
    assert repo.incidents_between(T0 - timedelta(days=1), T0) == []
    assert repo.incidents_between(T0, T0 + timedelta(days=1)) == [row]
    with store.transaction("t") as conn:
        assert repo.incident_of(conn, KEY, 1) == row
        assert repo.incident_by_code(conn, "SCD-2026-000001") == row
        assert repo.incident_by_code(conn, "SCD-2026-000002") is None
        events = repo.events(conn, incident_id)
        assert [(e.seq, e.kind, e.notify, e.severity) for e in events] == [
            (1, "opened", True, Severity.CRITICAL),
            (2, "updated", False, Severity.CRITICAL),
        ]
        assert repo.notes(conn, incident_id) == [NoteRow(T0, "Ana", "Se escaló.")]
        assert repo.reports(conn, incident_id) == [(1, '{"informe": "ñ"}\n')]
        assert repo.report_text(conn, incident_id) == ("texto", "<p>html</p>")
        assert repo.report_text(conn, incident_id, 2) is None
        sha = conn.execute(select(incident_reports.c.sha256)).scalar_one()
        assert sha == hashlib.sha256('{"informe": "ñ"}\n'.encode()).hexdigest()
        repo.update_incident(conn, incident_id, status="resolved", open_key=None)
    assert repo.list_incidents(open_only=True) == []
