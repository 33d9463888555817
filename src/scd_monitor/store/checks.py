"""Checks: every check the catalog ever had, retired ones included."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from scd_monitor.catalog.models import ResolvedCheck
from scd_monitor.store.engine import Store
from scd_monitor.store.tables import checks


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


class CheckRepository:
    """Recording the catalog's checks and reading them back."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def sync(self, resolved: Sequence[ResolvedCheck], now: datetime) -> None:
        """Record the catalog's checks: new ones added, changed ones updated, missing retired.

        Only rows that differ are written; ``last_seen`` of every current check is set
        in one statement (a discovered catalog has tens of thousands of checks).
        """
        wanted = {c.id: c for c in resolved}
        with self.store.transaction("syncing checks") as conn:
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

    def list(self, *, include_retired: bool = True) -> builtins.list[CheckRow]:
        """Every check by id; without the retired ones when ``include_retired`` is false."""
        query = select(checks).order_by(checks.c.id)
        if not include_retired:
            query = query.where(checks.c.retired_at.is_(None))
        with self.store.transaction("reading checks") as conn:
            return [CheckRow(**row._mapping) for row in conn.execute(query)]
