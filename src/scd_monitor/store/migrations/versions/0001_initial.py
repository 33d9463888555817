"""The schema of the last release before migrations (scd_schema version 1).

Revision ID: 0001
Revises:
Create Date: 2026-03-02

Frozen history: the tables, indexes and constraints exactly as that release's
``metadata.create_all`` made them (unnamed unique and foreign key constraints keep the
database's default names), with types spelled out instead of imported:
``UTCDateTime`` is ``DateTime(timezone=True)`` in DDL (it only converts values), and
the big identifiers are ``BIGINT`` (``BIGSERIAL``) but ``INTEGER`` on SQLite, where only
an ``INTEGER PRIMARY KEY`` autoincrements.

When :func:`scd_monitor.store.schema.upgrade` adopts a database of that release (it has
``scd_schema`` but no version table), the attribute ``scd_adopt_legacy`` is set and this
revision makes only what is missing (earlier releases added tables without changing the
version): existing tables, their rows and their indexes are left alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

UTC_DATETIME = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    adopting = bool(context.config.attributes.get("scd_adopt_legacy", False))
    inspector = sa.inspect(op.get_bind()) if adopting else None
    existing = set(inspector.get_table_names()) if inspector is not None else set()

    def missing(table: str) -> bool:
        return table not in existing

    def missing_index(table: str, index: str) -> bool:
        return (
            inspector is None
            or table not in existing
            or index not in {i["name"] for i in inspector.get_indexes(table)}
        )

    if missing("scd_schema"):
        op.create_table(
            "scd_schema",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("version", sa.Integer(), nullable=False),
        )
    # Releases before migrations read this (and refuse a version above theirs); one of
    # them may have stopped between making the table and writing its row.
    legacy = sa.table(
        "scd_schema", sa.column("id", sa.Integer()), sa.column("version", sa.Integer())
    )
    if (
        not adopting
        or op.get_bind().execute(sa.select(sa.func.count()).select_from(legacy)).scalar() == 0
    ):
        op.bulk_insert(legacy, [{"id": 1, "version": 1}])

    if missing("scd_checks"):
        op.create_table(
            "scd_checks",
            sa.Column("id", sa.String(200), primary_key=True, comment="provider/service/check"),
            sa.Column("provider", sa.String(63), nullable=False),
            sa.Column("service", sa.String(63), nullable=False),
            sa.Column("check", sa.String(63), nullable=False),
            sa.Column("kind", sa.String(32), nullable=False),
            sa.Column("target", sa.Text(), nullable=False),
            sa.Column("interval_seconds", sa.Float(), nullable=False),
            sa.Column("timeout_seconds", sa.Float(), nullable=False),
            sa.Column("critical", sa.Boolean(), nullable=False),
            sa.Column("first_seen", UTC_DATETIME, nullable=False),
            sa.Column("last_seen", UTC_DATETIME, nullable=False),
            sa.Column(
                "retired_at", UTC_DATETIME, nullable=True, comment="left the catalog; history kept"
            ),
        )

    if missing("scd_probe_results"):
        op.create_table(
            "scd_probe_results",
            sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
            sa.Column("check_id", sa.String(200), nullable=False),
            sa.Column("vantage", sa.String(63), nullable=False),
            sa.Column("started_at", UTC_DATETIME, nullable=False),
            sa.Column("duration_seconds", sa.Float(), nullable=False),
            sa.Column("ok", sa.Boolean(), nullable=False),
            sa.Column("error_kind", sa.String(16), nullable=True),
            sa.Column("message", sa.Text(), nullable=True),
            sa.Column("status_code", sa.SmallInteger(), nullable=True),
            sa.Column("phases", sa.JSON(), nullable=True),
            sa.Column("cert_not_after", UTC_DATETIME, nullable=True),
            sa.Column("details", sa.JSON(), nullable=True),
        )
    if missing_index("scd_probe_results", "ix_scd_probe_results_check_time"):
        op.create_index(
            "ix_scd_probe_results_check_time",
            "scd_probe_results",
            ["check_id", "vantage", "started_at"],
        )
    if missing_index("scd_probe_results", "ix_scd_probe_results_time"):
        op.create_index("ix_scd_probe_results_time", "scd_probe_results", ["started_at"])

    if missing("scd_check_spans"):
        op.create_table(
            "scd_check_spans",
            sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
            sa.Column("check_id", sa.String(200), nullable=False),
            sa.Column("vantage", sa.String(63), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("reason", sa.String(200), nullable=True),
            sa.Column("start", UTC_DATETIME, nullable=False),
            sa.Column("end", UTC_DATETIME, nullable=False),
            comment="final state spans [start, end) per check and vantage; gaps are UNKNOWN",
        )
    if missing_index("scd_check_spans", "ix_scd_check_spans_lookup"):
        op.create_index(
            "ix_scd_check_spans_lookup", "scd_check_spans", ["check_id", "vantage", "start"]
        )
    if missing_index("scd_check_spans", "ix_scd_check_spans_end"):
        op.create_index("ix_scd_check_spans_end", "scd_check_spans", ["end"])

    if missing("scd_check_machines"):
        op.create_table(
            "scd_check_machines",
            sa.Column("check_id", sa.String(200), primary_key=True),
            sa.Column("vantage", sa.String(63), primary_key=True),
            sa.Column(
                "snapshot",
                sa.JSON(),
                nullable=False,
                comment="state machine, incl. provisional tail",
            ),
            sa.Column("updated_at", UTC_DATETIME, nullable=False),
        )

    if missing("scd_tracker_cursors"):
        op.create_table(
            "scd_tracker_cursors",
            sa.Column("vantage", sa.String(63), primary_key=True),
            sa.Column("last_result_id", sa.BigInteger(), nullable=False),
            sa.Column("updated_at", UTC_DATETIME, nullable=False),
        )

    if missing("scd_latency_hourly"):
        op.create_table(
            "scd_latency_hourly",
            sa.Column("check_id", sa.String(200), primary_key=True),
            sa.Column("vantage", sa.String(63), primary_key=True),
            sa.Column("hour", UTC_DATETIME, primary_key=True),
            sa.Column("ok_count", sa.Integer(), nullable=False),
            sa.Column("under_threshold_count", sa.Integer(), nullable=False),
            sa.Column("histogram", sa.JSON(), nullable=False),
        )

    if missing("scd_directory_snapshots"):
        op.create_table(
            "scd_directory_snapshots",
            sa.Column(
                "source", sa.String(63), primary_key=True, comment="the catalog's xroad source id"
            ),
            sa.Column("instance", sa.String(63), nullable=False),
            sa.Column(
                "fetched_at",
                UTC_DATETIME,
                nullable=False,
                comment="when this directory was read",
            ),
            sa.Column(
                "last_success_at",
                UTC_DATETIME,
                nullable=False,
                comment="last successful read (it may have found nothing new)",
            ),
            sa.Column(
                "snapshot",
                sa.JSON(),
                nullable=False,
                comment="the last good directory (Directory JSON)",
            ),
            comment="the last good directory of each source: a restart diffs against it",
        )

    if missing("scd_directory_events"):
        op.create_table(
            "scd_directory_events",
            sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
            sa.Column("at", UTC_DATETIME, nullable=False),
            sa.Column("source", sa.String(63), nullable=False),
            sa.Column(
                "kind", sa.String(32), nullable=False, comment="member, subsystem, service, …"
            ),
            sa.Column(
                "change",
                sa.String(32),
                nullable=False,
                comment="appeared, disappeared, changed, …",
            ),
            sa.Column(
                "subject", sa.Text(), nullable=False, comment="the entity's X-Road identifier"
            ),
            sa.Column("details", sa.JSON(), nullable=True),
            comment="what changed in the X-Road directory, and when",
        )
    if missing_index("scd_directory_events", "ix_scd_directory_events_time"):
        op.create_index("ix_scd_directory_events_time", "scd_directory_events", ["at"])
    if missing_index("scd_directory_events", "ix_scd_directory_events_source"):
        op.create_index("ix_scd_directory_events_source", "scd_directory_events", ["source", "at"])

    if missing("scd_incident_trackers"):
        op.create_table(
            "scd_incident_trackers",
            sa.Column("provider", sa.String(63), primary_key=True),
            sa.Column("service", sa.String(63), primary_key=True),
            sa.Column("state", sa.JSON(), nullable=False, comment="lifecycle TrackerState"),
            sa.Column("revision", sa.Integer(), nullable=False, comment="optimistic concurrency"),
            sa.Column("updated_at", UTC_DATETIME, nullable=False),
        )

    if missing("scd_incidents"):
        op.create_table(
            "scd_incidents",
            sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
            sa.Column(
                "code", sa.String(32), nullable=False, unique=True, comment="SCD-YYYY-NNNNNN"
            ),
            sa.Column("provider", sa.String(63), nullable=False),
            sa.Column("service", sa.String(63), nullable=False),
            sa.Column(
                "generation",
                sa.Integer(),
                nullable=False,
                comment="the service's incident number",
            ),
            sa.Column(
                "open_key",
                sa.String(200),
                nullable=True,
                unique=True,
                comment=(
                    "provider/service while open, NULL once resolved: one open incident per service"
                ),
            ),
            sa.Column(
                "status",
                sa.String(16),
                nullable=False,
                comment="open, recovering, resolved",
            ),
            sa.Column("type", sa.String(32), nullable=False),
            sa.Column("severity", sa.String(16), nullable=False),
            sa.Column("kinds", sa.JSON(), nullable=False),
            sa.Column("started_at", UTC_DATETIME, nullable=False),
            sa.Column("detected_at", UTC_DATETIME, nullable=False),
            sa.Column("ended_at", UTC_DATETIME, nullable=True),
            sa.Column("resolved_at", UTC_DATETIME, nullable=True),
            sa.Column(
                "context",
                sa.JSON(),
                nullable=False,
                comment="names, conditions, impact, SLA impact",
            ),
            sa.Column("updated_at", UTC_DATETIME, nullable=False),
            sa.UniqueConstraint(
                "provider", "service", "generation", name="uq_scd_incidents_generation"
            ),
        )
    if missing_index("scd_incidents", "ix_scd_incidents_status"):
        op.create_index("ix_scd_incidents_status", "scd_incidents", ["status"])

    if missing("scd_incident_events"):
        op.create_table(
            "scd_incident_events",
            sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
            sa.Column("incident_id", BIG_ID, sa.ForeignKey("scd_incidents.id"), nullable=False),
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False, comment="opened, updated, resolved"),
            sa.Column("reason", sa.String(32), nullable=False),
            sa.Column("at", UTC_DATETIME, nullable=False),
            sa.Column("severity", sa.String(16), nullable=False),
            sa.Column("notify", sa.Boolean(), nullable=False),
            sa.Column("details", sa.JSON(), nullable=False),
            sa.UniqueConstraint("incident_id", "seq", name="uq_scd_incident_events_seq"),
        )

    if missing("scd_incident_notes"):
        op.create_table(
            "scd_incident_notes",
            sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
            sa.Column("incident_id", BIG_ID, sa.ForeignKey("scd_incidents.id"), nullable=False),
            sa.Column("at", UTC_DATETIME, nullable=False),
            sa.Column("author", sa.String(200), nullable=True),
            sa.Column("text", sa.Text(), nullable=False),
        )
    if missing_index("scd_incident_notes", "ix_scd_incident_notes_incident"):
        op.create_index("ix_scd_incident_notes_incident", "scd_incident_notes", ["incident_id"])

    if missing("scd_incident_reports"):
        op.create_table(
            "scd_incident_reports",
            sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
            sa.Column("incident_id", BIG_ID, sa.ForeignKey("scd_incidents.id"), nullable=False),
            sa.Column(
                "event_id",
                BIG_ID,
                sa.ForeignKey("scd_incident_events.id"),
                nullable=False,
                unique=True,
            ),
            sa.Column("created_at", UTC_DATETIME, nullable=False),
            sa.Column("schema_version", sa.Integer(), nullable=False),
            sa.Column(
                "body",
                sa.Text(),
                nullable=False,
                comment="the JSON document, the exact bytes sent",
            ),
            sa.Column("text", sa.Text(), nullable=False),
            sa.Column("html", sa.Text(), nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
        )

    if missing("scd_deliveries"):
        op.create_table(
            "scd_deliveries",
            sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
            sa.Column(
                "report_id", BIG_ID, sa.ForeignKey("scd_incident_reports.id"), nullable=False
            ),
            sa.Column("incident_id", BIG_ID, sa.ForeignKey("scd_incidents.id"), nullable=False),
            sa.Column("sink", sa.String(63), nullable=False),
            sa.Column("audience", sa.String(16), nullable=False),
            sa.Column(
                "recipient",
                sa.String(320),
                nullable=True,
                comment="the provider's contact, if any",
            ),
            sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
            sa.Column(
                "status",
                sa.String(16),
                nullable=False,
                comment="pending, in_flight, delivered, failed",
            ),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("next_attempt_at", UTC_DATETIME, nullable=False),
            sa.Column("claimed_until", UTC_DATETIME, nullable=True, comment="lease of the claim"),
            sa.Column("claim_token", sa.String(64), nullable=True),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.Column("last_attempt_at", UTC_DATETIME, nullable=True),
            sa.Column("delivered_at", UTC_DATETIME, nullable=True),
            sa.Column("created_at", UTC_DATETIME, nullable=False),
        )
    if missing_index("scd_deliveries", "ix_scd_deliveries_due"):
        op.create_index("ix_scd_deliveries_due", "scd_deliveries", ["status", "next_attempt_at"])
    if missing_index("scd_deliveries", "ix_scd_deliveries_incident"):
        op.create_index("ix_scd_deliveries_incident", "scd_deliveries", ["incident_id"])

    if missing("scd_incident_sequences"):
        op.create_table(
            "scd_incident_sequences",
            sa.Column("year", sa.Integer(), primary_key=True),
            sa.Column("last", sa.Integer(), nullable=False),
        )

    if missing("scd_incident_leases"):
        op.create_table(
            "scd_incident_leases",
            sa.Column("name", sa.String(63), primary_key=True),
            sa.Column("holder", sa.String(200), nullable=False),
            sa.Column("expires_at", UTC_DATETIME, nullable=False),
        )


def downgrade() -> None:
    for table in (
        "scd_incident_leases",
        "scd_incident_sequences",
        "scd_deliveries",
        "scd_incident_reports",
        "scd_incident_notes",
        "scd_incident_events",
        "scd_incidents",
        "scd_incident_trackers",
        "scd_directory_events",
        "scd_directory_snapshots",
        "scd_latency_hourly",
        "scd_tracker_cursors",
        "scd_check_machines",
        "scd_check_spans",
        "scd_probe_results",
        "scd_checks",
        "scd_schema",
    ):
        op.drop_table(table)
