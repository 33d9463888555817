"""Reading and writing the store: one class, plain domain values in and out.

All methods are blocking; the daemon calls them from the writer thread
(:mod:`scd_monitor.store.writer`) or through ``asyncio.to_thread``, never on the
event loop's hot path. Database errors are translated into :class:`StoreError`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from sqlalchemy import (
    URL,
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from scd_monitor.catalog.models import ResolvedCheck
from scd_monitor.errors import ConflictError, NoStoreDataError, StoreError
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.store.tables import (
    checks,
    directory_events,
    directory_snapshots,
    probe_results,
    tracker_cursors,
)
from scd_monitor.xroad.directory import Directory, DirectoryEvent

MESSAGE_MAX = 1000


@dataclass(frozen=True, slots=True)
class CheckRow:
    """A check as the store knows it, including retired ones."""

    id: str
    provider: str
    service: str
    check: str
    kind: str
    target: str
    interval_seconds: float
    timeout_seconds: float
    critical: bool
    first_seen: datetime
    last_seen: datetime
    retired_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredDirectory:
    """The last good directory of a source and when it was last read successfully."""

    directory: Directory
    last_success_at: datetime


def redacted_url(url: str) -> str:
    """The database URL with its password hidden, for logs and errors."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


Access = Literal["create", "write", "read"]
"""How a :class:`Store` opens its database: ``create`` (the daemon: an SQLite file and
its directory are made when missing), ``write`` (an existing database only, nothing
made) or ``read`` (an existing database, read-only)."""


