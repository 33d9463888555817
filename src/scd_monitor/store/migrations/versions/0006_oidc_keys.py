"""OIDC providers' signing keys: what each JWKS last listed, and what changed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

Two new tables, nothing else touched:

* ``scd_oidc_keys``: per OIDC check and vantage, the key ids its provider's JWKS listed in
  the last result the state tracker read, and the key that signed the last monitoring
  token with that token's validity (a key removed before its tokens expire is *early*);
* ``scd_oidc_key_events``: one row per key that appeared in or disappeared from a JWKS
  (key rotation), with ``early`` for a removal while a token it signed may still be
  valid.

Frozen history: no imports from ``scd_monitor.store.tables``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

UTC_DATETIME = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "scd_oidc_keys",
        sa.Column("check_id", sa.String(200), nullable=False),
        sa.Column("vantage", sa.String(63), nullable=False),
        sa.Column("kids", sa.JSON(), nullable=False, comment="the key ids the JWKS listed, sorted"),
        sa.Column("seen_at", UTC_DATETIME, nullable=False, comment="the result they were seen in"),
        sa.Column("token_kid", sa.String(255), nullable=True, comment="the key of the last token"),
        sa.Column(
            "token_valid_until",
            UTC_DATETIME,
            nullable=True,
            comment="until when that token (signed by token_kid) is valid",
        ),
        sa.PrimaryKeyConstraint("check_id", "vantage"),
        comment="per OIDC check and vantage: what its JWKS last listed (key events diff it)",
    )
    op.create_table(
        "scd_oidc_key_events",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("at", UTC_DATETIME, nullable=False, comment="start of the probe that saw it"),
        sa.Column("check_id", sa.String(200), nullable=False),
        sa.Column("vantage", sa.String(63), nullable=False),
        sa.Column("change", sa.String(32), nullable=False, comment="appeared, disappeared"),
        sa.Column("kid", sa.String(255), nullable=False),
        sa.Column(
            "early",
            sa.Boolean(),
            nullable=False,
            comment="disappeared while a token it signed may still be valid",
        ),
        sa.Column(
            "details",
            sa.JSON(),
            nullable=True,
            comment="kids before and after, the token's validity",
        ),
        comment="keys that appeared in or disappeared from an OIDC provider's JWKS",
    )
    op.create_index("ix_scd_oidc_key_events_time", "scd_oidc_key_events", ["at"])
    op.create_index("ix_scd_oidc_key_events_check", "scd_oidc_key_events", ["check_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_scd_oidc_key_events_check", table_name="scd_oidc_key_events")
    op.drop_index("ix_scd_oidc_key_events_time", table_name="scd_oidc_key_events")
    op.drop_table("scd_oidc_key_events")
    op.drop_table("scd_oidc_keys")
