"""Closed months, frozen: the figures of each month's export, stored once it closes.

A frozen month is one row of ``scd_frozen_months``: the month's export as canonical
JSON (``document``: the exact text; what it holds is
:mod:`scd_monitor.exports.model`'s business, see ``freeze_document``), its SHA-256
(checked on every read: a document that does not match is refused, never used), the
SHA-256 of the JSON export rendered from it when it was frozen, and who froze it, when
and why: ``closed`` for the daemon's freeze of a month that ended, the operator's text
for a recomputation (``scd-monitor sla recompute``).

A month is frozen once (:meth:`FrozenMonthRepository.freeze` does nothing when it is
frozen already, also when two processes race). Only :meth:`FrozenMonthRepository.recompute`
replaces it, with a reason, in one transaction that first copies the current row into
``scd_frozen_month_history`` (with when and by whom it was superseded) and only then
writes the next revision: nothing is ever overwritten without a trace.

A database of a release before these tables (revision 0003, opened read-only as it is:
:data:`scd_monitor.store.schema.READABLE_WITHOUT`) has no frozen month; writing to it
says to upgrade it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, insert, inspect, select, update

from scd_monitor.errors import ConflictError, StoreError
from scd_monitor.sanitize import clean_text
from scd_monitor.store.engine import Store
from scd_monitor.store.tables import frozen_month_history, frozen_months
from scd_monitor.timefmt import iso_utc

__all__ = [
    "CLOSED",
    "REASON_LIMIT",
    "FrozenMonth",
    "FrozenMonthInfo",
    "FrozenMonthRepository",
    "NewFreeze",
    "clean_reason",
    "document_sha256",
]

CLOSED = "closed"
"""The reason of the automatic freeze of a month that ended."""

REASON_LIMIT = 1000
"""Characters of an operator's reason kept (the rest is marked as cut)."""

_INFO_COLUMNS = [c for c in frozen_months.c if c.name != "document"]


def document_sha256(document: str) -> str:
    """The SHA-256 of a frozen document (its UTF-8 bytes), as stored beside it."""
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def clean_reason(reason: str) -> str:
    """An operator's reason as it is stored: one clean line of text, not empty.

    :class:`ValueError` for an empty (or blank) reason.
    """
    text = " ".join(clean_text(reason, limit=REASON_LIMIT).split())
    if not text:
        raise ValueError("a reason is required")
    return text


@dataclass(frozen=True, slots=True)
class FrozenMonthInfo:
    """A frozen month without its document: what ``scd-monitor sla frozen`` lists."""

    month: str
    """``YYYY-MM`` in the catalog's time zone."""
    revision: int
    """1 for the first freeze, one more per recomputation."""
    timezone: str
    frozen_at: datetime
    frozen_by: str
    reason: str
    """:data:`CLOSED` for the automatic freeze, else the operator's reason."""
    software_version: str
    catalog_version: str | None
    export_version: int
    document_version: int
    sha256: str
    """SHA-256 of the document."""
    report_sha256: str
    """SHA-256 of the JSON export rendered from the document when it was frozen (the
    manifest's ``report_sha256`` of an export of it made by the same software)."""
    superseded_at: datetime | None = None
    """History rows only: when a recomputation replaced this revision."""
    superseded_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "revision": self.revision,
            "timezone": self.timezone,
            "frozen_at": iso_utc(self.frozen_at),
            "frozen_by": self.frozen_by,
            "reason": self.reason,
            "software_version": self.software_version,
            "catalog_version": self.catalog_version,
            "export_version": self.export_version,
            "document_version": self.document_version,
            "sha256": self.sha256,
            "report_sha256": self.report_sha256,
            "superseded_at": None if self.superseded_at is None else iso_utc(self.superseded_at),
            "superseded_by": self.superseded_by,
        }

    @classmethod
    def of(cls, m: Mapping[Any, Any]) -> FrozenMonthInfo:
        """From a row's mapping (``row._mapping``) or the dict it was written from."""
        return cls(
            month=m["month"],
            revision=int(m["revision"]),
            timezone=m["timezone"],
            frozen_at=m["frozen_at"],
            frozen_by=m["frozen_by"],
            reason=m["reason"],
            software_version=m["software_version"],
            catalog_version=m["catalog_version"],
            export_version=int(m["export_version"]),
            document_version=int(m["document_version"]),
            sha256=m["sha256"],
            report_sha256=m["report_sha256"],
            superseded_at=m.get("superseded_at"),
            superseded_by=m.get("superseded_by"),
        )


