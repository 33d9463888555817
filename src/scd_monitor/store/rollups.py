"""Latency rollups: per check, vantage and hour, the successful probes' latencies.

The state tracker adds to them in its round's transaction; the SLA reporter reads the
hours of a period. Each hourly row is also summed into its check's and vantage's UTC day
(``scd_latency_daily``) in the same transaction, so a month reads the days it covers
whole (~30 rows a check) and hourly rows only at its two edges (the hours before the
first whole UTC day and after the last one): the same sums as every hour, read from
~20 times fewer rows. Like :mod:`scd_monitor.store.spans`, every method takes the
:class:`~sqlalchemy.Connection` of a transaction the caller opened with
:meth:`Store.transaction <scd_monitor.store.Store.transaction>`.
"""

from __future__ import annotations

import json
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import add
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Table,
    Text,
    bindparam,
    cast,
    delete,
    func,
    insert,
    inspect,
    select,
    update,
)

from scd_monitor.sla.latency import N_BUCKETS, LatencyHistogram
from scd_monitor.store.engine import Store
from scd_monitor.store.tables import latency_daily, latency_hourly

__all__ = ["LatencyBucket", "LatencyRepository", "LatencyTotal"]

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STREAM_ROWS = 64
"""Rows per fetch of :meth:`LatencyRepository.totals` on a server-side cursor: each
row carries a check's histograms of the whole period as text (~180 bytes an hour)."""


@dataclass(frozen=True, slots=True)
class LatencyBucket:
    """The successful probes of one check from one vantage in the hour from ``hour``:
    how many, how many at or under the latency threshold, and their histogram."""

    check_id: str
    vantage: str
    hour: datetime
    ok_count: int
    under_threshold_count: int
    histogram: LatencyHistogram


class LatencyTotal(NamedTuple):
    """One check's rollups of a period summed over its hours and vantages."""

    check_id: str
    ok_count: int
    under_threshold_count: int
    counts: list[int]
    """The histogram's bucket counts summed (``N_BUCKETS`` of them), unvalidated: build
    a :class:`LatencyHistogram` of a sum of them, which validates it once. Empty when
    ``error`` is set."""
    error: str | None = None
    """Why this check's rollups could not be summed (a malformed stored histogram): the
    check has no latency figures for the period; the others are unaffected."""


