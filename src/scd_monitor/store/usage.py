"""The use of the X-Road platform: operational data records, counted on ingest.

A security server writes about a million operational data records a day; they are never
stored one by one. Each page the collector reads (:mod:`scd_monitor.runtime.opmon`) is
counted in memory per 15-minute bucket and key, and added to the stored counts with one
UPSERT per chunk of rows (``INSERT … ON CONFLICT (key) DO UPDATE SET count = count +
excluded.count, …``, the same statement on SQLite and PostgreSQL).

::

    scd_xroad_usage          one row per (bucket_start, source, security_server, side,
                             client, service, succeeded, fault_code): count,
                             duration_count, duration_sum_ms, hist_1 … hist_60000,
                             hist_inf, request_bytes, response_bytes; provider_member
    scd_xroad_usage_cursors  one row per (source, security_server): next_records_from,
                             records_total, refused_total, updated_at

Buckets are 15 minutes of UTC aligned to the epoch (``bucket_start`` is a multiple of 900
s): every time zone's offset is a multiple of 15 minutes, so a month of any zone starts
and ends on a bucket boundary and a monthly figure is exact. A record falls in the
bucket of its ``monitoringDataTs``. An identifier the record does not give is ``''``.

**Exactly once.** :meth:`UsageRepository.apply_page` adds a page's counts and moves the
cursor of its security server from the page's ``recordsFrom`` to its ``nextRecordsFrom``
in one transaction, and only if the stored cursor still is ``recordsFrom`` (a
conditional ``UPDATE`` run first, which also makes a second writer of the same server
wait for the first one's commit). A crash anywhere before the commit leaves counts and
cursor as they were, and the page is asked for again; a page applied a second time (a
replay, another daemon on the same server) finds the cursor moved and changes nothing.
X-Road pages end on whole seconds, so a cursor never splits the records of a second.

**Texts.** Identifiers longer than :data:`MAX_TEXT` characters (X-Road allows 255 per
part) are kept as their first characters, ``…#`` and 11 hex digits of their SHA-256, so
that two different identifiers never share a row and the key stays indexable.

Blocking, like :class:`~scd_monitor.store.Store` (call it from a thread); database errors
become :class:`~scd_monitor.errors.StoreError`.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Connection, Insert, Row, delete, func, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite

from scd_monitor.errors import StoreError
from scd_monitor.store.engine import Store
from scd_monitor.store.tables import (
    USAGE_DURATION_BOUNDS_MS,
    USAGE_HISTOGRAM_COLUMNS,
    USAGE_KEY,
    xroad_usage,
    xroad_usage_cursors,
)
from scd_monitor.xroad.identifiers import ClientId, ServiceId
from scd_monitor.xroad.opmon import OperationalRecord

__all__ = [
    "BUCKET",
    "DURATION_BUCKETS_MS",
    "MAX_TEXT",
    "N_HISTOGRAM",
    "UsageBucket",
    "UsageCursor",
    "UsageRepository",
    "aggregate",
    "bucket_start",
]

BUCKET = timedelta(minutes=15)
"""The width of a usage bucket."""
_BUCKET_SECONDS = 900

DURATION_BUCKETS_MS: tuple[int, ...] = USAGE_DURATION_BOUNDS_MS
"""Upper bounds (ms, inclusive) of the duration histogram; a last bucket (``+Inf``)
holds the longer ones. Bucket ``i`` holds ``bound[i-1] < d ≤ bound[i]``, bucket 0 every
``d ≤ 1`` (0 included). Fixed: they are columns of ``scd_xroad_usage``."""

N_HISTOGRAM = len(DURATION_BUCKETS_MS) + 1
"""Buckets of the histogram, ``+Inf`` included."""

MAX_TEXT = 255
"""The longest identifier or fault code kept as it is (see the module docstring)."""

# Rows per INSERT statement: 30 parameters a row stays below SQLite's 32766 and
# PostgreSQL's 65535 bind parameters.
_CHUNK = 500

# The counters of an aggregate, in this order, then the histogram.
_COUNT, _DURATION_COUNT, _DURATION_SUM, _REQUEST_BYTES, _RESPONSE_BYTES = range(5)
_HIST = 5
_SUMMED = (
    "count",
    "duration_count",
    "duration_sum_ms",
    "request_bytes",
    "response_bytes",
    *USAGE_HISTOGRAM_COLUMNS,
)
"""The columns an UPSERT adds to, in the order of an aggregate's counters."""