@dataclass(frozen=True, slots=True)
class FrozenMonth:
    """A frozen month and its document (checked against its SHA-256 when read)."""

    info: FrozenMonthInfo
    document: str

    @property
    def month(self) -> str:
        return self.info.month


@dataclass(frozen=True, slots=True)
class NewFreeze:
    """What freezing a month stores (the revision is the repository's to give)."""

    month: str
    timezone: str
    frozen_at: datetime
    frozen_by: str
    reason: str
    software_version: str
    catalog_version: str | None
    export_version: int
    document_version: int
    document: str
    report_sha256: str

    def row(self, revision: int) -> dict[str, Any]:
        if self.frozen_at.tzinfo is None:
            raise ValueError("frozen_at must be timezone-aware")
        return {
            "month": self.month,
            "revision": revision,
            "timezone": self.timezone,
            "frozen_at": self.frozen_at.astimezone(UTC),
            "frozen_by": clean_text(self.frozen_by, limit=255),
            "reason": self.reason if self.reason == CLOSED else clean_reason(self.reason),
            "software_version": clean_text(self.software_version, limit=64),
            "catalog_version": self.catalog_version,
            "export_version": self.export_version,
            "document_version": self.document_version,
            "document": self.document,
            "sha256": document_sha256(self.document),
            "report_sha256": self.report_sha256,
        }


