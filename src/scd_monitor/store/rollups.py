"""Latency rollups: per check, vantage and hour, the successful probes' latencies.

The state tracker adds to them in its round's transaction; the SLA reporter reads the
hours of a period. Like :mod:`scd_monitor.store.spans`, every method takes the
:class:`~sqlalchemy.Connection` of a transaction the caller opened with
:meth:`Store.transaction <scd_monitor.store.Store.transaction>`.
"""

from __future__ import annotations

import json
from collections.abc import Container, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Connection, Text, cast, delete, func, insert, select, update

from scd_monitor.sla.latency import N_BUCKETS, LatencyHistogram
from scd_monitor.store.engine import Store
from scd_monitor.store.tables import latency_hourly

__all__ = ["LatencyBucket", "LatencyRepository", "LatencyTotal"]

HOUR = timedelta(hours=1)
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
    a :class:`LatencyHistogram` of a sum of them, which validates it once."""


class LatencyRepository:
    """Reads and writes the hourly latency rollups."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, conn: Connection, bucket: LatencyBucket) -> None:
        """Add ``bucket`` to the stored one of its check, vantage and hour (counts summed,
        histograms merged), or store it when there is none yet."""
        where = (
            latency_hourly.c.check_id == bucket.check_id,
            latency_hourly.c.vantage == bucket.vantage,
            latency_hourly.c.hour == bucket.hour,
        )
        row = conn.execute(
            select(
                latency_hourly.c.ok_count,
                latency_hourly.c.under_threshold_count,
                latency_hourly.c.histogram,
            ).where(*where)
        ).first()
        if row is None:
            conn.execute(
                insert(latency_hourly).values(
                    check_id=bucket.check_id,
                    vantage=bucket.vantage,
                    hour=bucket.hour,
                    ok_count=bucket.ok_count,
                    under_threshold_count=bucket.under_threshold_count,
                    histogram=bucket.histogram.to_json(),
                )
            )
            return
        merged = LatencyHistogram.from_json(row.histogram).merge(bucket.histogram)
        conn.execute(
            update(latency_hourly)
            .where(*where)
            .values(
                ok_count=row.ok_count + bucket.ok_count,
                under_threshold_count=row.under_threshold_count + bucket.under_threshold_count,
                histogram=merged.to_json(),
            )
        )

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

        The database sums the counts and joins each check's histograms into one text
        (``group_concat`` / ``string_agg``), one row per check, streamed from a
        server-side cursor where the driver has one; Python then decodes one JSON text
        per check and adds up its columns. Nothing per hourly row is built in Python.
        A histogram of the wrong length is a ``ValueError``, as is any value that is
        not a number (non-integer or negative values are left to the
        :class:`LatencyHistogram` the caller builds of the sums).
        """
        hist = cast(latency_hourly.c.histogram, Text)
        query = (
            select(
                latency_hourly.c.check_id,
                func.sum(latency_hourly.c.ok_count),
                func.sum(latency_hourly.c.under_threshold_count),
                func.aggregate_strings(hist, ","),
            )
            .where(latency_hourly.c.hour > start - HOUR, latency_hourly.c.hour < end)
            .group_by(latency_hourly.c.check_id)
        )
        rows = conn.execution_options(stream_results=True, yield_per=STREAM_ROWS).execute(query)
        loads = json.loads
        for check_id, ok, under, texts in rows:
            if check_ids is not None and check_id not in check_ids:
                continue
            try:
                columns = zip(*loads(f"[{texts}]"), strict=True)
                counts = [sum(column) for column in columns]
            except (TypeError, ValueError) as exc:
                raise ValueError(f"malformed latency rollup of {check_id!r}: {exc}") from None
            if len(counts) != N_BUCKETS:
                raise ValueError(
                    f"malformed latency rollup of {check_id!r}: "
                    f"expected {N_BUCKETS} bucket counts, got {len(counts)}"
                )
            yield LatencyTotal(check_id, int(ok), int(under), counts)

    def forget_vantage(self, conn: Connection, vantage: str) -> None:
        """Delete the rollups of ``vantage`` (the other vantages' stay)."""
        conn.execute(delete(latency_hourly).where(latency_hourly.c.vantage == vantage))
