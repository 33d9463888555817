"""The store: SQLAlchemy tables, the repository, the batched result writer."""

from __future__ import annotations

from scd_monitor.store.repository import CheckRow, Store, StoredDirectory, redacted_url
from scd_monitor.store.writer import ResultWriter, WriterStats

__all__ = ["CheckRow", "ResultWriter", "Store", "StoredDirectory", "WriterStats", "redacted_url"]
