"""The incidents' tables, on the store's shared ``metadata`` (import this module before
:meth:`Store.create_schema` so that ``create_all`` makes them).

::

    scd_incident_trackers   per service: the lifecycle state (JSON) and a revision
    scd_incidents           one row per incident: SCD-YYYY-NNNNNN, type, severity, times
    scd_incident_events     opened / updated / resolved, in order (seq per incident)
    scd_incident_notes      actions taken, added by operators
    scd_incident_reports    the immutable report of each reported event (JSON + renderings)
    scd_deliveries          the outbox: one row per (report, sink), idempotency key unique
    scd_incident_sequences  per year, the last number given (allocated transactionally)
    scd_incident_leases     which daemon evaluates incidents (one at a time per database)
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from scd_monitor.store.tables import UTCDateTime, _BigId, metadata

__all__ = [
    "deliveries",
    "incident_events",
    "incident_leases",
    "incident_notes",
    "incident_reports",
    "incident_sequences",
    "incident_trackers",
    "incidents",
]

incident_trackers = Table(
    "scd_incident_trackers",
    metadata,
    Column("provider", String(63), primary_key=True),
    Column("service", String(63), primary_key=True),
    Column("state", JSON, nullable=False, comment="lifecycle TrackerState"),
    Column("revision", Integer, nullable=False, comment="optimistic concurrency"),
    Column("updated_at", UTCDateTime, nullable=False),
)

incidents = Table(
    "scd_incidents",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("code", String(32), nullable=False, unique=True, comment="SCD-YYYY-NNNNNN"),
    Column("provider", String(63), nullable=False),
    Column("service", String(63), nullable=False),
    Column("generation", Integer, nullable=False, comment="the service's incident number"),
    Column(
        "open_key",
        String(200),
        nullable=True,
        unique=True,
        comment="provider/service while open, NULL once resolved: one open incident per service",
    ),
    Column("status", String(16), nullable=False, comment="open, recovering, resolved"),
    Column("type", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("kinds", JSON, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("detected_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("context", JSON, nullable=False, comment="names, conditions, impact, SLA impact"),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("provider", "service", "generation", name="uq_scd_incidents_generation"),
    Index("ix_scd_incidents_status", "status"),
)

incident_events = Table(
    "scd_incident_events",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("incident_id", _BigId, ForeignKey("scd_incidents.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(16), nullable=False, comment="opened, updated, resolved"),
    Column("reason", String(32), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("notify", Boolean, nullable=False),
    Column("details", JSON, nullable=False),
    UniqueConstraint("incident_id", "seq", name="uq_scd_incident_events_seq"),
)

incident_notes = Table(
    "scd_incident_notes",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("incident_id", _BigId, ForeignKey("scd_incidents.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("author", String(200), nullable=True),
    Column("text", Text, nullable=False),
    Index("ix_scd_incident_notes_incident", "incident_id"),
)

incident_reports = Table(
    "scd_incident_reports",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("incident_id", _BigId, ForeignKey("scd_incidents.id"), nullable=False),
    Column("event_id", _BigId, ForeignKey("scd_incident_events.id"), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("body", Text, nullable=False, comment="the JSON document, the exact bytes sent"),
    Column("text", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
)

deliveries = Table(
    "scd_deliveries",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("report_id", _BigId, ForeignKey("scd_incident_reports.id"), nullable=False),
    Column("incident_id", _BigId, ForeignKey("scd_incidents.id"), nullable=False),
    Column("sink", String(63), nullable=False),
    Column("audience", String(16), nullable=False),
    Column("recipient", String(320), nullable=True, comment="the provider's contact, if any"),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("status", String(16), nullable=False, comment="pending, in_flight, delivered, failed"),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_until", UTCDateTime, nullable=True, comment="lease of the claim"),
    Column("claim_token", String(64), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_scd_deliveries_due", "status", "next_attempt_at"),
    Index("ix_scd_deliveries_incident", "incident_id"),
)

incident_sequences = Table(
    "scd_incident_sequences",
    metadata,
    Column("year", Integer, primary_key=True),
    Column("last", Integer, nullable=False),
)

incident_leases = Table(
    "scd_incident_leases",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
