"""Probe results: the raw rows every SLA figure is derived from.

All methods are blocking; the daemon calls them from the writer thread
(:mod:`scd_monitor.store.writer`) or through ``asyncio.to_thread``, never on the
event loop's hot path. Database errors are translated into :class:`StoreError`.

A result is stored once: its identity is (check, vantage, started_at) (the unique index
``uq_scd_probe_results_run``), and writes skip a result already stored.

No value can make a write fail for everyone (issue 12): every row is made storable
before it is written (text cleaned by :func:`scd_monitor.sanitize.clean_text`: lone
UTF-16 surrogates become U+FFFD, NUL its picture; JSON details cleaned recursively;
non-finite numbers, out-of-range status codes, unknown error kinds and over-long
identifiers replaced), and a row so changed says so in its details
(``details["internal"]``). What the database still refuses is reported as
:class:`RejectedRowsError` (the rows, not the connection: the writer isolates them and
stores each through :meth:`ResultRepository.write_isolated`), never as a transient
:class:`StoreError` (database unreachable: retried as it is).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Insert, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from scd_monitor import sanitize
from scd_monitor.errors import StoreError
from scd_monitor.probes.base import ErrorKind, Outcome, ProbeResult
from scd_monitor.store.engine import Store
from scd_monitor.store.tables import PROBE_RESULT_KEY, probe_results, tracker_cursors

log = structlog.get_logger("scd_monitor.store")

MESSAGE_MAX = 1000
NOTE_KEY = "internal"
"""The key of ``details`` that says a result was stored in a changed form, and why."""

# Column limits of scd_probe_results (PostgreSQL enforces them; SQLite does not).
_CHECK_ID_MAX = 200
_VANTAGE_MAX = 63
_ERROR_KIND_MAX = 16
_SMALLINT = range(-32768, 32768)
_NOTE_MAX = 300
_ERROR_KINDS = frozenset(kind.value for kind in ErrorKind)


class RejectedRowsError(StoreError):
    """The database refused the rows themselves (a value it cannot take, a constraint),
    not the connection: the same rows would fail the same way again, so the writer
    isolates the bad ones instead of retrying."""


class ResultRepository:
    """Writing, reading and pruning probe results."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, results: Sequence[ProbeResult]) -> int:
        """Insert a batch of results in one transaction (all or nothing); a result
        already stored is skipped. Every row is made storable first (see the module
        doc); returns how many were changed to be (each logged and marked).

        :class:`RejectedRowsError` when the database refuses a row; :class:`StoreError`
        when it cannot be reached (or a transaction fails for a reason of its own).
        """
        if not results:
            return 0
        rows: list[dict[str, Any]] = []
        changed: list[tuple[dict[str, Any], list[str]]] = []
        for result in results:
            row, notes = storable_row(to_row(result))
            if notes:
                changed.append((row, notes))
            rows.append(row)
        self._insert(rows, f"writing {len(rows)} probe results")
        for row, notes in changed:
            log.warning(
                "store.result_sanitised",
                check=row["check_id"],
                started_at=str(row["started_at"]),
                replaced=notes,
            )
        return len(changed)

    def write_isolated(self, result: ProbeResult, refusal: BaseException) -> None:
        """Store a result the database refused even once made storable (``refusal``
        says how): its identity and verdict (check, vantage, start, duration, ok, error
        kind), its message in ASCII, and a note in ``details`` instead of its evidence.
        Raises as :meth:`write` does when even that is refused."""
        row, notes = storable_row(to_row(result))
        for key in ("started_at", "cert_not_after"):
            # A naive time is a bug of ours (write refuses it); here the result is kept.
            value = row[key]
            if isinstance(value, datetime) and value.tzinfo is None:
                row[key] = value.replace(tzinfo=UTC)
                notes.append(f"{key} (naive, taken as UTC)")
        if row["cert_not_after"] is not None and not isinstance(row["cert_not_after"], datetime):
            row["cert_not_after"] = None
            notes.append("cert_not_after")
        reason = one_line(refusal)
        kept = ", ".join(notes)
        row.update(
            message=None if row["message"] is None else _ascii(row["message"]),
            phases=None,
            details={
                "kind": _ascii(str(row["details"].get("kind", ""))),
                NOTE_KEY: _cut(
                    "store: the database refused this result "
                    f"({_ascii(reason)}); stored without its details"
                    + (f"; replaced {_ascii(kept)}" if kept else ""),
                    _NOTE_MAX,
                ),
            },
        )
        self._insert([row], "writing 1 isolated probe result")

    def _insert(self, rows: list[dict[str, Any]], what: str) -> None:
        try:
            with self.store.transaction(what) as conn:
                conn.execute(self._statement(), rows)
        except StoreError as exc:
            if transient(exc):
                raise
            # The driver's words, without the database URL (they may end up in a row).
            cause = exc.__cause__
            raise RejectedRowsError(
                f"{what}: {one_line(getattr(cause, 'orig', None) or cause or exc)}"
            ) from exc
        except (ValueError, TypeError, OverflowError) as exc:
            # The driver's own refusals (UnicodeEncodeError is a ValueError): the
            # connection is fine, a value is not.
            raise RejectedRowsError(f"{what}: {one_line(exc)}") from exc

    def _statement(self) -> Insert:
        """INSERT that skips a result already stored (same run), on both databases."""
        if self.store.dialect == "postgresql":
            return postgresql.insert(probe_results).on_conflict_do_nothing(
                index_elements=list(PROBE_RESULT_KEY)
            )
        if self.store.dialect == "sqlite":
            return sqlite.insert(probe_results).on_conflict_do_nothing(
                index_elements=list(PROBE_RESULT_KEY)
            )
        return insert(probe_results)

    def read(
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
        with self.store.transaction("reading probe results") as conn:
            return [from_row(row._mapping) for row in conn.execute(query)]

    def prune(self, *, vantage: str, older_than: datetime, batch: int = 10_000) -> int:
        """Delete this vantage's raw results older than ``older_than`` that the state
        tracker has already turned into spans; return how many were deleted.

        Spans, machine snapshots and latency rollups are kept: the SLA of any past month
        stays computable; only re-deriving it from raw results needs them.
        """
        deleted = 0
        while True:
            with self.store.transaction("pruning probe results") as conn:
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


def to_row(result: ProbeResult) -> dict[str, Any]:
    """The ``probe_results`` row of a result (its message cut to :data:`MESSAGE_MAX`)."""
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
    """The result of a ``probe_results`` row (a mapping)."""
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


def transient(exc: StoreError) -> bool:
    """Whether a store error is the database being away (refused, reset, timed out,
    locked, out of space) rather than a row it will never take."""
    cause = exc.__cause__
    if getattr(cause, "connection_invalidated", False):
        return True
    return isinstance(
        cause, OperationalError | InterfaceError | DisconnectionError | PoolTimeoutError
    )


# -- making a row storable ------------------------------------------------------------
#
# The edge (Outcome, scd_monitor.sanitize) cleans what targets send; the store must
# survive what gets past it on its own (identifiers, replayed spool lines, bugs), with
# the same rules: lone surrogates become U+FFFD, NUL and other controls their pictures.


def clean_text(text: str) -> tuple[str, int]:
    """``text`` as valid, NUL-free Unicode (no length limit: the columns decide), and
    1 if anything was replaced (0 if not)."""
    cleaned = sanitize.clean_text(text, limit=None)
    return cleaned, int(cleaned != text)


def one_line(exc: BaseException) -> str:
    """The first line of an error, storable and loggable."""
    lines = str(exc).strip().splitlines()
    return clean_text(lines[0] if lines else type(exc).__name__)[0]


def storable_row(row: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of a ``probe_results`` row that any database takes, and what was replaced
    (empty when nothing was). A changed row says so in ``details["internal"]``."""
    out = dict(row)
    notes: list[str] = []
    for key, limit in (
        ("check_id", _CHECK_ID_MAX),
        ("vantage", _VANTAGE_MAX),
        ("error_kind", _ERROR_KIND_MAX),
        ("message", None),
    ):
        value = out[key]
        if value is None:
            continue
        text, n = clean_text(str(value))
        if n or not isinstance(value, str):
            notes.append(key)
        if limit is not None and len(text) > limit:
            text = text[:limit]
            notes.append(f"{key} (cut to {limit} characters)")
        out[key] = text
    if not isinstance(out["ok"], bool):
        out["ok"] = bool(out["ok"])
        notes.append("ok")
    if out["error_kind"] is not None and out["error_kind"] not in _ERROR_KINDS:
        out["error_kind"] = ErrorKind.INTERNAL.value  # readers know only these
        notes.append("error_kind")
    duration = out["duration_seconds"]
    if not _finite(duration) or isinstance(duration, bool) or duration < 0:
        out["duration_seconds"] = 0.0
        notes.append(f"duration_seconds ({_ascii(repr(duration))})")
    status = out["status_code"]
    if status is not None and (type(status) is not int or status not in _SMALLINT):
        out["status_code"] = None
        notes.append(f"status_code ({_ascii(repr(status))[:20]})")
    if out["phases"] is not None:
        phases: dict[str, float] = {}
        for name, seconds in dict(out["phases"]).items():
            key, n = clean_text(str(name))
            if _finite(seconds) and not isinstance(seconds, bool):
                phases[key] = float(seconds)
            else:
                notes.append(f"phases.{key} (dropped: {_ascii(repr(seconds))[:20]})")
                continue
            if n:
                notes.append(f"phases.{key}")
        out["phases"] = phases or None
    details = out["details"]
    if details is not None:
        out["details"] = _clean_json(details, "details", notes)
        if not isinstance(out["details"], dict):
            out["details"] = {"value": out["details"]}
    if notes:
        details = dict(out["details"] or {})
        details[NOTE_KEY] = _cut(
            "store: replaced unstorable values in " + ", ".join(notes),
            _NOTE_MAX,
        )
        out["details"] = details
    return out, notes


def _clean_json(value: Any, path: str, notes: list[str]) -> Any:
    """JSON-able ``value``, recursively: text cleaned, non-finite numbers and other
    objects written as text. ``notes`` gets the path of every value replaced."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        notes.append(path)
        return repr(value)
    if isinstance(value, str):
        text, n = clean_text(value)
        if n:
            notes.append(path)
        return text
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name, n = clean_text(key if isinstance(key, str) else str(key))
            if n or not isinstance(key, str):
                notes.append(f"{path} key {_ascii(name)[:40]!r}")
            out[name] = _clean_json(item, f"{path}.{_ascii(name)[:40]}", notes)
        return out
    if isinstance(value, list | tuple):
        return [_clean_json(item, f"{path}[{i}]", notes) for i, item in enumerate(value)]
    notes.append(f"{path} ({type(value).__name__} as text)")
    return clean_text(str(value))[0]


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _ascii(text: str) -> str:
    """Cleaned ``text`` in ASCII (anything else as a backslash escape)."""
    return clean_text(text)[0].encode("ascii", "backslashreplace").decode("ascii")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
