"""The store: the database (:class:`Store`), one repository per aggregate, the batched
result writer, the counted X-Road operational data records (:class:`UsageRepository`),
the frozen figures of closed months (:class:`FrozenMonthRepository`)."""

from __future__ import annotations

from scd_monitor.store.checks import CheckRepository, CheckRow
from scd_monitor.store.directories import DirectoryRepository, StoredDirectory
from scd_monitor.store.engine import Store, redacted_url
from scd_monitor.store.months import FrozenMonth, FrozenMonthInfo, FrozenMonthRepository
from scd_monitor.store.results import ResultRepository
from scd_monitor.store.usage import UsageBucket, UsageCursor, UsageRepository
from scd_monitor.store.writer import ResultWriter, WriterStats

__all__ = [
    "CheckRepository",
    "CheckRow",
    "DirectoryRepository",
    "FrozenMonth",
    "FrozenMonthInfo",
    "FrozenMonthRepository",
    "ResultRepository",
    "ResultWriter",
    "Store",
    "StoredDirectory",
    "UsageBucket",
    "UsageCursor",
    "UsageRepository",
    "WriterStats",
    "redacted_url",
]