class LatencyRepository:
    """Reads and writes the hourly latency rollups."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, conn: Connection, bucket: LatencyBucket) -> None:
        """Add ``bucket`` to the stored one of its check, vantage and hour (counts summed,
        histograms merged), or store it when there is none yet; and the same to its UTC
        day's row."""
        self.add_many(conn, [bucket])

    def add_many(self, conn: Connection, buckets: Iterable[LatencyBucket]) -> None:
        """:meth:`add` of every bucket, in a few statements: the stored rows they meet are
        read in one query per table (per ``MAX_KEYS`` checks), then updated with one
        ``executemany`` and the new ones inserted with another. What the state tracker
        calls once per round (a round of a large catalog touches thousands of buckets)."""
        hours: dict[_Key, LatencyBucket] = {}
        days: dict[_Key, LatencyBucket] = {}
        for bucket in buckets:
            hour = bucket.hour.astimezone(UTC)
            for at, into in ((hour, hours), (_floor(hour, DAY), days)):
                key = (bucket.check_id, bucket.vantage, at)
                seen = into.get(key)
                into[key] = bucket if seen is None else _summed(seen, bucket)
        _merge_many(conn, latency_hourly, latency_hourly.c.hour, hours)
        _merge_many(conn, latency_daily, latency_daily.c.day, days)

    def buckets(
        self,
        conn: Connection,
        start: datetime,
        end: datetime,
        *,
        check_ids: Container[str] | None = None,
    ) -> Iterator[LatencyBucket]:
        """The buckets of the hours that meet ``[start, end)`` (a period that starts or
        ends mid-hour gets the whole first and last hours), of ``check_ids`` only when
        given (the others are not parsed); in no particular order.

        A month of a large catalog has millions of buckets: they are yielded one by one
        (consume them before the transaction ends) so that the caller can sum them up
        without holding them all.
        """
        rows = conn.execute(
            select(latency_hourly).where(
                latency_hourly.c.hour > start - HOUR, latency_hourly.c.hour < end
            )
        )
        for r in rows:
            if check_ids is not None and r.check_id not in check_ids:
                continue
            yield LatencyBucket(
                check_id=r.check_id,
                vantage=r.vantage,
                hour=r.hour,
                ok_count=r.ok_count,
                under_threshold_count=r.under_threshold_count,
                histogram=LatencyHistogram.from_json(r.histogram),
            )

    def totals(
        self,
        conn: Connection,
        start: datetime,
        end: datetime,
        *,
        check_ids: Container[str] | None = None,
    ) -> Iterator[LatencyTotal]:
        """Per check, the rollups of the hours that meet ``[start, end)`` (as
        :meth:`buckets`) summed over hours and vantages; of ``check_ids`` only when given
        (the others' histograms are not parsed); in no particular order.

        The UTC days wholly inside those hours are read from the daily rows, the hours
        before and after them from the hourly rows (module doc). The database sums the
        counts and joins each check's histograms into one text (``group_concat`` /
        ``string_agg``), one row per check, streamed from a server-side cursor where the
        driver has one; Python then decodes one JSON text per check and adds up its
        columns. A check whose stored histograms are malformed (the wrong length, or a
        value that is not a number) comes back with ``error`` set and no counts; the
        other checks are summed as usual. Non-integer or negative values are left to the
        :class:`LatencyHistogram` the caller builds of the sums.
        """
        first_hour = _floor(start, HOUR)  # the hours h with start - 1h < h < end
        after_hours = _ceil(end, HOUR)
        first_day, after_days = _ceil(first_hour, DAY), _floor(after_hours, DAY)
        hourly, daily = latency_hourly.c, latency_daily.c
        if not (after_days > first_day and inspect(conn).has_table(latency_daily.name)):
            # No whole day, or a database from before the daily rows (read as it is).
            yield from self._summed(conn, hourly, hourly.hour, first_hour, after_hours, check_ids)
            return
        # Two grouped reads, each on its own index (a UNION of both would be sorted
        # again as a whole): the edge hours, summed and held per check (a few numbers
        # each), then the days, streamed in check order, each check completed with its
        # edges as it goes.
        edges: dict[str, LatencyTotal] = {}
        for part in (
            self._summed(conn, hourly, hourly.hour, first_hour, first_day, check_ids),
            self._summed(conn, hourly, hourly.hour, after_days, after_hours, check_ids),
        ):
            for total in part:
                seen = edges.get(total.check_id)
                edges[total.check_id] = total if seen is None else _added(seen, total)
        for total in self._summed(conn, daily, daily.day, first_day, after_days, check_ids):
            edge = edges.pop(total.check_id, None)
            yield total if edge is None else _added(total, edge)
        yield from edges.values()

    @staticmethod
    def _summed(
        conn: Connection,
        c: Any,
        period: Any,
        low: datetime,
        high: datetime,
        check_ids: Container[str] | None,
    ) -> Iterator[LatencyTotal]:
        """Per check, the rows of ``c``'s table with ``low <= period < high`` summed."""
        if not low < high:
            return
        query = (
            select(
                c.check_id,
                func.sum(c.ok_count),
                func.sum(c.under_threshold_count),
                func.aggregate_strings(cast(c.histogram, Text), ","),
            )
            .where(period >= low, period < high)
            .group_by(c.check_id)
            # Per statement: Connection.execution_options would change the caller's.
            .execution_options(stream_results=True, yield_per=STREAM_ROWS)
        )
        loads = json.loads
        for check_id, ok, under, texts in conn.execute(query):
            if check_ids is not None and check_id not in check_ids:
                continue
            try:
                # Column sums, one C-level pass (the same order of errors as a loop).
                counts = list(map(sum, zip(*loads(f"[{texts}]"), strict=True)))
                if len(counts) != N_BUCKETS:
                    raise ValueError(f"expected {N_BUCKETS} bucket counts, got {len(counts)}")
            except (TypeError, ValueError) as exc:
                error = f"malformed latency rollup of {check_id!r}: {exc}"
                yield LatencyTotal(check_id, 0, 0, [], error)
                continue
            yield LatencyTotal(check_id, int(ok), int(under), counts)

    def forget_vantage(self, conn: Connection, vantage: str) -> None:
        """Delete the rollups of ``vantage`` (the other vantages' stay)."""
        conn.execute(delete(latency_hourly).where(latency_hourly.c.vantage == vantage))
        conn.execute(delete(latency_daily).where(latency_daily.c.vantage == vantage))


