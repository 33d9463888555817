"""The incidents' repository: trackers, incidents, events, notes, reports and the outbox.

Blocking, like :class:`~scd_monitor.store.Store` (call it from a thread). Database
errors become :class:`StoreError`; a lost optimistic-concurrency race (another process
changed a tracker since it was read) is a :class:`ConflictError`, and the transaction
is rolled back whole.

The outbox follows healthchecks' flips and Gatus' alerts: a delivery row is written in
the same transaction as its report; it is *claimed* by a conditional ``UPDATE`` that
only succeeds while it is due (``pending`` and ``next_attempt_at <= now``, or
``in_flight`` with an expired lease), which sets a fresh ``claim_token`` and a lease
(``claimed_until``); it is *settled* by an ``UPDATE`` guarded by that token, so a
claimer whose lease ran out (and whose delivery was claimed again) cannot overwrite
the newer claim. Nothing is ever deleted: a permanent failure stays ``failed``, shown
by ``scd-monitor deliveries --failed``, until retried.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from scd_monitor.catalog.incident_kinds import Severity, SignalKind
from scd_monitor.errors import ConflictError, NotFoundError, StoreError
from scd_monitor.incidents.lifecycle import TrackerState
from scd_monitor.incidents.report import (
    EventFacts,
    Evidence,
    IncidentFacts,
    NoteFacts,
    RenderedReport,
    redact_details,
    redact_evidence,
    subject_of,
)
from scd_monitor.sinks.base import DeliveryPayload
from scd_monitor.store import Store
from scd_monitor.store.tables import (
    deliveries,
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

__all__ = [
    "ClaimedDelivery",
    "ConflictError",
    "DeliveryRow",
    "IncidentRow",
    "IncidentStore",
    "NotFoundError",
    "OutboxStats",
]

ServiceKey = tuple[str, str]
ERROR_MAX = 2000


@dataclass(frozen=True, slots=True)
class IncidentRow:
    id: int
    code: str
    provider: str
    service: str
    generation: int
    status: str
    type: SignalKind
    severity: Severity
    kinds: tuple[SignalKind, ...]
    started_at: datetime
    detected_at: datetime
    ended_at: datetime | None
    resolved_at: datetime | None
    context: Mapping[str, Any]
    updated_at: datetime

    def facts(self) -> IncidentFacts:
        return IncidentFacts(
            code=self.code,
            provider=self.provider,
            service=self.service,
            status=self.status,
            type=self.type,
            severity=self.severity,
            kinds=self.kinds,
            started_at=self.started_at,
            detected_at=self.detected_at,
            ended_at=self.ended_at,
            resolved_at=self.resolved_at,
            context=self.context,
        )


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    incident: str
    report_id: str
    event: str
    sink: str
    audience: str
    recipient: str | None
    idempotency_key: str
    status: str
    attempts: int
    next_attempt_at: datetime
    claimed_until: datetime | None
    last_error: str | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    id: int
    token: str
    sink: str
    payload: DeliveryPayload


@dataclass(frozen=True, slots=True)
class OutboxStats:
    by_sink_status: Mapping[tuple[str, str], int]
    backlog: int
    """Deliveries not settled yet (pending or in flight)."""
    oldest_pending_age_seconds: float | None
    open_by_severity: Mapping[str, int]


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


_DELIVERY_COLUMNS = (
    deliveries,
    incidents.c.code,
    incident_events.c.seq,
    incident_events.c.kind.label("event_kind"),
)


def _delivery(row: Any) -> DeliveryRow:
    m = row._mapping
    return DeliveryRow(
        id=int(m["id"]),
        incident=m["code"],
        report_id=f"{m['code']}.{m['seq']}",
        event=m["event_kind"],
        sink=m["sink"],
        audience=m["audience"],
        recipient=m["recipient"],
        idempotency_key=m["idempotency_key"],
        status=m["status"],
        attempts=int(m["attempts"]),
        next_attempt_at=m["next_attempt_at"],
        claimed_until=m["claimed_until"],
        last_error=m["last_error"],
        last_attempt_at=m["last_attempt_at"],
        delivered_at=m["delivered_at"],
        created_at=m["created_at"],
    )


def _delivery_query() -> Any:
    return select(*_DELIVERY_COLUMNS).select_from(
        deliveries.join(incident_reports, deliveries.c.report_id == incident_reports.c.id)
        .join(incident_events, incident_reports.c.event_id == incident_events.c.id)
        .join(incidents, deliveries.c.incident_id == incidents.c.id)
    )


class IncidentStore:
    """Reads and writes the incidents' tables of one :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @contextmanager
    def transaction(self, what: str) -> Iterator[Connection]:
        try:
            with self.store.engine.begin() as conn:
                yield conn
        except StoreError:
            raise
        except IntegrityError as exc:
            raise ConflictError(
                f"{what}: lost a race with another process ({_first(exc)})"
            ) from exc
        except SQLAlchemyError as exc:
            raise StoreError(
                f"{what} failed on {self.store.url_for_humans}: {_first(exc)}"
            ) from exc

    # -- the evaluator lease ------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take or renew the lease ``name`` until ``now + ttl``; False if another holds it."""
        expires = now + ttl
        try:
            with self.store.engine.begin() as conn:
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
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise StoreError(f"taking the lease {name!r} failed: {_first(exc)}") from exc

    # -- trackers -----------------------------------------------------------------------

    def trackers(self, conn: Connection) -> dict[ServiceKey, tuple[TrackerState, int]]:
        out = {}
        for row in conn.execute(select(incident_trackers)):
            out[(row.provider, row.service)] = (
                TrackerState.from_json(row.state),
                int(row.revision),
            )
        return out

    def tracker(self, conn: Connection, key: ServiceKey) -> tuple[TrackerState, int] | None:
        row = conn.execute(
            select(incident_trackers).where(
                incident_trackers.c.provider == key[0], incident_trackers.c.service == key[1]
            )
        ).first()
        return None if row is None else (TrackerState.from_json(row.state), int(row.revision))

    def save_tracker(
        self,
        conn: Connection,
        key: ServiceKey,
        state: TrackerState,
        revision: int | None,
        now: datetime,
    ) -> None:
        """Write the tracker if it is still at ``revision`` (None: it must not exist);
        a blank state deletes the row. :class:`ConflictError` otherwise."""
        where = and_(incident_trackers.c.provider == key[0], incident_trackers.c.service == key[1])
        if revision is None:
            if state.is_blank:
                return
            conn.execute(
                insert(incident_trackers).values(
                    provider=key[0],
                    service=key[1],
                    state=state.to_json(),
                    revision=1,
                    updated_at=now,
                )
            )
            return
        guarded = and_(where, incident_trackers.c.revision == revision)
        if state.is_blank and state.generation == 0:
            n = conn.execute(incident_trackers.delete().where(guarded)).rowcount
        else:
            n = conn.execute(
                update(incident_trackers)
                .where(guarded)
                .values(state=state.to_json(), revision=revision + 1, updated_at=now)
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

    def notes(self, conn: Connection, incident_id: int) -> list[NoteFacts]:
        rows = conn.execute(
            select(incident_notes)
            .where(incident_notes.c.incident_id == incident_id)
            .order_by(incident_notes.c.at, incident_notes.c.id)
        )
        return [NoteFacts(r.at, r.author, r.text) for r in rows]

    def evidence(
        self, conn: Connection, check_ids: Iterable[str], *, per_check: int, checks: int = 10
    ) -> list[Evidence]:
        """The last ``per_check`` failing results of (at most ``checks``) checks, redacted."""
        out: list[Evidence] = []
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
                    Evidence(
                        check_id=r.check_id,
                        vantage=r.vantage,
                        started_at=r.started_at,
                        duration_seconds=float(r.duration_seconds),
                        error_kind=r.error_kind,
                        message=redact_evidence(r.message),
                        status_code=r.status_code,
                        details=redact_details(r.details or {}),
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
        rendered: RenderedReport,
        schema_version: int,
        now: datetime,
    ) -> int:
        body = rendered.body
        key = conn.execute(
            insert(incident_reports).values(
                incident_id=incident_id,
                event_id=event_id,
                created_at=now,
                schema_version=schema_version,
                body=body,
                text=rendered.text,
                html=rendered.html,
                sha256=hashlib.sha256(body.encode("utf-8")).hexdigest(),
            )
        ).inserted_primary_key
        assert key is not None
        return int(key[0])

    def add_delivery(
        self,
        conn: Connection,
        *,
        report_id: int,
        incident_id: int,
        sink: str,
        audience: str,
        recipient: str | None,
        idempotency_key: str,
        now: datetime,
        problem: str | None = None,
    ) -> None:
        conn.execute(
            insert(deliveries).values(
                report_id=report_id,
                incident_id=incident_id,
                sink=sink,
                audience=audience,
                recipient=recipient,
                idempotency_key=idempotency_key,
                status="failed" if problem else "pending",
                attempts=0,
                next_attempt_at=now,
                last_error=problem,
                created_at=now,
            )
        )

    def directory_events(self, since: datetime) -> list[Any]:
        from scd_monitor.xroad.directory import DirectoryEvent

        with self.transaction("reading directory events") as conn:
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
        with self.transaction("listing incidents") as conn:
            return [_incident(r) for r in conn.execute(query.limit(limit))]

    def incidents_between(self, start: datetime, end: datetime) -> list[IncidentRow]:
        """Incidents open at some time in ``[start, end)``, oldest first."""
        query = (
            select(incidents)
            .where(incidents.c.started_at < end)
            .where((incidents.c.resolved_at.is_(None)) | (incidents.c.resolved_at >= start))
            .order_by(incidents.c.started_at, incidents.c.id)
        )
        with self.transaction("listing the incidents of a period") as conn:
            return [_incident(r) for r in conn.execute(query)]

    def events(
        self, conn: Connection, incident_id: int
    ) -> list[tuple[EventFacts, bool, Mapping[str, Any]]]:
        rows = conn.execute(
            select(incident_events)
            .where(incident_events.c.incident_id == incident_id)
            .order_by(incident_events.c.seq)
        )
        return [
            (
                EventFacts(r.seq, r.kind, r.reason, r.at, Severity(r.severity)),
                bool(r.notify),
                r.details,
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

    # -- the outbox ---------------------------------------------------------------------

    def deliveries(
        self,
        *,
        statuses: Sequence[str] | None = None,
        incident_id: int | None = None,
        limit: int = 200,
    ) -> list[DeliveryRow]:
        query = _delivery_query().order_by(deliveries.c.id)
        if statuses:
            query = query.where(deliveries.c.status.in_(list(statuses)))
        if incident_id is not None:
            query = query.where(deliveries.c.incident_id == incident_id)
        with self.transaction("reading deliveries") as conn:
            return [_delivery(r) for r in conn.execute(query.limit(limit))]

    def delivery(self, delivery_id: int) -> DeliveryRow | None:
        with self.transaction("reading a delivery") as conn:
            row = conn.execute(_delivery_query().where(deliveries.c.id == delivery_id)).first()
        return None if row is None else _delivery(row)

    @staticmethod
    def _due(now: datetime) -> Any:
        return or_(
            and_(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now),
            and_(deliveries.c.status == "in_flight", deliveries.c.claimed_until < now),
        )

    def claim(
        self, now: datetime, *, sinks: Iterable[str], lease: timedelta, limit: int
    ) -> list[ClaimedDelivery]:
        """Claim up to ``limit`` due deliveries of ``sinks`` until ``now + lease``.

        Each claim is its own conditional ``UPDATE`` (re-checking that the row is still
        due), so two dispatchers never both hold one delivery.
        """
        names = sorted(set(sinks))
        if not names:
            return []
        try:
            with self.store.engine.connect() as conn:
                candidates = [
                    int(r.id)
                    for r in conn.execute(
                        select(deliveries.c.id)
                        .where(deliveries.c.sink.in_(names), self._due(now))
                        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
                        .limit(limit)
                    )
                ]
            claimed: dict[int, str] = {}
            for ident in candidates:
                token = secrets.token_hex(16)
                with self.store.engine.begin() as conn:
                    n = conn.execute(
                        update(deliveries)
                        .where(deliveries.c.id == ident, self._due(now))
                        .values(
                            status="in_flight",
                            claim_token=token,
                            claimed_until=now + lease,
                            attempts=deliveries.c.attempts + 1,
                            last_attempt_at=now,
                        )
                    ).rowcount
                if n == 1:
                    claimed[ident] = token
            if not claimed:
                return []
            with self.store.engine.connect() as conn:
                rows = conn.execute(
                    select(
                        deliveries,
                        incidents.c.code,
                        incident_events.c.seq,
                        incident_events.c.kind.label("event_kind"),
                        incident_reports.c.body,
                        incident_reports.c.text,
                        incident_reports.c.html,
                    )
                    .select_from(
                        deliveries.join(
                            incident_reports, deliveries.c.report_id == incident_reports.c.id
                        )
                        .join(incident_events, incident_reports.c.event_id == incident_events.c.id)
                        .join(incidents, deliveries.c.incident_id == incidents.c.id)
                    )
                    .where(deliveries.c.id.in_(list(claimed)))
                    .order_by(deliveries.c.id)
                ).all()
        except SQLAlchemyError as exc:
            raise StoreError(f"claiming deliveries failed: {_first(exc)}") from exc
        out = []
        for r in rows:
            document = json.loads(r.body)
            out.append(
                ClaimedDelivery(
                    id=int(r.id),
                    token=claimed[int(r.id)],
                    sink=r.sink,
                    payload=DeliveryPayload(
                        idempotency_key=r.idempotency_key,
                        incident=r.code,
                        report_id=f"{r.code}.{r.seq}",
                        event=r.event_kind,
                        audience=r.audience,
                        recipient=r.recipient,
                        subject=subject_of(document),
                        body=r.body.encode("utf-8"),
                        text=r.text,
                        html=r.html,
                        attempt=int(r.attempts),
                    ),
                )
            )
        return out

    def settle_delivered(self, delivery_id: int, token: str, now: datetime) -> bool:
        """Mark delivered if still ours; False when the claim was lost meanwhile."""
        with self.transaction("settling a delivery") as conn:
            n = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.id == delivery_id,
                    deliveries.c.claim_token == token,
                    deliveries.c.status == "in_flight",
                )
                .values(
                    status="delivered",
                    delivered_at=now,
                    claimed_until=None,
                    claim_token=None,
                    last_error=None,
                )
            ).rowcount
        return n == 1

    def settle_failed(
        self,
        delivery_id: int,
        token: str,
        *,
        error: str,
        permanent: bool,
        next_attempt_at: datetime,
    ) -> bool:
        """Back to ``pending`` until ``next_attempt_at``, or ``failed`` when permanent;
        False when the claim was lost meanwhile."""
        with self.transaction("settling a delivery") as conn:
            n = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.id == delivery_id,
                    deliveries.c.claim_token == token,
                    deliveries.c.status == "in_flight",
                )
                .values(
                    status="failed" if permanent else "pending",
                    next_attempt_at=next_attempt_at,
                    claimed_until=None,
                    claim_token=None,
                    last_error=error[:ERROR_MAX],
                )
            ).rowcount
        return n == 1

    def retry(self, delivery_id: int, now: datetime) -> bool:
        """Make a failed (or waiting) delivery due now; False if it is delivered or in
        flight. :class:`NotFoundError` if there is no such delivery."""
        with self.transaction("re-queuing a delivery") as conn:
            n = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.id == delivery_id, deliveries.c.status.in_(["failed", "pending"])
                )
                .values(status="pending", next_attempt_at=now)
            ).rowcount
            if n == 0:
                exists = conn.execute(
                    select(deliveries.c.id).where(deliveries.c.id == delivery_id)
                ).first()
                if exists is None:
                    raise NotFoundError(f"no delivery {delivery_id}")
        return n == 1

    def stats(self, now: datetime) -> OutboxStats:
        with self.transaction("reading outbox statistics") as conn:
            counts: Counter[tuple[str, str]] = Counter()
            for r in conn.execute(
                select(deliveries.c.sink, deliveries.c.status, func.count()).group_by(
                    deliveries.c.sink, deliveries.c.status
                )
            ):
                counts[(r[0], r[1])] = int(r[2])
            oldest = conn.execute(
                select(func.min(deliveries.c.created_at)).where(
                    deliveries.c.status.in_(["pending", "in_flight"])
                )
            ).scalar()
            severities: Counter[str] = Counter()
            for r in conn.execute(
                select(incidents.c.severity, func.count())
                .where(incidents.c.status != "resolved")
                .group_by(incidents.c.severity)
            ):
                severities[r[0]] = int(r[1])
        if oldest is not None and oldest.tzinfo is None:  # func.min bypasses the type on SQLite
            oldest = oldest.replace(tzinfo=UTC)
        if isinstance(oldest, str):
            oldest = datetime.fromisoformat(oldest).replace(tzinfo=UTC)
        backlog = sum(n for (_, status), n in counts.items() if status in ("pending", "in_flight"))
        return OutboxStats(
            by_sink_status=dict(counts),
            backlog=backlog,
            oldest_pending_age_seconds=(
                max(0.0, (now - oldest).total_seconds()) if oldest is not None else None
            ),
            open_by_severity=dict(severities),
        )


def _first(exc: BaseException) -> str:
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return detail[0] if detail else type(exc).__name__
