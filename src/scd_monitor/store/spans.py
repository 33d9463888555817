"""State spans: the check spans, the state machines' snapshots and the tracker cursors.

These are the facts the state tracker (:mod:`scd_monitor.runtime.tracker`) derives
from a vantage's probe results and the SLA reporter reads. Every method takes the
:class:`~sqlalchemy.Connection` of a transaction the caller opened with
:meth:`Store.transaction <scd_monitor.store.Store.transaction>`, so that one round of
the tracker (spans, snapshots and the advanced cursor, with the latency rollups of
:mod:`scd_monitor.store.rollups`) is stored all or nothing; that is also where
database errors become :class:`~scd_monitor.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from scd_monitor.probes.base import ProbeResult
from scd_monitor.sla.derive import MachineSnapshot
from scd_monitor.sla.model import Period, Span, State
from scd_monitor.store.engine import Store
from scd_monitor.store.results import from_row
from scd_monitor.store.tables import check_machines, check_spans, probe_results, tracker_cursors

__all__ = ["SpanRepository", "StoredSpan"]

MachineKey = tuple[str, str]
"""(check id, vantage)."""

STREAM_ROWS = 10_000
"""Rows per fetch when reading spans from a server-side cursor."""

_STATES = {state.value: state for state in State}


class StoredSpan(NamedTuple):
    """A span as stored: its row id (to extend it) and the span."""

    id: int
    span: Span


class SpanRepository:
    """Reads and writes check spans, machine snapshots and tracker cursors."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- the tracker's cursor and its input -----------------------------------------------

    def cursor(self, conn: Connection, vantage: str) -> int | None:
        """The id of the last probe result of ``vantage`` already tracked (None: none yet)."""
        value = conn.execute(
            select(tracker_cursors.c.last_result_id).where(tracker_cursors.c.vantage == vantage)
        ).scalar()
        return None if value is None else int(value)

    def results_after(
        self, conn: Connection, vantage: str, after: int | None, *, limit: int
    ) -> list[tuple[int, ProbeResult]]:
        """At most ``limit`` results of ``vantage`` with an id above ``after``, in id
        order, each with its id."""
        rows = conn.execute(
            select(probe_results)
            .where(probe_results.c.vantage == vantage, probe_results.c.id > (after or 0))
            .order_by(probe_results.c.id)
            .limit(limit)
        )
        return [(int(row.id), from_row(row._mapping)) for row in rows]

    def advance_cursor(self, conn: Connection, vantage: str, to: int, now: datetime) -> None:
        """Record that the results of ``vantage`` up to id ``to`` are tracked."""
        values = {"last_result_id": to, "updated_at": now}
        updated = conn.execute(
            update(tracker_cursors).where(tracker_cursors.c.vantage == vantage).values(**values)
        ).rowcount
        if not updated:
            conn.execute(insert(tracker_cursors).values(vantage=vantage, **values))

    # -- spans ------------------------------------------------------------------------------

    def last_span(self, conn: Connection, check_id: str, vantage: str) -> StoredSpan | None:
        """The latest stored span of the check from ``vantage``."""
        row = conn.execute(
            select(check_spans)
            .where(check_spans.c.check_id == check_id, check_spans.c.vantage == vantage)
            .order_by(check_spans.c.start.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        return StoredSpan(int(row.id), Span(row.start, row.end, State(row.state), row.reason))

    def append_span(self, conn: Connection, check_id: str, vantage: str, span: Span) -> StoredSpan:
        """Store ``span`` as a new row."""
        key = conn.execute(
            insert(check_spans).values(
                check_id=check_id,
                vantage=vantage,
                state=span.state.value,
                reason=span.reason,
                start=span.start,
                end=span.end,
            )
        ).inserted_primary_key
        assert key is not None
        return StoredSpan(int(key[0]), span)

    def extend_span(self, conn: Connection, stored: StoredSpan, end: datetime) -> StoredSpan:
        """Move the end of the stored span to ``end``."""
        conn.execute(update(check_spans).where(check_spans.c.id == stored.id).values(end=end))
        s = stored.span
        return StoredSpan(stored.id, Span(s.start, end, s.state, s.reason))

    def save_spans(
        self,
        conn: Connection,
        check_id: str,
        vantage: str,
        spans: Iterable[Span],
        *,
        last: StoredSpan | None = None,
    ) -> StoredSpan | None:
        """Store the check's new final ``spans`` (in time order) and return its last
        stored span afterwards.

        A span that continues the last stored one (starts where it ends, same state and
        reason) extends that row instead of adding one, so a state that lasts across
        rounds (or restarts) stays one span. ``last`` is the check's last stored span
        when the caller remembers it (from a previous call); without it it is read.
        """
        if last is None:
            last = self.last_span(conn, check_id, vantage)
        for span in spans:
            if (
                last is not None
                and last.span.end == span.start
                and last.span.state == span.state
                and last.span.reason == span.reason
            ):
                last = self.extend_span(conn, last, span.end)
            else:
                last = self.append_span(conn, check_id, vantage, span)
        return last

    def spans(
        self, conn: Connection, window: Period, *, check_ids: Container[str] | None = None
    ) -> dict[MachineKey, list[Span]]:
        """The stored spans that overlap ``window`` (unclipped), per (check id, vantage),
        each list in start order; only those of ``check_ids`` when given.

        Read as plain tuples, streamed from a server-side cursor where the driver has
        one (PostgreSQL), so that the driver never holds the whole month at once.
        """
        states = _STATES
        rows = conn.execute(  # options per statement, not on the caller's connection
            select(
                check_spans.c.check_id,
                check_spans.c.vantage,
                check_spans.c.state,
                check_spans.c.reason,
                check_spans.c.start,
                check_spans.c.end,
            )
            .where(check_spans.c.end > window.start, check_spans.c.start < window.end)
            .order_by(check_spans.c.start)
            .execution_options(stream_results=True, yield_per=STREAM_ROWS)
        )
        out: dict[MachineKey, list[Span]] = {}
        for check_id, vantage, state, reason, start, end in rows:
            if check_ids is not None and check_id not in check_ids:
                continue
            value = states.get(state) or State(state)  # an unknown state: ValueError
            out.setdefault((check_id, vantage), []).append(Span(start, end, value, reason))
        return out

    # -- state machine snapshots -------------------------------------------------------------

    def machines(
        self,
        conn: Connection,
        *,
        vantage: str | None = None,
        check_ids: Container[str] | None = None,
    ) -> dict[MachineKey, MachineSnapshot]:
        """The stored snapshots per (check id, vantage): of ``vantage`` only and of
        ``check_ids`` only when given (the others are not parsed)."""
        query = select(
            check_machines.c.check_id, check_machines.c.vantage, check_machines.c.snapshot
        )
        if vantage is not None:
            query = query.where(check_machines.c.vantage == vantage)
        out: dict[MachineKey, MachineSnapshot] = {}
        for check_id, machine_vantage, snapshot in conn.execute(query):
            if check_ids is not None and check_id not in check_ids:
                continue
            out[(check_id, machine_vantage)] = MachineSnapshot.from_json(snapshot)
        return out

    def save_machine(
        self,
        conn: Connection,
        check_id: str,
        vantage: str,
        snapshot: MachineSnapshot,
        now: datetime,
    ) -> None:
        """Store the snapshot of the check's machine at ``vantage`` (replacing the last)."""
        self.save_machines(conn, vantage, [(check_id, snapshot)], now)

    def save_machines(
        self,
        conn: Connection,
        vantage: str,
        snapshots: Iterable[tuple[str, MachineSnapshot]],
        now: datetime,
    ) -> None:
        """:meth:`save_machine` of each (check id, snapshot), in one ``executemany`` of
        an UPSERT (``INSERT … ON CONFLICT (check_id, vantage) DO UPDATE``, SQLite and
        PostgreSQL): what the state tracker calls once per round."""
        rows = [
            {
                "check_id": check_id,
                "vantage": vantage,
                "snapshot": snapshot.to_json(),
                "updated_at": now,
            }
            for check_id, snapshot in snapshots
        ]
        if not rows:
            return
        dialect = postgresql if self.store.dialect == "postgresql" else sqlite
        statement = dialect.insert(check_machines)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[check_machines.c.check_id, check_machines.c.vantage],
                set_={
                    "snapshot": statement.excluded.snapshot,
                    "updated_at": statement.excluded.updated_at,
                },
            ),
            rows,
        )

    # -- rebuilding ----------------------------------------------------------------------------

    def forget_vantage(self, conn: Connection, vantage: str) -> None:
        """Delete the spans, snapshots and cursor of ``vantage`` (the other vantages'
        stay), so that its results are tracked again from the first."""
        conn.execute(delete(check_spans).where(check_spans.c.vantage == vantage))
        conn.execute(delete(check_machines).where(check_machines.c.vantage == vantage))
        conn.execute(delete(tracker_cursors).where(tracker_cursors.c.vantage == vantage))
