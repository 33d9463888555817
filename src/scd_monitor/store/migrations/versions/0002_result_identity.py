"""One row per probe run: a unique index on (check_id, vantage, started_at).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05

A result's identity is the run it records: one check, from one vantage, started at one
instant (microseconds). With this index the writer inserts with ``ON CONFLICT DO
NOTHING`` (SQLite and PostgreSQL), so a result written twice (a spool replayed after a
crash, a batch retried after a commit whose answer was lost) is stored once.

It replaces ``ix_scd_probe_results_check_time`` (same columns, not unique): the unique
index serves the same lookups. In place, every row kept, with one exception: rows that
repeat an earlier row's (check_id, vantage, started_at) are the same run written twice
by a release without this index; the first (lowest id) is kept, the repeats are deleted
before the index is made (it could not be made otherwise). State spans, cursors and
rollups do not refer to result rows, so nothing else changes.

Frozen history: no imports from ``scd_monitor.store.tables``.
"""

from __future__ import annotations

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_TABLE = "scd_probe_results"
_COLUMNS = ["check_id", "vantage", "started_at"]

# The same run written twice: keep the first row. The old index (check_id, vantage,
# started_at) makes the correlated lookup cheap on both databases.
_DELETE_REPEATS = """
DELETE FROM scd_probe_results
WHERE EXISTS (
    SELECT 1 FROM scd_probe_results AS earlier
    WHERE earlier.check_id = scd_probe_results.check_id
      AND earlier.vantage = scd_probe_results.vantage
      AND earlier.started_at = scd_probe_results.started_at
      AND earlier.id < scd_probe_results.id
)
"""


def upgrade() -> None:
    op.execute(_DELETE_REPEATS)
    op.drop_index("ix_scd_probe_results_check_time", table_name=_TABLE)
    op.create_index("uq_scd_probe_results_run", _TABLE, _COLUMNS, unique=True)


def downgrade() -> None:
    op.drop_index("uq_scd_probe_results_run", table_name=_TABLE)
    op.create_index("ix_scd_probe_results_check_time", _TABLE, _COLUMNS)
