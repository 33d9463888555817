"""The use of the X-Road platform: operational data records counted per 15 minutes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05

Two new tables, nothing else touched:

* ``scd_xroad_usage``: the operational data records of each security server, counted
  per 15-minute bucket (UTC, aligned to the epoch) and key (side, client, service,
  success, fault code): counts, a duration sum and a fixed duration histogram (one
  column per bucket, upper bounds 1 ms … 60 s, then one for longer), request and
  response bytes. The raw records are never stored. The primary key is the UPSERT's
  conflict target (``ON CONFLICT … DO UPDATE SET count = count + excluded.count …``);
  it starts with the bucket so that a period and the retention are range scans.
* ``scd_xroad_usage_cursors``: per source and security server, the ``recordsFrom`` of
  the next page (Unix seconds), moved in the transaction that counts a page.

Frozen history: no imports from ``scd_monitor.store.tables``; the histogram's columns
are written out.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scd_xroad_usage",
        sa.Column(
            "bucket_start", UTC_DATETIME, nullable=False, comment="UTC, a multiple of 15 min"
        ),
        sa.Column("source", sa.String(63), nullable=False, comment="the catalog's xroad source id"),
        sa.Column(
            "security_server", sa.String(255), nullable=False, comment="whose records these are"
        ),
        sa.Column(
            "side", sa.String(8), nullable=False, comment="Client or Producer (the record's)"
        ),
        sa.Column(
            "client", sa.String(255), nullable=False, comment="client identifier, '' if none"
        ),
        sa.Column(
            "service", sa.String(255), nullable=False, comment="service identifier, '' if none"
        ),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("fault_code", sa.String(255), nullable=False, comment="'' when none"),
        sa.Column(
            "provider_member", sa.String(255), nullable=False, comment="the service's member"
        ),
        sa.Column("count", sa.Integer(), nullable=False, comment="records"),
        sa.Column(
            "duration_count", sa.Integer(), nullable=False, comment="records with a duration"
        ),
        sa.Column("duration_sum_ms", sa.BigInteger(), nullable=False),
        sa.Column("hist_1", sa.Integer(), nullable=False, comment="records of at most 1 ms"),
        sa.Column("hist_2", sa.Integer(), nullable=False, comment="records of (1, 2] ms"),
        sa.Column("hist_5", sa.Integer(), nullable=False, comment="records of (2, 5] ms"),
        sa.Column("hist_10", sa.Integer(), nullable=False, comment="records of (5, 10] ms"),
        sa.Column("hist_20", sa.Integer(), nullable=False, comment="records of (10, 20] ms"),
        sa.Column("hist_50", sa.Integer(), nullable=False, comment="records of (20, 50] ms"),
        sa.Column("hist_100", sa.Integer(), nullable=False, comment="records of (50, 100] ms"),
        sa.Column("hist_200", sa.Integer(), nullable=False, comment="records of (100, 200] ms"),
        sa.Column("hist_500", sa.Integer(), nullable=False, comment="records of (200, 500] ms"),
        sa.Column("hist_1000", sa.Integer(), nullable=False, comment="records of (500, 1000] ms"),
        sa.Column("hist_2000", sa.Integer(), nullable=False, comment="records of (1000, 2000] ms"),
        sa.Column("hist_5000", sa.Integer(), nullable=False, comment="records of (2000, 5000] ms"),
        sa.Column(
            "hist_10000", sa.Integer(), nullable=False, comment="records of (5000, 10000] ms"
        ),
        sa.Column(
            "hist_20000", sa.Integer(), nullable=False, comment="records of (10000, 20000] ms"
        ),
        sa.Column(
            "hist_60000", sa.Integer(), nullable=False, comment="records of (20000, 60000] ms"
        ),
        sa.Column("hist_inf", sa.Integer(), nullable=False, comment="records over 60000 ms"),
        sa.Column("request_bytes", sa.BigInteger(), nullable=False),
        sa.Column("response_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "bucket_start",
            "source",
            "security_server",
            "side",
            "client",
            "service",
            "succeeded",
            "fault_code",
        ),
        comment="X-Road operational data records counted per 15 minutes (raw records are not kept)",
    )
    op.create_table(
        "scd_xroad_usage_cursors",
        sa.Column("source", sa.String(63), nullable=False),
        sa.Column("security_server", sa.String(255), nullable=False),
        sa.Column(
            "next_records_from",
            sa.BigInteger(),
            nullable=False,
            comment="Unix seconds: the records before it are counted",
        ),
        sa.Column("records_total", sa.BigInteger(), nullable=False),
        sa.Column("refused_total", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("source", "security_server"),
        comment="per security server: where its next page of operational data starts",
    )


def downgrade() -> None:
    op.drop_table("scd_xroad_usage_cursors")
    op.drop_table("scd_xroad_usage")
