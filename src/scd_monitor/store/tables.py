"""Every table of scd-monitor, on one ``metadata``. Every timestamp is stored in UTC.

The same schema runs on SQLite (default, WAL mode) and PostgreSQL (production). It is
made and changed only by the migrations in :mod:`scd_monitor.store.migrations` (see
:mod:`scd_monitor.store.schema`): a change here needs a new revision, and the tests
compare the migrated database with this module.

::

    scd_schema              the pre-Alembic schema version (1), kept for older readers
    scd_checks              the catalog's checks, retired ones included
    scd_probe_results       raw probe results, one per (check, vantage, start)
    scd_check_spans         final state spans per check and vantage (SLA)
    scd_check_machines      the state machines' snapshots
    scd_tracker_cursors     per vantage: the last result turned into spans
    scd_latency_hourly      latency rollups per check, vantage and hour
    scd_latency_daily       the same summed per UTC day (a month reads ~30 rows a check)
    scd_directory_snapshots the last good X-Road directory of each source
    scd_directory_events    what changed in the X-Road directory
    scd_incident_trackers   per service: the lifecycle state (JSON) and a revision
    scd_incidents           one row per incident: SCD-YYYY-NNNNNN, type, severity, times
    scd_incident_events     opened / updated / resolved, in order (seq per incident)
    scd_incident_notes      actions taken, added by operators
    scd_incident_reports    the immutable report of each reported event (JSON + renderings)
    scd_deliveries          the outbox: one row per (report, sink), idempotency key unique
    scd_incident_sequences  per year, the last number given (allocated transactionally)
    scd_incident_leases     which daemon evaluates incidents (one at a time per database)
    scd_xroad_usage         X-Road operational data records, counted per 15 minutes and key
    scd_xroad_usage_cursors per source and security server: where the next page starts
    scd_frozen_months       per closed month: its export's figures, frozen (canonical JSON)
    scd_frozen_month_history every earlier freeze of a month that was recomputed
    scd_oidc_keys           per OIDC check and vantage: the key ids its JWKS last listed
    scd_oidc_key_events     keys that appeared in or disappeared from an OIDC provider's JWKS
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

SCHEMA_VERSION = 1
"""What ``scd_schema.version`` holds. Releases before Alembic refuse a database whose
version is higher than theirs, so a revision that older releases must not run on sets
it higher (and this constant with it); :func:`scd_monitor.store.schema.upgrade` refuses
a database whose version is higher than this."""


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
    # A result's identity: one run of one check from one vantage starts once. Writes
    # skip a result already stored (ON CONFLICT DO NOTHING), so a batch written again (a
    # replayed spool, a retry after a lost commit) is stored once. Also the lookup index.
    Index("uq_scd_probe_results_run", "check_id", "vantage", "started_at", unique=True),
    Index("ix_scd_probe_results_time", "started_at"),
)

PROBE_RESULT_KEY = ("check_id", "vantage", "started_at")
"""The columns of ``uq_scd_probe_results_run``: what makes a stored result the same one."""

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
    # A period's edge hours (and retention-free range reads) without a full scan.
    Index("ix_scd_latency_hourly_hour", "hour"),
)

latency_daily = Table(
    "scd_latency_daily",
    metadata,
    Column("check_id", String(200), primary_key=True),
    Column("vantage", String(63), primary_key=True),
    Column("day", UTCDateTime, primary_key=True, comment="00:00 UTC of the day"),
    Column("ok_count", Integer, nullable=False),
    Column("under_threshold_count", Integer, nullable=False),
    Column("histogram", JSON, nullable=False),
    comment="scd_latency_hourly summed per UTC day, kept in the same transactions",
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

# -- OIDC providers' signing keys (checks of kind oidc) ------------------------------------

oidc_keys = Table(
    "scd_oidc_keys",
    metadata,
    Column("check_id", String(200), primary_key=True),
    Column("vantage", String(63), primary_key=True),
    Column("kids", JSON, nullable=False, comment="the key ids the JWKS listed, sorted"),
    Column("seen_at", UTCDateTime, nullable=False, comment="the result they were seen in"),
    Column("token_kid", String(255), nullable=True, comment="the key of the last token"),
    Column(
        "token_valid_until",
        UTCDateTime,
        nullable=True,
        comment="until when that token (signed by token_kid) is valid",
    ),
    comment="per OIDC check and vantage: what its JWKS last listed (key events diff it)",
)

oidc_key_events = Table(
    "scd_oidc_key_events",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, comment="start of the probe that saw it"),
    Column("check_id", String(200), nullable=False),
    Column("vantage", String(63), nullable=False),
    Column("change", String(32), nullable=False, comment="appeared, disappeared"),
    Column("kid", String(255), nullable=False),
    Column(
        "early",
        Boolean,
        nullable=False,
        comment="disappeared while a token it signed may still be valid",
    ),
    Column("details", JSON, nullable=True, comment="kids before and after, the token's validity"),
    Index("ix_scd_oidc_key_events_time", "at"),
    Index("ix_scd_oidc_key_events_check", "check_id", "at"),
    comment="keys that appeared in or disappeared from an OIDC provider's JWKS",
)

# -- incidents ---------------------------------------------------------------------------

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

# -- use of the X-Road platform (operational monitoring) ---------------------------------

USAGE_DURATION_BOUNDS_MS: tuple[int, ...] = (
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 60000,
)  # fmt: skip
"""Upper bounds (ms, inclusive) of the request duration histogram of ``scd_xroad_usage``,
one column each (``hist_<bound>``), then ``hist_inf``. Part of the schema: changing them
needs a revision (:data:`scd_monitor.store.usage.DURATION_BUCKETS_MS` is this tuple)."""

USAGE_HISTOGRAM_COLUMNS = (*(f"hist_{b}" for b in USAGE_DURATION_BOUNDS_MS), "hist_inf")
"""The histogram's columns, in bucket order (``+Inf`` last)."""