def bucket_start(ts: int) -> datetime:
    """The start of the bucket that holds Unix second ``ts`` (UTC)."""
    return datetime.fromtimestamp(ts - ts % _BUCKET_SECONDS, UTC)


@dataclass(frozen=True, slots=True)
class UsageBucket:
    """The records of one key in one 15-minute bucket (a row of ``scd_xroad_usage``).

    ``histogram`` holds :data:`N_HISTOGRAM` counts: one per bound of
    :data:`DURATION_BUCKETS_MS`, then ``+Inf``; it counts ``duration_count`` records
    (those that give both times), ``count`` counts them all.
    """

    source: str
    security_server: str
    bucket_start: datetime
    side: str
    """``Client`` or ``Producer``: which security server wrote the records."""
    client: str
    """The client's identifier (text form), ``''`` when the records give none."""
    service: str
    """The service's identifier (text form), ``''`` when the records give none."""
    succeeded: bool
    fault_code: str
    """``''`` when the records give none."""
    provider_member: str
    """The member (INSTANCE/CLASS/MEMBER) offering ``service``, ``''`` if none."""
    count: int
    duration_count: int
    duration_sum_ms: int
    histogram: tuple[int, ...]
    request_bytes: int
    response_bytes: int


@dataclass(frozen=True, slots=True)
class UsageCursor:
    """Where the collection of one security server stands."""

    source: str
    security_server: str
    next_records_from: int
    """Unix seconds: every record before it is counted, none from it on."""
    records_total: int
    """Records counted since the cursor was made."""
    refused_total: int
    """Malformed records left out since the cursor was made."""
    updated_at: datetime