class Store:
    """The probe results and the checks they belong to."""

    def __init__(self, url: str, *, echo: bool = False, access: Access = "create") -> None:
        self.url_for_humans = redacted_url(url)
        self.access: Access = access
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise StoreError(f"invalid database URL {self.url_for_humans}: {exc}") from None
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.dialect == "sqlite":
            path = _sqlite_path(parsed)
            if access != "create":
                # Opening must not make the file (nor its directory): check it is there,
                # then open it by URI in mode "ro" or "rw", which never creates.
                if path is None or not path.is_file():
                    raise NoStoreDataError(self.url_for_humans)
                kwargs["creator"] = partial(_sqlite_connect, path, readonly=access == "read")
            elif path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if path is None:
                # Every connection to ":memory:" is a new database; share one.
                from sqlalchemy.pool import StaticPool

                kwargs["poolclass"] = StaticPool
        elif self.dialect == "postgresql":
            kwargs["pool_pre_ping"] = True
            kwargs["pool_size"] = 4
            kwargs["connect_args"] = {"connect_timeout": 5}
            if access == "read":
                options = str(parsed.query.get("options") or "")
                kwargs["connect_args"]["options"] = (
                    f"{options} -c default_transaction_read_only=on".strip()
                )
        else:
            kwargs["poolclass"] = NullPool
        try:
            self.engine: Engine = create_engine(parsed, **kwargs)
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"cannot use database {self.url_for_humans}: {exc}") from None
        if self.dialect == "sqlite":
            pragmas = _sqlite_read_pragmas if access == "read" else _sqlite_pragmas
            event.listen(self.engine, "connect", pragmas)

    @classmethod
    def open_existing(cls, url: str, *, writable: bool = False, echo: bool = False) -> Store:
        """Open a database scd-monitor already wrote, for the commands that read it
        (``sla``, ``export sla``, ``incidents``, ``deliveries``, ``directory``,
        ``states``); ``writable`` for those that also write rows (a note, a retry, a
        rebuild). Nothing is created: no file, no directory, no table.

        :class:`NoStoreDataError` when scd-monitor never wrote it (a mistyped SQLite
        path, an empty or non-database file, a PostgreSQL database without its tables);
        :class:`StoreError` when a newer release wrote it or it must be upgraded first
        (see :func:`scd_monitor.store.schema.require_readable`).
        """
        from scd_monitor.store import schema

        store = cls(url, echo=echo, access="read")
        try:
            schema.require_readable(store)
        except BaseException:
            store.dispose()
            raise
        if not writable:
            return store
        store.dispose()
        return cls(url, echo=echo, access="write")

    @contextmanager
    def transaction(self, what: str) -> Iterator[Connection]:
        """One transaction; a driver error becomes one :class:`StoreError` line naming
        ``what`` and the (redacted) URL, a lost unique-key race a :class:`ConflictError`."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except StoreError:
            raise
        except IntegrityError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise ConflictError(
                f"{what}: lost a race with another process ({detail[0] if detail else exc})"
            ) from exc
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise StoreError(
                f"{what} failed on {self.url_for_humans}: {detail[0] if detail else exc}"
            ) from exc

    def create_schema(self) -> None:
        """Bring the database to this release's schema (:func:`scd_monitor.store.schema.
        upgrade`): create it when empty, migrate it when older, refuse it when newer."""
        from scd_monitor.store import schema

        if self.access == "read":
            raise StoreError(f"{self.url_for_humans} is open read-only; cannot change its schema")
        schema.upgrade(self)

    def ping(self) -> None:
        """Whether the database answers (:class:`StoreError` if not)."""
        with self.transaction("ping") as conn:
            conn.execute(select(literal(1)))

    def sync_checks(self, resolved: Sequence[ResolvedCheck], now: datetime) -> None:
        """Record the catalog's checks: new ones added, changed ones updated, missing retired.

        Only rows that differ are written; ``last_seen`` of every current check is set
        in one statement (a discovered catalog has tens of thousands of checks).
        """
        wanted = {c.id: c for c in resolved}
        with self.transaction("syncing checks") as conn:
            existing = {row.id: row for row in conn.execute(select(checks))}
            new_rows = []
            for ident, c in wanted.items():
                values: dict[str, Any] = {
                    "provider": c.provider,
                    "service": c.service,
                    "check": c.check,
                    "kind": c.kind,
                    "target": c.target,
                    "interval_seconds": c.interval.total_seconds(),
                    "timeout_seconds": c.timeout.total_seconds(),
                    "critical": c.critical,
                    "retired_at": None,
                }
                row = existing.get(ident)
                if row is None:
                    new_rows.append({"id": ident, "first_seen": now, "last_seen": now, **values})
                elif any(getattr(row, k) != v for k, v in values.items()):
                    conn.execute(update(checks).where(checks.c.id == ident).values(**values))
            if new_rows:
                conn.execute(insert(checks), new_rows)
            for ident, row in existing.items():
                if ident not in wanted and row.retired_at is None:
                    conn.execute(update(checks).where(checks.c.id == ident).values(retired_at=now))
            conn.execute(update(checks).where(checks.c.retired_at.is_(None)).values(last_seen=now))

    def checks(self, *, include_retired: bool = True) -> list[CheckRow]:
        query = select(checks).order_by(checks.c.id)
        if not include_retired:
            query = query.where(checks.c.retired_at.is_(None))
        with self.transaction("reading checks") as conn:
            return [CheckRow(**row._mapping) for row in conn.execute(query)]

    def write_results(self, results: Sequence[ProbeResult]) -> None:
        """Insert a batch of results in one transaction (all or nothing)."""
        if not results:
            return
        rows = [to_row(r) for r in results]
        with self.transaction(f"writing {len(rows)} probe results") as conn:
            conn.execute(insert(probe_results), rows)

    def results(
        self,
        *,
        check_id: str | None = None,
        vantage: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[ProbeResult]:
        """Results in time order, filtered; ``[since, until)``."""
        query = select(probe_results).order_by(probe_results.c.started_at, probe_results.c.id)
        if check_id is not None:
            query = query.where(probe_results.c.check_id == check_id)
        if vantage is not None:
            query = query.where(probe_results.c.vantage == vantage)
        if since is not None:
            query = query.where(probe_results.c.started_at >= since)
        if until is not None:
            query = query.where(probe_results.c.started_at < until)
        if limit is not None:
            query = query.limit(limit)
        with self.transaction("reading probe results") as conn:
            return [from_row(row._mapping) for row in conn.execute(query)]

    def prune_results(self, *, vantage: str, older_than: datetime, batch: int = 10_000) -> int:
        """Delete this vantage's raw results older than ``older_than`` that the state
        tracker has already turned into spans; return how many were deleted.

        Spans, machine snapshots and latency rollups are kept: the SLA of any past month
        stays computable; only re-deriving it from raw results needs them.
        """
        deleted = 0
        while True:
            with self.transaction("pruning probe results") as conn:
                cursor = conn.execute(
                    select(tracker_cursors.c.last_result_id).where(
                        tracker_cursors.c.vantage == vantage
                    )
                ).scalar()
                if cursor is None:
                    return deleted
                ids = (
                    select(probe_results.c.id)
                    .where(
                        probe_results.c.vantage == vantage,
                        probe_results.c.started_at < older_than,
                        probe_results.c.id <= cursor,
                    )
                    .limit(batch)
                )
                n = conn.execute(
                    delete(probe_results).where(probe_results.c.id.in_(ids.scalar_subquery()))
                ).rowcount
            deleted += n
            if n < batch:
                return deleted

    # -- X-Road directories -----------------------------------------------------------

    def directories(self) -> dict[str, StoredDirectory]:
        """The last good directory of every source that ever had one."""
        with self.transaction("reading directory snapshots") as conn:
            rows = conn.execute(select(directory_snapshots)).all()
        out = {}
        for row in rows:
            try:
                directory = Directory.from_json(row.snapshot)
            except (ValueError, KeyError, TypeError) as exc:
                raise StoreError(
                    f"directory snapshot of {row.source!r} is unreadable: {exc}"
                ) from exc
            out[row.source] = StoredDirectory(directory, row.last_success_at)
        return out

    def save_directory(
        self,
        source: str,
        *,
        directory: Directory | None = None,
        last_success_at: datetime | None = None,
        events: Sequence[DirectoryEvent] = (),
    ) -> None:
        """In one transaction: the source's new last good ``directory`` (when given), the
        time of its last successful read (when given) and ``events``."""
        with self.transaction(f"saving the directory of {source!r}") as conn:
            if directory is not None:
                success = last_success_at or directory.fetched_at
                values = {
                    "instance": directory.instance,
                    "fetched_at": directory.fetched_at,
                    "last_success_at": success,
                    "snapshot": directory.to_json(),
                }
                updated = conn.execute(
                    update(directory_snapshots)
                    .where(directory_snapshots.c.source == source)
                    .values(**values)
                ).rowcount
                if not updated:
                    conn.execute(insert(directory_snapshots).values(source=source, **values))
            elif last_success_at is not None:
                conn.execute(
                    update(directory_snapshots)
                    .where(directory_snapshots.c.source == source)
                    .values(last_success_at=last_success_at)
                )
            if events:
                conn.execute(
                    insert(directory_events),
                    [
                        {
                            "at": e.at,
                            "source": e.source,
                            "kind": e.kind,
                            "change": e.change,
                            "subject": e.subject,
                            "details": dict(e.details) or None,
                        }
                        for e in events
                    ],
                )

    def directory_events(
        self,
        *,
        source: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[DirectoryEvent]:
        """Stored directory events in time order, filtered; ``[since, until)``."""
        t = directory_events
        query = select(t).order_by(t.c.at, t.c.id)
        if source is not None:
            query = query.where(t.c.source == source)
        if since is not None:
            query = query.where(t.c.at >= since)
        if until is not None:
            query = query.where(t.c.at < until)
        if limit is not None:
            query = query.limit(limit)
        with self.transaction("reading directory events") as conn:
            return [
                DirectoryEvent(
                    at=row.at,
                    source=row.source,
                    kind=row.kind,
                    change=row.change,
                    subject=row.subject,
                    details=dict(row.details or {}),
                    id=int(row.id),
                )
                for row in conn.execute(query)
            ]

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_path(url: URL) -> Path | None:
    """The file of an SQLite URL; None for an in-memory database."""
    database = url.database or ""
    if str(url.query.get("uri", "")).lower() in ("true", "1") and database.startswith("file:"):
        # sqlite:///file:path?mode=...&uri=true
        parts = urlsplit(database)
        if url.query.get("mode") == "memory" or parts.path in ("", ":memory:"):
            return None
        return Path(unquote(parts.path))
    if database in ("", ":memory:"):
        return None
    return Path(database)


def _sqlite_connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """Open an existing SQLite file; mode ``ro``/``rw`` never creates one."""
    mode = "ro" if readonly else "rw"
    return sqlite3.connect(
        f"{path.resolve().as_uri()}?mode={mode}", uri=True, check_same_thread=False, timeout=30
    )


def _sqlite_read_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA query_only=ON")
    finally:
        cursor.close()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def to_row(result: ProbeResult) -> dict[str, Any]:
    o = result.outcome
    message = o.message
    if message is not None and len(message) > MESSAGE_MAX:
        message = message[: MESSAGE_MAX - 1] + "…"
    return {
        "check_id": result.check_id,
        "vantage": result.vantage,
        "started_at": result.started_at,
        "duration_seconds": result.duration,
        "ok": o.ok,
        "error_kind": o.error_kind.value if o.error_kind else None,
        "message": message,
        "status_code": o.status_code,
        "phases": dict(o.phases) or None,
        "cert_not_after": o.cert_not_after,
        "details": {"kind": result.kind, **o.details},
    }


def from_row(row: Any) -> ProbeResult:
    details = dict(row["details"] or {})
    kind = str(details.pop("kind", ""))
    return ProbeResult(
        check_id=row["check_id"],
        kind=kind,
        vantage=row["vantage"],
        started_at=row["started_at"],
        duration=row["duration_seconds"],
        outcome=Outcome(
            ok=row["ok"],
            error_kind=ErrorKind(row["error_kind"]) if row["error_kind"] else None,
            message=row["message"],
            status_code=row["status_code"],
            phases=dict(row["phases"] or {}),
            cert_not_after=row["cert_not_after"],
            details=details,
        ),
    )
