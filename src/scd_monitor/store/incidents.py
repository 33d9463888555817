"""Incidents: the trackers, the evaluator lease, the incident codes, the incidents with
their events, notes and reports, and the probe results and directory events quoted in
them.

The rows are plain data: the incidents package (:mod:`scd_monitor.incidents`) turns them
into its lifecycle states and report facts, and passes plain values (a tracker's JSON
state, a report's rendered text) back. Most methods take the
:class:`~sqlalchemy.Connection` of a transaction the caller opened with
:meth:`Store.transaction <scd_monitor.store.Store.transaction>`, so that one evaluation
(trackers, incidents, events, reports and their outbox deliveries, see
:mod:`scd_monitor.store.outbox`) is stored all or nothing; that is also where database
errors become :class:`~scd_monitor.errors.StoreError`. A lost optimistic-concurrency
race (another process changed a tracker since it was read, or took the same unique
key) is a :class:`~scd_monitor.errors.ConflictError`, and the transaction is rolled
back whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from scd_monitor.catalog.incident_kinds import Severity, SignalKind
from scd_monitor.errors import ConflictError
from scd_monitor.store.engine import Store
from scd_monitor.store.tables import (
    directory_events,
    incident_events,
    incident_leases,
    incident_notes,
    incident_reports,
    incident_sequences,
    incident_trackers,
    incidents,
    probe_results,
)
from scd_monitor.xroad.directory import DirectoryEvent

__all__ = [
    "EventRow",
    "EvidenceRow",
    "IncidentRepository",
    "IncidentRow",
    "NoteRow",
    "ServiceKey",
]

ServiceKey = tuple[str, str]
"""(provider, service)."""


@dataclass(frozen=True, slots=True)
class IncidentRow:
    id: int
    code: str
    provider: str
    service: str
    generation: int
    status: str
    """``open``, ``recovering`` or ``resolved``."""
    type: SignalKind
    severity: Severity
    kinds: tuple[SignalKind, ...]
    started_at: datetime
    detected_at: datetime
    ended_at: datetime | None
    resolved_at: datetime | None
    context: Mapping[str, Any]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class EventRow:
    seq: int
    """The event's number in its incident, from 1."""
    kind: str
    reason: str
    at: datetime
    severity: Severity
    notify: bool
    """Whether the event was reported (a report and its deliveries were made)."""
    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NoteRow:
    """An action an operator recorded on an incident."""

    at: datetime
    author: str | None
    text: str


@dataclass(frozen=True, slots=True)
class EvidenceRow:
    """One failing probe result, as stored (not redacted)."""

    check_id: str
    vantage: str
    started_at: datetime
    duration_seconds: float
    error_kind: str | None
    message: str | None
    status_code: int | None
    details: Mapping[str, Any]


def _incident(row: Any) -> IncidentRow:
    m = row._mapping
    return IncidentRow(
        id=int(m["id"]),
        code=m["code"],
        provider=m["provider"],
        service=m["service"],
        generation=int(m["generation"]),
        status=m["status"],
        type=SignalKind(m["type"]),
        severity=Severity(m["severity"]),
        kinds=tuple(SignalKind(k) for k in m["kinds"]),
        started_at=m["started_at"],
        detected_at=m["detected_at"],
        ended_at=m["ended_at"],
        resolved_at=m["resolved_at"],
        context=dict(m["context"] or {}),
        updated_at=m["updated_at"],
    )


