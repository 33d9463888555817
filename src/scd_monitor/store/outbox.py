"""The outbox: the deliveries of the incidents' reports to the sinks.

The outbox follows healthchecks' flips and Gatus' alerts: a delivery row is written in
the same transaction as its report (:meth:`OutboxRepository.add_delivery`, in the
caller's transaction); it is *claimed* by a conditional ``UPDATE`` that only succeeds
while it is due (``pending`` and ``next_attempt_at <= now``, or ``in_flight`` with an
expired lease), which sets a fresh ``claim_token`` and a lease (``claimed_until``); it
is *settled* by an ``UPDATE`` guarded by that token, so a claimer whose lease ran out
(and whose delivery was claimed again) cannot overwrite the newer claim. Nothing is
ever deleted: a permanent failure stays ``failed``, shown by ``scd-monitor deliveries
--failed``, until retried.

Blocking, like :class:`~scd_monitor.store.Store` (call it from a thread). Database
errors become :class:`~scd_monitor.errors.StoreError`.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from scd_monitor.errors import NotFoundError
from scd_monitor.sinks.base import DeliveryPayload
from scd_monitor.store.engine import Store
from scd_monitor.store.tables import deliveries, incident_events, incident_reports, incidents

__all__ = ["ClaimedDelivery", "DeliveryRow", "OutboxRepository", "OutboxStats"]

ERROR_MAX = 2000
"""The longest ``last_error`` kept (characters)."""


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


def _delivery_query(*columns: Any) -> Any:
    return select(*_DELIVERY_COLUMNS, *columns).select_from(
        deliveries.join(incident_reports, deliveries.c.report_id == incident_reports.c.id)
        .join(incident_events, incident_reports.c.event_id == incident_events.c.id)
        .join(incidents, deliveries.c.incident_id == incidents.c.id)
    )


def _due(now: datetime) -> Any:
    return or_(
        and_(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now),
        and_(deliveries.c.status == "in_flight", deliveries.c.claimed_until < now),
    )


class OutboxRepository:
    """Writes, claims, settles and reads the deliveries of one :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

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
        """Queue a report for a sink, in the caller's transaction (the report's); with
        a ``problem`` (the route cannot be delivered) it is ``failed`` from the start."""
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
        with self.store.transaction("reading deliveries") as conn:
            return [_delivery(r) for r in conn.execute(query.limit(limit))]

    def delivery(self, delivery_id: int) -> DeliveryRow | None:
        with self.store.transaction("reading a delivery") as conn:
            row = conn.execute(_delivery_query().where(deliveries.c.id == delivery_id)).first()
        return None if row is None else _delivery(row)

    def claim(
        self,
        now: datetime,
        *,
        sinks: Iterable[str],
        lease: timedelta,
        limit: int,
        subject: Callable[[Mapping[str, Any]], str],
    ) -> list[ClaimedDelivery]:
        """Claim up to ``limit`` due deliveries of ``sinks`` until ``now + lease``;
        ``subject`` makes a payload's subject line from its report's JSON document.

        Each claim is its own conditional ``UPDATE`` (re-checking that the row is still
        due), so two dispatchers never both hold one delivery.
        """
        names = sorted(set(sinks))
        if not names:
            return []
        with self.store.transaction("claiming deliveries") as conn:
            candidates = [
                int(r.id)
                for r in conn.execute(
                    select(deliveries.c.id)
                    .where(deliveries.c.sink.in_(names), _due(now))
                    .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
                    .limit(limit)
                )
            ]
        claimed: dict[int, str] = {}
        for ident in candidates:
            token = secrets.token_hex(16)
            with self.store.transaction("claiming deliveries") as conn:
                n = conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == ident, _due(now))
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
        with self.store.transaction("claiming deliveries") as conn:
            rows = conn.execute(
                _delivery_query(
                    incident_reports.c.body, incident_reports.c.text, incident_reports.c.html
                )
                .where(deliveries.c.id.in_(list(claimed)))
                .order_by(deliveries.c.id)
            ).all()
        return [
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
                    subject=subject(json.loads(r.body)),
                    body=r.body.encode("utf-8"),
                    text=r.text,
                    html=r.html,
                    attempt=int(r.attempts),
                ),
            )
            for r in rows
        ]

    def settle_delivered(self, delivery_id: int, token: str, now: datetime) -> bool:
        """Mark delivered if still ours; False when the claim was lost meanwhile."""
        return self._settle(
            delivery_id, token, status="delivered", delivered_at=now, last_error=None
        )

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
        return self._settle(
            delivery_id,
            token,
            status="failed" if permanent else "pending",
            next_attempt_at=next_attempt_at,
            last_error=error[:ERROR_MAX],
        )

    def _settle(self, delivery_id: int, token: str, **values: Any) -> bool:
        """Release an in-flight claim with ``values``, only if the claim is still ours."""
        with self.store.transaction("settling a delivery") as conn:
            n = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.id == delivery_id,
                    deliveries.c.claim_token == token,
                    deliveries.c.status == "in_flight",
                )
                .values(claimed_until=None, claim_token=None, **values)
            ).rowcount
        return n == 1

    def retry(self, delivery_id: int, now: datetime) -> bool:
        """Make a failed (or waiting) delivery due now; False if it is delivered or in
        flight. :class:`NotFoundError` if there is no such delivery."""
        with self.store.transaction("re-queuing a delivery") as conn:
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
        with self.store.transaction("reading outbox statistics") as conn:
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