def _usage_bucket_comments() -> list[str]:
    bounds = USAGE_DURATION_BOUNDS_MS
    inner = [f"records of ({low}, {high}] ms" for low, high in pairwise(bounds)]
    return [f"records of at most {bounds[0]} ms", *inner, f"records over {bounds[-1]} ms"]


USAGE_KEY = (
    "bucket_start",
    "source",
    "security_server",
    "side",
    "client",
    "service",
    "succeeded",
    "fault_code",
)
"""The primary key of ``scd_xroad_usage`` (the UPSERT's conflict target), time first so
that periods and retention are range scans of it."""

xroad_usage = Table(
    "scd_xroad_usage",
    metadata,
    Column("bucket_start", UTCDateTime, primary_key=True, comment="UTC, a multiple of 15 min"),
    Column("source", String(63), primary_key=True, comment="the catalog's xroad source id"),
    Column("security_server", String(255), primary_key=True, comment="whose records these are"),
    Column("side", String(8), primary_key=True, comment="Client or Producer (the record's)"),
    Column("client", String(255), primary_key=True, comment="client identifier, '' if none"),
    Column("service", String(255), primary_key=True, comment="service identifier, '' if none"),
    Column("succeeded", Boolean, primary_key=True),
    Column("fault_code", String(255), primary_key=True, comment="'' when none"),
    Column("provider_member", String(255), nullable=False, comment="the service's member"),
    Column("count", Integer, nullable=False, comment="records"),
    Column("duration_count", Integer, nullable=False, comment="records with a duration"),
    Column("duration_sum_ms", BigInteger, nullable=False),
    *(
        Column(name, Integer, nullable=False, comment=comment)
        for name, comment in zip(USAGE_HISTOGRAM_COLUMNS, _usage_bucket_comments(), strict=True)
    ),
    Column("request_bytes", BigInteger, nullable=False),
    Column("response_bytes", BigInteger, nullable=False),
    comment="X-Road operational data records counted per 15 minutes (raw records are not kept)",
)

xroad_usage_cursors = Table(
    "scd_xroad_usage_cursors",
    metadata,
    Column("source", String(63), primary_key=True),
    Column("security_server", String(255), primary_key=True),
    Column(
        "next_records_from",
        BigInteger,
        nullable=False,
        comment="Unix seconds: the records before it are counted",
    ),
    Column("records_total", BigInteger, nullable=False),
    Column("refused_total", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    comment="per security server: where its next page of operational data starts",
)

# -- closed months, frozen (issue 14) -----------------------------------------------------


def _frozen_month_columns(*, history: bool) -> list[Column[Any]]:
    """The columns ``scd_frozen_months`` (one row per month) and
    ``scd_frozen_month_history`` (one per month and revision) share."""
    return [
        Column("month", String(7), primary_key=True, comment="YYYY-MM in the catalog's zone"),
        Column(
            "revision",
            Integer,
            primary_key=history,
            nullable=False,
            comment="1 for the first freeze, one more per recomputation",
        ),
        Column("timezone", String(64), nullable=False),
        Column("frozen_at", UTCDateTime, nullable=False),
        Column("frozen_by", String(255), nullable=False, comment="daemon, or user@host"),
        Column(
            "reason",
            Text,
            nullable=False,
            comment="'closed' (automatic freeze) or the operator's reason",
        ),
        Column("software_version", String(64), nullable=False),
        Column("catalog_version", String(255), nullable=True),
        Column("export_version", Integer, nullable=False),
        Column("document_version", Integer, nullable=False),
        Column(
            "document", Text, nullable=False, comment="the month's export, canonical JSON (exact)"
        ),
        Column("sha256", String(64), nullable=False, comment="SHA-256 of document (UTF-8)"),
        Column(
            "report_sha256",
            String(64),
            nullable=False,
            comment="SHA-256 of the JSON export rendered from it when frozen",
        ),
    ]


frozen_months = Table(
    "scd_frozen_months",
    metadata,
    *_frozen_month_columns(history=False),
    comment="the figures of each closed month, frozen: exports of it read them",
)

frozen_month_history = Table(
    "scd_frozen_month_history",
    metadata,
    *_frozen_month_columns(history=True),
    Column("superseded_at", UTCDateTime, nullable=False),
    Column("superseded_by", String(255), nullable=False, comment="who recomputed it"),
    comment="every earlier freeze of a recomputed month, never overwritten",
)