class FrozenMonthRepository:
    """The frozen months of a store and their history (module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- reading ------------------------------------------------------------------------

    def get(self, month: str) -> FrozenMonth | None:
        """The frozen month ``month`` with its document; ``None`` when it is not frozen.

        :class:`StoreError` when the stored document does not match its SHA-256.
        """
        rows = self._read(
            f"reading the frozen month {month}",
            select(frozen_months).where(frozen_months.c.month == month),
        )
        if not rows:
            return None
        return _checked(rows[0])

    def info(self, month: str) -> FrozenMonthInfo | None:
        """The frozen month ``month`` without its document; ``None`` when not frozen."""
        rows = self._read(
            f"reading the frozen month {month}",
            select(*_INFO_COLUMNS).where(frozen_months.c.month == month),
        )
        return FrozenMonthInfo.of(rows[0]._mapping) if rows else None

    def months(self) -> list[FrozenMonthInfo]:
        """Every frozen month (its current revision), by month."""
        rows = self._read(
            "listing the frozen months",
            select(*_INFO_COLUMNS).order_by(frozen_months.c.month),
        )
        return [FrozenMonthInfo.of(r._mapping) for r in rows]

    def history(self, month: str | None = None) -> list[FrozenMonthInfo]:
        """The earlier revisions of recomputed months (of ``month`` only, when given),
        by month and revision."""
        h = frozen_month_history
        query = select(*[c for c in h.c if c.name != "document"]).order_by(h.c.month, h.c.revision)
        if month is not None:
            query = query.where(h.c.month == month)
        rows = self._read("reading the frozen months' history", query)
        return [FrozenMonthInfo.of(r._mapping) for r in rows]

    def historical(self, month: str, revision: int) -> FrozenMonth | None:
        """An earlier revision of ``month`` with its document; ``None`` if there is none."""
        h = frozen_month_history
        rows = self._read(
            f"reading revision {revision} of the frozen month {month}",
            select(h).where(h.c.month == month, h.c.revision == revision),
        )
        return _checked(rows[0]) if rows else None

    # -- writing ------------------------------------------------------------------------

    def freeze(self, new: NewFreeze) -> tuple[FrozenMonth, bool]:
        """Store ``new`` as revision 1 unless the month is frozen already.

        Returns the month as stored and whether this call stored it (``False``: it was
        frozen before, by this process or another, and is left as it was).
        """
        row = new.row(1)
        try:
            with self._writing(f"freezing the month {new.month}") as conn:
                current = conn.execute(
                    select(frozen_months).where(frozen_months.c.month == new.month)
                ).first()
                if current is None:
                    conn.execute(insert(frozen_months).values(**row))
        except ConflictError:
            current = None  # another process froze it between our look and our insert
        else:
            if current is None:
                return FrozenMonth(FrozenMonthInfo.of(row), new.document), True
        stored = self.get(new.month)
        if stored is None:  # pragma: no cover - a row that vanished: nothing deletes them
            raise StoreError(f"the frozen month {new.month} vanished while being frozen")
        return stored, False

    def recompute(
        self, new: NewFreeze, *, expected_revision: int | None = None
    ) -> tuple[FrozenMonthInfo, FrozenMonth]:
        """Replace the frozen ``new.month`` with ``new`` (its reason is required), after
        copying the current revision into the history; in one transaction.

        ``expected_revision``: refuse (:class:`ConflictError`) when the current revision
        is another one (someone recomputed it meanwhile). :class:`StoreError` when the
        month is not frozen. Returns the superseded revision and the new one.
        """
        if new.reason == CLOSED:
            raise ValueError(f"a recomputation needs the operator's reason, not {CLOSED!r}")
        clean_reason(new.reason)  # ValueError before anything is written
        t, h = frozen_months, frozen_month_history
        with self._writing(f"recomputing the frozen month {new.month}") as conn:
            current = conn.execute(
                select(t).where(t.c.month == new.month).with_for_update()
            ).first()
            if current is None:
                raise StoreError(
                    f"the month {new.month} is not frozen: freeze it first (`scd-monitor sla "
                    "freeze`)"
                )
            previous = FrozenMonthInfo.of(current._mapping)
            if expected_revision is not None and previous.revision != expected_revision:
                raise ConflictError(
                    f"the frozen month {new.month} is at revision {previous.revision}, not "
                    f"{expected_revision}: recomputed meanwhile"
                )
            conn.execute(
                insert(h).values(
                    **dict(current._mapping),
                    superseded_at=new.frozen_at,
                    superseded_by=clean_text(new.frozen_by, limit=255),
                )
            )
            row = new.row(previous.revision + 1)
            updated = conn.execute(
                update(t)
                .where(t.c.month == new.month, t.c.revision == previous.revision)
                .values(**row)
            ).rowcount
            if updated != 1:
                raise ConflictError(f"the frozen month {new.month} changed while recomputed")
        return (
            previous,
            FrozenMonth(FrozenMonthInfo.of(row), new.document),
        )

    # -- internals ----------------------------------------------------------------------

    def _read(self, what: str, query: Any) -> Sequence[Row[Any]]:
        """The rows of ``query``; none when the database predates the frozen months'
        tables (an older database opened read-only as it is)."""
        try:
            with self.store.transaction(what) as conn:
                return conn.execute(query).all()
        except StoreError:
            if not self._has_tables():
                return []
            raise

    def _writing(self, what: str) -> Any:
        if not self._has_tables():
            raise StoreError(
                f"{what}: the database {self.store.url_for_humans} has no frozen months yet "
                "(an older schema); run `scd-monitor db upgrade`, or start the daemon on it"
            )
        return self.store.transaction(what)

    def _has_tables(self) -> bool:
        try:
            with self.store.transaction("looking for the frozen months' tables") as conn:
                names = set(inspect(conn).get_table_names())
        except StoreError:
            return True  # the database failed: say so, with the first error
        return {frozen_months.name, frozen_month_history.name} <= names


def _checked(row: Row[Any]) -> FrozenMonth:
    info = FrozenMonthInfo.of(row._mapping)
    document = str(row._mapping["document"])
    if document_sha256(document) != info.sha256:
        raise StoreError(
            f"the frozen month {info.month} (revision {info.revision}) does not match its "
            "SHA-256: the stored figures were altered; recompute it with a reason"
        )
    return FrozenMonth(info, document)