_Key = tuple[str, str, datetime]
MAX_KEYS = 500
"""Check ids per ``IN (…)`` of :func:`_merge_many`'s read (bound parameters are limited)."""


def _added(a: LatencyTotal, b: LatencyTotal) -> LatencyTotal:
    """One check's two totals in one (an error in either is the sum's)."""
    if a.error is not None:
        return a
    if b.error is not None:
        return b
    return LatencyTotal(
        a.check_id,
        a.ok_count + b.ok_count,
        a.under_threshold_count + b.under_threshold_count,
        list(map(add, a.counts, b.counts)),
    )


def _summed(a: LatencyBucket, b: LatencyBucket) -> LatencyBucket:
    return LatencyBucket(
        a.check_id,
        a.vantage,
        a.hour,
        a.ok_count + b.ok_count,
        a.under_threshold_count + b.under_threshold_count,
        a.histogram.merge(b.histogram),
    )


def _merge_many(
    conn: Connection, table: Table, period: Any, buckets: dict[_Key, LatencyBucket]
) -> None:
    """Add each of ``buckets`` (keyed by check, vantage and ``period``'s value) to its
    stored row of ``table``, or store it when there is none yet."""
    if not buckets:
        return
    c = table.c
    stored: dict[_Key, tuple[int, int, Any]] = {}
    vantages = {k[1] for k in buckets}
    periods = {k[2] for k in buckets}
    check_ids = sorted({k[0] for k in buckets})
    for n in range(0, len(check_ids), MAX_KEYS):
        rows = conn.execute(
            select(
                c.check_id, c.vantage, period, c.ok_count, c.under_threshold_count, c.histogram
            ).where(
                c.check_id.in_(check_ids[n : n + MAX_KEYS]),
                c.vantage.in_(vantages),
                period.in_(periods),
            )
        )
        for check_id, vantage, at, ok, under, histogram in rows:
            stored[(check_id, vantage, at)] = (ok, under, histogram)
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for key, bucket in buckets.items():
        seen = stored.get(key)
        if seen is None:
            inserts.append(
                {
                    "check_id": key[0],
                    "vantage": key[1],
                    period.key: key[2],
                    "ok_count": bucket.ok_count,
                    "under_threshold_count": bucket.under_threshold_count,
                    "histogram": bucket.histogram.to_json(),
                }
            )
            continue
        ok, under, histogram = seen
        updates.append(
            {
                "k_check_id": key[0],
                "k_vantage": key[1],
                "k_period": key[2],
                "v_ok": ok + bucket.ok_count,
                "v_under": under + bucket.under_threshold_count,
                "v_histogram": LatencyHistogram.from_json(histogram)
                .merge(bucket.histogram)
                .to_json(),
            }
        )
    if updates:
        conn.execute(
            update(table)
            .where(
                c.check_id == bindparam("k_check_id"),
                c.vantage == bindparam("k_vantage"),
                period == bindparam("k_period"),
            )
            .values(
                ok_count=bindparam("v_ok"),
                under_threshold_count=bindparam("v_under"),
                histogram=bindparam("v_histogram"),
            ),
            updates,
        )
    if inserts:
        conn.execute(insert(table), inserts)


def _floor(at: datetime, unit: timedelta) -> datetime:
    """``at`` rounded down to a multiple of ``unit`` since the Unix epoch (UTC)."""
    since = at - EPOCH
    return EPOCH + since - since % unit


def _ceil(at: datetime, unit: timedelta) -> datetime:
    """``at`` rounded up to a multiple of ``unit`` since the Unix epoch (UTC)."""
    floor = _floor(at, unit)
    return floor if floor == at else floor + unit