class IncidentRepository:
    """Reads and writes the incidents' tables of one :class:`Store` (the outbox's
    deliveries are :class:`~scd_monitor.store.outbox.OutboxRepository`'s)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- the evaluator lease ------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take or renew the lease ``name`` until ``now + ttl``; False if another holds it."""
        expires = now + ttl
        try:
            with self.store.transaction(f"taking the lease {name!r}") as conn:
                taken = conn.execute(
                    update(incident_leases)
                    .where(
                        incident_leases.c.name == name,
                        or_(incident_leases.c.holder == holder, incident_leases.c.expires_at < now),
                    )
                    .values(holder=holder, expires_at=expires)
                ).rowcount
                if taken:
                    return True
                exists = conn.execute(
                    select(incident_leases.c.name).where(incident_leases.c.name == name)
                ).first()
                if exists is not None:
                    return False
                conn.execute(
                    insert(incident_leases).values(name=name, holder=holder, expires_at=expires)
                )
                return True
        except ConflictError:  # another process inserted it meanwhile
            return False

    # -- trackers -----------------------------------------------------------------------

    def trackers(self, conn: Connection) -> dict[ServiceKey, tuple[dict[str, Any], int]]:
        """Every stored tracker: its JSON state and its revision."""
        return {
            (row.provider, row.service): (dict(row.state), int(row.revision))
            for row in conn.execute(select(incident_trackers))
        }

    def tracker(self, conn: Connection, key: ServiceKey) -> tuple[dict[str, Any], int] | None:
        """The JSON state and the revision of one service's tracker, if stored."""
        row = conn.execute(
            select(incident_trackers).where(
                incident_trackers.c.provider == key[0], incident_trackers.c.service == key[1]
            )
        ).first()
        return None if row is None else (dict(row.state), int(row.revision))

    def save_tracker(
        self,
        conn: Connection,
        key: ServiceKey,
        state: Mapping[str, Any] | None,
        revision: int | None,
        now: datetime,
    ) -> None:
        """Write the tracker's JSON ``state`` if it is still at ``revision`` (None: it
        must not exist); a ``state`` of None deletes the row (or writes nothing when
        there is none). :class:`ConflictError` otherwise."""
        where = and_(incident_trackers.c.provider == key[0], incident_trackers.c.service == key[1])
        if revision is None:
            if state is None:
                return
            conn.execute(
                insert(incident_trackers).values(
                    provider=key[0],
                    service=key[1],
                    state=dict(state),
                    revision=1,
                    updated_at=now,
                )
            )
            return
        guarded = and_(where, incident_trackers.c.revision == revision)
        if state is None:
            n = conn.execute(incident_trackers.delete().where(guarded)).rowcount
        else:
            n = conn.execute(
                update(incident_trackers)
                .where(guarded)
                .values(state=dict(state), revision=revision + 1, updated_at=now)
            ).rowcount
        if n != 1:
            raise ConflictError(f"the incident tracker of {key[0]}/{key[1]} changed meanwhile")

    # -- incidents ----------------------------------------------------------------------

    def allocate_code(self, conn: Connection, year: int) -> str:
        """The next ``SCD-YYYY-NNNNNN`` of ``year``, in the caller's transaction."""
        n = conn.execute(
            update(incident_sequences)
            .where(incident_sequences.c.year == year)
            .values(last=incident_sequences.c.last + 1)
        ).rowcount
        if n:
            value = int(
                conn.execute(
                    select(incident_sequences.c.last).where(incident_sequences.c.year == year)
                ).scalar_one()
            )
        else:
            conn.execute(insert(incident_sequences).values(year=year, last=1))
            value = 1
        return f"SCD-{year:04d}-{value:06d}"

    def insert_incident(self, conn: Connection, **values: Any) -> int:
        key = conn.execute(insert(incidents).values(**values)).inserted_primary_key
        assert key is not None
        return int(key[0])

    def update_incident(self, conn: Connection, incident_id: int, **values: Any) -> None:
        conn.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))

    def incident_of(self, conn: Connection, key: ServiceKey, generation: int) -> IncidentRow | None:
        row = conn.execute(
            select(incidents).where(
                incidents.c.provider == key[0],
                incidents.c.service == key[1],
                incidents.c.generation == generation,
            )
        ).first()
        return None if row is None else _incident(row)

    def incident_by_code(self, conn: Connection, code: str) -> IncidentRow | None:
        row = conn.execute(select(incidents).where(incidents.c.code == code)).first()
        return None if row is None else _incident(row)

    def add_event(
        self,
        conn: Connection,
        incident_id: int,
        *,
        kind: str,
        reason: str,
        at: datetime,
        severity: Severity,
        notify: bool,
        details: Mapping[str, Any],
    ) -> tuple[int, int]:
        """Append an event; return (event id, its sequence number in the incident)."""
        last = conn.execute(
            select(func.max(incident_events.c.seq)).where(
                incident_events.c.incident_id == incident_id
            )
        ).scalar()
        seq = int(last or 0) + 1
        key = conn.execute(
            insert(incident_events).values(
                incident_id=incident_id,
                seq=seq,
                kind=kind,
                reason=reason,
                at=at,
                severity=severity.value,
                notify=notify,
                details=dict(details),
            )
        ).inserted_primary_key
        assert key is not None
        return int(key[0]), seq

    def add_note(
        self, conn: Connection, incident_id: int, *, at: datetime, author: str | None, text: str
    ) -> None:
        conn.execute(
            insert(incident_notes).values(incident_id=incident_id, at=at, author=author, text=text)
        )

    def notes(self, conn: Connection, incident_id: int) -> list[NoteRow]:
        rows = conn.execute(
            select(incident_notes)
            .where(incident_notes.c.incident_id == incident_id)
            .order_by(incident_notes.c.at, incident_notes.c.id)
        )
        return [NoteRow(r.at, r.author, r.text) for r in rows]

    def evidence(
        self, conn: Connection, check_ids: Iterable[str], *, per_check: int, checks: int = 10
    ) -> list[EvidenceRow]:
        """The last ``per_check`` failing results of (at most ``checks``) checks, newest
        first, as stored: the caller redacts them before quoting them."""
        out: list[EvidenceRow] = []
        if per_check <= 0:
            return out
        for check_id in sorted(set(check_ids))[:checks]:
            rows = conn.execute(
                select(probe_results)
                .where(probe_results.c.check_id == check_id, probe_results.c.ok.is_(False))
                .order_by(probe_results.c.started_at.desc(), probe_results.c.id.desc())
                .limit(per_check)
            )
            for r in rows:
                out.append(
                    EvidenceRow(
                        check_id=r.check_id,
                        vantage=r.vantage,
                        started_at=r.started_at,
                        duration_seconds=float(r.duration_seconds),
                        error_kind=r.error_kind,
                        message=r.message,
                        status_code=r.status_code,
                        details=dict(r.details or {}),
                    )
                )
        out.sort(key=lambda e: e.started_at, reverse=True)
        return out

    def add_report(
        self,
        conn: Connection,
        *,
        incident_id: int,
        event_id: int,
        body: str,
        text: str,
        html: str,
        schema_version: int,
        now: datetime,
    ) -> int:
        """Store a report: its JSON ``body`` (with its SHA-256) and its renderings."""
        key = conn.execute(
            insert(incident_reports).values(
                incident_id=incident_id,
                event_id=event_id,
                created_at=now,
                schema_version=schema_version,
                body=body,
                text=text,
                html=html,
                sha256=hashlib.sha256(body.encode("utf-8")).hexdigest(),
            )
        ).inserted_primary_key
        assert key is not None
        return int(key[0])

    def directory_events(self, since: datetime) -> list[DirectoryEvent]:
        """The directory events since ``since``, in time order (in their own transaction)."""
        with self.store.transaction("reading directory events") as conn:
            rows = conn.execute(
                select(directory_events)
                .where(directory_events.c.at >= since)
                .order_by(directory_events.c.at, directory_events.c.id)
            ).all()
        return [
            DirectoryEvent(r.at, r.source, r.kind, r.change, r.subject, r.details or {}, r.id)
            for r in rows
        ]

    # -- read models ----------------------------------------------------------------------

    def list_incidents(self, *, open_only: bool, limit: int = 100) -> list[IncidentRow]:
        query = select(incidents).order_by(incidents.c.detected_at.desc(), incidents.c.id.desc())
        if open_only:
            query = query.where(incidents.c.status != "resolved")
        with self.store.transaction("listing incidents") as conn:
            return [_incident(r) for r in conn.execute(query.limit(limit))]

    def incidents_between(self, start: datetime, end: datetime) -> list[IncidentRow]:
        """Incidents open at some time in ``[start, end)``, oldest first."""
        query = (
            select(incidents)
            .where(incidents.c.started_at < end)
            .where((incidents.c.resolved_at.is_(None)) | (incidents.c.resolved_at >= start))
            .order_by(incidents.c.started_at, incidents.c.id)
        )
        with self.store.transaction("listing the incidents of a period") as conn:
            return [_incident(r) for r in conn.execute(query)]

    def events(self, conn: Connection, incident_id: int) -> list[EventRow]:
        rows = conn.execute(
            select(incident_events)
            .where(incident_events.c.incident_id == incident_id)
            .order_by(incident_events.c.seq)
        )
        return [
            EventRow(
                seq=r.seq,
                kind=r.kind,
                reason=r.reason,
                at=r.at,
                severity=Severity(r.severity),
                notify=bool(r.notify),
                details=r.details,
            )
            for r in rows
        ]

    def reports(self, conn: Connection, incident_id: int) -> list[tuple[int, str]]:
        """(event seq, JSON body) of the incident's reports, in order."""
        rows = conn.execute(
            select(incident_events.c.seq, incident_reports.c.body)
            .select_from(
                incident_reports.join(
                    incident_events, incident_reports.c.event_id == incident_events.c.id
                )
            )
            .where(incident_reports.c.incident_id == incident_id)
            .order_by(incident_events.c.seq)
        )
        return [(int(r.seq), r.body) for r in rows]

    def report_text(
        self, conn: Connection, incident_id: int, seq: int | None = None
    ) -> tuple[str, str] | None:
        """(text, html) of the incident's report ``seq`` (default: the last)."""
        query = (
            select(incident_reports.c.text, incident_reports.c.html)
            .select_from(
                incident_reports.join(
                    incident_events, incident_reports.c.event_id == incident_events.c.id
                )
            )
            .where(incident_reports.c.incident_id == incident_id)
        )
        if seq is not None:
            query = query.where(incident_events.c.seq == seq)
        row = conn.execute(query.order_by(incident_events.c.seq.desc()).limit(1)).first()
        return None if row is None else (row.text, row.html)
