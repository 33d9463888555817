"""Latency rollups summed per UTC day, so that a month reads ~30 rows a check.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05

One new table, ``scd_latency_daily`` (check, vantage, ``day`` = 00:00 UTC, counts and
histogram: the columns of ``scd_latency_hourly``), filled from the hourly rows already
stored: every (check, vantage, UTC day) gets the sum of its hours. From then on the state
tracker adds to both in one transaction. The hourly rows are kept as they are (a period's
edges read them), with a new index on ``hour`` (``ix_scd_latency_hourly_hour``) so that
the edges are read by time rather than by scanning every hourly row.

The backfill is one ``INSERT … SELECT`` on PostgreSQL (so the offline script for a
database administrator has it too); on SQLite it streams the hourly rows in key order
and inserts the days in batches (no day is held longer than its hours are read).

A stored hourly histogram that is malformed (not a list of non-negative integers of the
right length) spoils its day: SQLite copies it into the day's row as it is, PostgreSQL
writes a marker text there. Either way the month report finds the same malformed check
(and says so) whether it reads the day or the hours.

Frozen history: no imports from ``scd_monitor.store.tables``.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

UTC_DATETIME = sa.DateTime(timezone=True)
N_BUCKETS = 61
"""The latency histogram's bucket count when this revision was written."""
BATCH = 5_000

_HOURLY = sa.table(
    "scd_latency_hourly",
    sa.column("check_id", sa.String()),
    sa.column("vantage", sa.String()),
    sa.column("hour", UTC_DATETIME),
    sa.column("ok_count", sa.Integer()),
    sa.column("under_threshold_count", sa.Integer()),
    sa.column("histogram", sa.Text()),
)


def upgrade() -> None:
    daily = op.create_table(
        "scd_latency_daily",
        sa.Column("check_id", sa.String(200), nullable=False),
        sa.Column("vantage", sa.String(63), nullable=False),
        sa.Column("day", UTC_DATETIME, nullable=False, comment="00:00 UTC of the day"),
        sa.Column("ok_count", sa.Integer(), nullable=False),
        sa.Column("under_threshold_count", sa.Integer(), nullable=False),
        sa.Column("histogram", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("check_id", "vantage", "day"),
        comment="scd_latency_hourly summed per UTC day, kept in the same transactions",
    )
    assert daily is not None
    # A month reads its edge hours by time: without this, a scan of every hourly row.
    op.create_index("ix_scd_latency_hourly_hour", "scd_latency_hourly", ["hour"])
    if op.get_context().dialect.name == "postgresql":
        op.execute(_PG_BACKFILL)  # in SQL: also in the offline script (``--sql``)
    else:
        _backfill(op.get_bind(), daily)


# The same as _backfill in one statement: per (check, vantage, UTC day) the sums, and the
# histogram summed element-wise, or the marker text when an hour's histogram is malformed.
_PG_BACKFILL = """
INSERT INTO scd_latency_daily
    (check_id, vantage, day, ok_count, under_threshold_count, histogram)
SELECT d.check_id, d.vantage, d.day, d.ok_count, d.under_threshold_count,
    CASE WHEN d.malformed THEN to_json('malformed in scd_latency_hourly'::text)
    ELSE (
        SELECT json_agg(s.n ORDER BY s.i) FROM (
            SELECT e.i, sum(e.v::bigint) AS n
            FROM scd_latency_hourly AS h,
                json_array_elements_text(h.histogram) WITH ORDINALITY AS e(v, i)
            WHERE h.check_id = d.check_id AND h.vantage = d.vantage
                AND date_trunc('day', h.hour, 'UTC') = d.day
            GROUP BY e.i
        ) AS s
    ) END
FROM (
    SELECT check_id, vantage, date_trunc('day', hour, 'UTC') AS day,
        sum(ok_count) AS ok_count, sum(under_threshold_count) AS under_threshold_count,
        bool_or(
            CASE WHEN json_typeof(histogram) <> 'array' THEN true
            WHEN json_array_length(histogram) <> 61 THEN true  -- N_BUCKETS
            ELSE EXISTS (
                SELECT 1 FROM json_array_elements_text(histogram) AS x(v)
                WHERE x.v IS NULL OR x.v !~ '^[0-9]+$'
            ) END
        ) AS malformed
    FROM scd_latency_hourly
    GROUP BY check_id, vantage, date_trunc('day', hour, 'UTC')
) AS d
"""


def _backfill(conn: sa.Connection, daily: sa.Table) -> None:
    h = _HOURLY.c
    rows = conn.execute(
        sa.select(h.check_id, h.vantage, h.hour, h.ok_count, h.under_threshold_count, h.histogram)
        .order_by(h.check_id, h.vantage, h.hour)
        .execution_options(stream_results=True, yield_per=BATCH)
    )
    pending: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for check_id, vantage, hour, ok, under, text in rows:
        day = _day(hour)
        if current is None or (current["check_id"], current["vantage"], current["day"]) != (
            check_id,
            vantage,
            day,
        ):
            if current is not None:
                pending.append(current)
            current = {
                "check_id": check_id,
                "vantage": vantage,
                "day": day,
                "ok_count": 0,
                "under_threshold_count": 0,
                "histogram": [0] * N_BUCKETS,
            }
        current["ok_count"] += ok
        current["under_threshold_count"] += under
        current["histogram"] = _added(current["histogram"], text)
        if len(pending) >= BATCH:
            conn.execute(sa.insert(daily), pending)
            pending = []
    if current is not None:
        pending.append(current)
    if pending:
        conn.execute(sa.insert(daily), pending)


def _day(hour: datetime) -> datetime:
    """00:00 UTC of ``hour``'s day, as the driver gave ``hour`` (SQLite: naive UTC)."""
    if hour.tzinfo is not None:
        hour = hour.astimezone(UTC)
    return hour.replace(hour=0, minute=0, second=0, microsecond=0)


def _added(total: Any, text: Any) -> Any:
    """``total`` plus the histogram ``text``; a malformed one (either) wins as it is."""
    value = text
    if isinstance(text, str):
        with contextlib.suppress(ValueError):  # not JSON: kept as the text (malformed)
            value = json.loads(text)
    if not _wellformed(total):
        return total
    if not _wellformed(value):
        return value
    return [a + b for a, b in zip(total, value, strict=True)]


def _wellformed(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == N_BUCKETS
        and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in value)
    )


def downgrade() -> None:
    op.drop_index("ix_scd_latency_hourly_hour", table_name="scd_latency_hourly")
    op.drop_table("scd_latency_daily")