class UsageRepository:
    """Counting operational data records, and reading the counts back."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- writing ------------------------------------------------------------------------

    def apply_page(
        self,
        source: str,
        security_server: str,
        records: Sequence[OperationalRecord],
        *,
        records_from: int,
        next_from: int,
        refused: int = 0,
        now: datetime | None = None,
    ) -> bool:
        """Count one page of ``security_server``'s records and move its cursor from
        ``records_from`` to ``next_from``, in one transaction; see the module docstring.

        False, and nothing written, when the stored cursor is not ``records_from``
        (the page was applied already, or another writer moved on, or there is no
        cursor yet: :meth:`set_cursor` makes it). ``refused``: records of the page left
        out as malformed (only added to the cursor's ``refused_total``). A record outside
        ``[records_from, next_from)`` is counted all the same, in its own bucket.
        ``ValueError`` when ``next_from`` is not after ``records_from``.
        """
        if next_from <= records_from:
            raise ValueError(f"next_from {next_from} must be after records_from {records_from}")
        if refused < 0:
            raise ValueError("refused must not be negative")
        rows = aggregate(source, security_server, records)
        what = f"counting {len(records)} X-Road records of {security_server}"
        with self.store.transaction(what) as conn:
            moved = conn.execute(
                update(xroad_usage_cursors)
                .where(
                    xroad_usage_cursors.c.source == source,
                    xroad_usage_cursors.c.security_server == _bounded(security_server),
                    xroad_usage_cursors.c.next_records_from == records_from,
                )
                .values(
                    next_records_from=next_from,
                    records_total=xroad_usage_cursors.c.records_total + len(records),
                    refused_total=xroad_usage_cursors.c.refused_total + refused,
                    updated_at=_now(now),
                )
            ).rowcount
            if moved != 1:
                return False
            self._add(conn, rows)
        return True

    def _add(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Add ``rows`` to the stored counts: one UPSERT, executed for every row."""
        if rows:
            conn.execute(self._upsert(), rows)

    def _upsert(self) -> Insert:
        if self.store.dialect == "postgresql":
            pg = postgresql.insert(xroad_usage)
            return pg.on_conflict_do_update(
                index_elements=list(USAGE_KEY),
                set_={c: xroad_usage.c[c] + pg.excluded[c] for c in _SUMMED},
            )
        if self.store.dialect == "sqlite":
            lite = sqlite.insert(xroad_usage)
            return lite.on_conflict_do_update(
                index_elements=list(USAGE_KEY),
                set_={c: xroad_usage.c[c] + lite.excluded[c] for c in _SUMMED},
            )
        raise NotImplementedError(f"no UPSERT for {self.store.dialect}")

    def set_cursor(
        self,
        source: str,
        security_server: str,
        next_from: int,
        *,
        replace: bool = False,
        now: datetime | None = None,
    ) -> bool:
        """Make the cursor of a security server not collected yet (the collector's
        first start: now minus its lookback); True when it was made. An existing
        cursor is kept (False), unless ``replace`` (an operator's reset: counts already
        stored stay, so moving it back counts those records again)."""
        values = {
            "source": source,
            "security_server": _bounded(security_server),
            "next_records_from": next_from,
            "records_total": 0,
            "refused_total": 0,
            "updated_at": _now(now),
        }
        dialect = postgresql if self.store.dialect == "postgresql" else sqlite
        statement = dialect.insert(xroad_usage_cursors).values(values)
        keys = ["source", "security_server"]
        if replace:
            statement = statement.on_conflict_do_update(
                index_elements=keys,
                set_={"next_records_from": next_from, "updated_at": values["updated_at"]},
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=keys)
        with self.store.transaction(f"setting the usage cursor of {security_server}") as conn:
            # An INSERT's row count is kept only when asked for (SQLAlchemy 2).
            result = conn.execute(statement.execution_options(preserve_rowcount=True))
            return result.rowcount == 1

    def delete_before(self, cutoff: datetime) -> int:
        """Delete the buckets that start before ``cutoff`` (retention); how many."""
        _aware(cutoff)
        with self.store.transaction("deleting old X-Road usage") as conn:
            return int(
                conn.execute(
                    delete(xroad_usage).where(xroad_usage.c.bucket_start < cutoff)
                ).rowcount
            )

    # -- reading ------------------------------------------------------------------------

    def _read(self, what: str, query: Any) -> Sequence[Row[Any]]:
        """The rows of ``query``; none when the database predates the usage tables (an
        older database opened read-only as it is, see
        :data:`scd_monitor.store.schema.READABLE_WITHOUT`)."""
        try:
            with self.store.transaction(what) as conn:
                return conn.execute(query).all()
        except StoreError:
            if not self._has_tables():
                return []
            raise

    def _has_tables(self) -> bool:
        try:
            with self.store.transaction("looking for the usage tables") as conn:
                names = set(inspect(conn).get_table_names())
        except StoreError:
            return True  # the database failed: say so, with the first error
        return {xroad_usage.name, xroad_usage_cursors.name} <= names

    def cursor(self, source: str, security_server: str) -> int | None:
        """The cursor of a security server; None when it has none yet."""
        rows = self._read(
            "reading a usage cursor",
            select(xroad_usage_cursors.c.next_records_from).where(
                xroad_usage_cursors.c.source == source,
                xroad_usage_cursors.c.security_server == _bounded(security_server),
            ),
        )
        return int(rows[0][0]) if rows else None

    def cursors(self) -> list[UsageCursor]:
        """Every cursor, by source and security server."""
        c = xroad_usage_cursors.c
        rows = self._read(
            "reading the usage cursors",
            select(xroad_usage_cursors).order_by(c.source, c.security_server),
        )
        return [
            UsageCursor(
                source=r.source,
                security_server=r.security_server,
                next_records_from=int(r.next_records_from),
                records_total=int(r.records_total),
                refused_total=int(r.refused_total),
                updated_at=r.updated_at,
            )
            for r in rows
        ]

    def buckets(
        self, start: datetime, end: datetime, *, source: str | None = None
    ) -> list[UsageBucket]:
        """The buckets that start in ``[start, end)`` (of ``source`` only, when given),
        in key order. A period whose ends are multiples of 15 minutes (any time zone's
        days and months) gets exactly its records."""
        u = xroad_usage.c
        query = select(xroad_usage).where(*_period(start, end, source))
        rows = self._read("reading X-Road usage", query.order_by(*(u[k] for k in USAGE_KEY)))
        return [_bucket(r._mapping) for r in rows]

    def totals(
        self, start: datetime, end: datetime, *, source: str | None = None
    ) -> list[UsageBucket]:
        """:meth:`buckets` summed in the database over time and security servers: one
        :class:`UsageBucket` per (source, side, client, service, succeeded, fault code),
        with ``security_server`` ``''`` and ``bucket_start`` its earliest bucket. What
        :func:`scd_monitor.analysis.usage.summarize` needs for a month, in far fewer
        rows."""
        u = xroad_usage.c
        groups = (u.source, u.side, u.client, u.service, u.succeeded, u.fault_code)
        sums = [func.sum(u[c]).cast(BigInteger).label(c) for c in _SUMMED]
        query = (
            select(
                *groups,
                func.min(u.provider_member).label("provider_member"),
                func.min(u.bucket_start).label("bucket_start"),
                *sums,
            )
            .where(*_period(start, end, source))
            .group_by(*groups)
            .order_by(*groups)
        )
        rows = self._read("summing X-Road usage", query)
        return [_bucket({**r._mapping, "security_server": ""}) for r in rows]


# -- aggregation -------------------------------------------------------------------------


def aggregate(
    source: str, security_server: str, records: Sequence[OperationalRecord]
) -> list[dict[str, Any]]:
    """The rows of ``scd_xroad_usage`` that count ``records`` (one per bucket and key,
    as :meth:`UsageRepository.apply_page` adds them)."""
    bounds = DURATION_BUCKETS_MS
    width = _HIST + N_HISTOGRAM
    counts: dict[
        tuple[int, str, ClientId | None, ServiceId | None, bool, str | None], list[int]
    ] = {}
    for record in records:
        ts = record.monitoring_data_ts
        key = (
            ts - ts % _BUCKET_SECONDS,
            record.side,
            record.client,
            record.service,
            record.succeeded,
            record.fault_code,
        )
        acc = counts.get(key)
        if acc is None:
            acc = counts[key] = [0] * width
        acc[_COUNT] += 1
        if record.request_size:
            acc[_REQUEST_BYTES] += record.request_size
        if record.response_size:
            acc[_RESPONSE_BYTES] += record.response_size
        started, ended = record.request_in_ts, record.response_out_ts
        if started is not None and ended is not None and ended >= started:
            duration = ended - started
            acc[_DURATION_COUNT] += 1
            acc[_DURATION_SUM] += duration
            acc[_HIST + bisect_left(bounds, duration)] += 1
    # Text forms once per identifier (a page repeats a few hundred of them).
    texts: dict[object, str] = {None: ""}
    members: dict[ServiceId | None, str] = {None: ""}

    def text(value: ClientId | ServiceId | None) -> str:
        found = texts.get(value)
        if found is None:
            found = texts[value] = _bounded(str(value))
        return found

    # The same stored key for two keys above only when a text had to be shortened.
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    server = _bounded(security_server)
    for (start, side, client, service, succeeded, fault), acc in counts.items():
        stored = (
            start,
            side,
            text(client),
            text(service),
            succeeded,
            "" if not fault else _bounded(fault),
        )
        row = rows.get(stored)
        if row is not None:
            for column, value in zip(_SUMMED, acc, strict=True):
                row[column] += value
            continue
        row = {
            "bucket_start": datetime.fromtimestamp(start, UTC),
            "source": source,
            "security_server": server,
            "side": side,
            "client": stored[2],
            "service": stored[3],
            "succeeded": succeeded,
            "fault_code": stored[5],
            "provider_member": members.get(service) or _member(members, service),
        }
        row.update(zip(_SUMMED, acc, strict=True))
        rows[stored] = row
    return list(rows.values())


def _member(members: dict[ServiceId | None, str], service: ServiceId | None) -> str:
    """The text of the member offering ``service``, remembered in ``members``."""
    if service is None:
        return ""
    found = members[service] = _bounded(str(service.client.member))
    return found


def _bounded(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:11]
    return f"{text[: MAX_TEXT - 13]}…#{digest}"


# -- helpers -----------------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else _aware(now)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
    return value


def _period(start: datetime, end: datetime, source: str | None) -> Iterator[Any]:
    u = xroad_usage.c
    yield u.bucket_start >= _aware(start)
    yield u.bucket_start < _aware(end)
    if source is not None:
        yield u.source == source


def _bucket(row: Mapping[Any, Any]) -> UsageBucket:
    return UsageBucket(
        source=row["source"],
        security_server=row["security_server"],
        bucket_start=row["bucket_start"],
        side=row["side"],
        client=row["client"],
        service=row["service"],
        succeeded=bool(row["succeeded"]),
        fault_code=row["fault_code"],
        provider_member=row["provider_member"],
        count=int(row["count"]),
        duration_count=int(row["duration_count"]),
        duration_sum_ms=int(row["duration_sum_ms"]),
        histogram=tuple(int(row[c]) for c in USAGE_HISTOGRAM_COLUMNS),
        request_bytes=int(row["request_bytes"]),
        response_bytes=int(row["response_bytes"]),
    )
