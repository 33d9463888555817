"""X-Road directories: each source's last good directory and the events between them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import insert, select, update

from scd_monitor.sanitize import clean_text
from scd_monitor.store.engine import Store
from scd_monitor.store.tables import directory_events, directory_snapshots
from scd_monitor.xroad.directory import Directory, DirectoryEvent

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StoredDirectory:
    """The last good directory of a source and when it was last read successfully."""

    directory: Directory
    last_success_at: datetime


class DirectoryRepository:
    """Directory snapshots (one per source) and directory events."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def latest(self) -> dict[str, StoredDirectory]:
        """The last good directory of every source that ever had one.

        A snapshot that cannot be read (written by a release that stored something this
        one refuses) is left out and logged, so one source's bad snapshot never keeps the
        others' directories from coming into force; its source reads afresh."""
        with self.store.transaction("reading directory snapshots") as conn:
            rows = conn.execute(select(directory_snapshots)).all()
        out = {}
        for row in rows:
            try:
                directory = Directory.from_json(row.snapshot)
            except Exception as exc:  # one bad snapshot must not stop the rest
                log.error(
                    "directory.snapshot_unreadable",
                    source=clean_text(str(row.source)),
                    error=clean_text(f"{type(exc).__name__}: {exc}"),
                )
                continue
            out[row.source] = StoredDirectory(directory, row.last_success_at)
        return out

    def save(
        self,
        source: str,
        *,
        directory: Directory | None = None,
        last_success_at: datetime | None = None,
        events: Sequence[DirectoryEvent] = (),
    ) -> None:
        """In one transaction: the source's new last good ``directory`` (when given), the
        time of its last successful read (when given) and ``events``."""
        with self.store.transaction(f"saving the directory of {source!r}") as conn:
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

    def events(
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
        with self.store.transaction("reading directory events") as conn:
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
