"""SQLAlchemy tables. Every timestamp is stored in UTC.

The same schema runs on SQLite (default, WAL mode) and PostgreSQL (production).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

SCHEMA_VERSION = 1


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# BigInteger primary keys become INTEGER on SQLite so that they autoincrement there.
_BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

schema_info = Table(
    "scd_schema",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

checks = Table(
    "scd_checks",
    metadata,
    Column("id", String(200), primary_key=True, comment="provider/service/check"),
    Column("provider", String(63), nullable=False),
    Column("service", String(63), nullable=False),
    Column("check", String(63), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("target", Text, nullable=False),
    Column("interval_seconds", Float, nullable=False),
    Column("timeout_seconds", Float, nullable=False),
    Column("critical", Boolean, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime, nullable=True, comment="left the catalog; history kept"),
)

probe_results = Table(
    "scd_probe_results",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("check_id", String(200), nullable=False),
    Column("vantage", String(63), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("duration_seconds", Float, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("error_kind", String(16), nullable=True),
    Column("message", Text, nullable=True),
    Column("status_code", SmallInteger, nullable=True),
    Column("phases", JSON, nullable=True),
    Column("cert_not_after", UTCDateTime, nullable=True),
    Column("details", JSON, nullable=True),
    Index("ix_scd_probe_results_check_time", "check_id", "vantage", "started_at"),
    Index("ix_scd_probe_results_time", "started_at"),
)

# -- state tracking (SLA) -------------------------------------------------------------

check_spans = Table(
    "scd_check_spans",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("check_id", String(200), nullable=False),
    Column("vantage", String(63), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", String(200), nullable=True),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Index("ix_scd_check_spans_lookup", "check_id", "vantage", "start"),
    Index("ix_scd_check_spans_end", "end"),
    comment="final state spans [start, end) per check and vantage; gaps are UNKNOWN",
)

check_machines = Table(
    "scd_check_machines",
    metadata,
    Column("check_id", String(200), primary_key=True),
    Column("vantage", String(63), primary_key=True),
    Column("snapshot", JSON, nullable=False, comment="state machine, incl. provisional tail"),
    Column("updated_at", UTCDateTime, nullable=False),
)

tracker_cursors = Table(
    "scd_tracker_cursors",
    metadata,
    Column("vantage", String(63), primary_key=True),
    Column("last_result_id", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

latency_hourly = Table(
    "scd_latency_hourly",
    metadata,
    Column("check_id", String(200), primary_key=True),
    Column("vantage", String(63), primary_key=True),
    Column("hour", UTCDateTime, primary_key=True),
    Column("ok_count", Integer, nullable=False),
    Column("under_threshold_count", Integer, nullable=False),
    Column("histogram", JSON, nullable=False),
)

# -- X-Road directory discovery --------------------------------------------------------

directory_snapshots = Table(
    "scd_directory_snapshots",
    metadata,
    Column("source", String(63), primary_key=True, comment="the catalog's xroad source id"),
    Column("instance", String(63), nullable=False),
    Column("fetched_at", UTCDateTime, nullable=False, comment="when this directory was read"),
    Column(
        "last_success_at",
        UTCDateTime,
        nullable=False,
        comment="last successful read (it may have found nothing new)",
    ),
    Column("snapshot", JSON, nullable=False, comment="the last good directory (Directory JSON)"),
    comment="the last good directory of each source: a restart diffs against it",
)

directory_events = Table(
    "scd_directory_events",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("source", String(63), nullable=False),
    Column("kind", String(32), nullable=False, comment="member, subsystem, service, …"),
    Column("change", String(32), nullable=False, comment="appeared, disappeared, changed, …"),
    Column("subject", Text, nullable=False, comment="the entity's X-Road identifier"),
    Column("details", JSON, nullable=True),
    Index("ix_scd_directory_events_time", "at"),
    Index("ix_scd_directory_events_source", "source", "at"),
    comment="what changed in the X-Road directory, and when",
)
