"""Closed months, frozen: each month's export figures stored once it closes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-12

Two new tables, nothing else touched:

* ``scd_frozen_months``: one row per frozen month (``YYYY-MM`` in the catalog's zone):
  the month's export as canonical JSON (``document``, the exact text exports of the
  month are rendered from), its SHA-256, the SHA-256 of the JSON export rendered from it
  when it was frozen, who froze it, when, why (``closed`` for the automatic freeze, the
  operator's reason for a recomputation), the software and catalog versions and the
  ``revision`` (1, then one more per recomputation).
* ``scd_frozen_month_history``: every earlier revision of a recomputed month, with when
  and by whom it was superseded. Rows are only ever added.

Frozen history: no imports from ``scd_monitor.store.tables``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

UTC_DATETIME = sa.DateTime(timezone=True)


def _columns(*, history: bool) -> list[sa.Column[object]]:
    columns: list[sa.Column[object]] = [
        sa.Column("month", sa.String(7), nullable=False, comment="YYYY-MM in the catalog's zone"),
        sa.Column(
            "revision",
            sa.Integer(),
            nullable=False,
            comment="1 for the first freeze, one more per recomputation",
        ),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("frozen_at", UTC_DATETIME, nullable=False),
        sa.Column("frozen_by", sa.String(255), nullable=False, comment="daemon, or user@host"),
        sa.Column(
            "reason",
            sa.Text(),
            nullable=False,
            comment="'closed' (automatic freeze) or the operator's reason",
        ),
        sa.Column("software_version", sa.String(64), nullable=False),
        sa.Column("catalog_version", sa.String(255), nullable=True),
        sa.Column("export_version", sa.Integer(), nullable=False),
        sa.Column("document_version", sa.Integer(), nullable=False),
        sa.Column(
            "document",
            sa.Text(),
            nullable=False,
            comment="the month's export, canonical JSON (exact)",
        ),
        sa.Column("sha256", sa.String(64), nullable=False, comment="SHA-256 of document (UTF-8)"),
        sa.Column(
            "report_sha256",
            sa.String(64),
            nullable=False,
            comment="SHA-256 of the JSON export rendered from it when frozen",
        ),
    ]
    if history:
        columns += [
            sa.Column("superseded_at", UTC_DATETIME, nullable=False),
            sa.Column("superseded_by", sa.String(255), nullable=False, comment="who recomputed it"),
        ]
    return columns


def upgrade() -> None:
    op.create_table(
        "scd_frozen_months",
        *_columns(history=False),
        sa.PrimaryKeyConstraint("month"),
        comment="the figures of each closed month, frozen: exports of it read them",
    )
    op.create_table(
        "scd_frozen_month_history",
        *_columns(history=True),
        sa.PrimaryKeyConstraint("month", "revision"),
        comment="every earlier freeze of a recomputed month, never overwritten",
    )


def downgrade() -> None:
    op.drop_table("scd_frozen_month_history")
    op.drop_table("scd_frozen_months")
