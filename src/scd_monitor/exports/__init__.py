"""Monthly ANS exports: CSV, XLSX, PDF and JSON from the SLA engine's figures.

Public surface (wired into ``scd-monitor export sla`` and the daemon)::

    export_month(source, *, month, formats, output_dir, provider, now, incidents)
        -> ExportResult
    MonthlyExportJob(source_factory, *, output_dir, months, ...).due(now) / .run(now)
    MonthFreezeJob(source_factory, months, ...).due(now) / .run(now)
    freeze_month(source, months, *, month, now, ...) -> (FrozenMonth, bool)
    recompute_month(source, months, *, month, now, reason, by, ...)
        -> (superseded FrozenMonthInfo, FrozenMonth)

``source`` is an :class:`ExportSource` (an ``SlaReporter``, the effective catalog and,
optionally, a reader of the use of the X-Road platform: ``store_usage(store)``).
See ``docs/exports.md`` for the files, their columns and the guarantees, and
:mod:`scd_monitor.exports.coverage` for how coverage decides whether a closed month's
services have a verdict. A closed month is frozen once (issue 14): its exports then
render the frozen figures (``export_month(..., months=FrozenMonthRepository(store))``),
see :mod:`scd_monitor.exports.job`.
"""

from __future__ import annotations

from scd_monitor.exports.coverage import INSUFFICIENT_COVERAGE, ReportStatus
from scd_monitor.exports.job import (
    SETTLE,
    MonthFreezeJob,
    MonthlyExportJob,
    closed_month,
    completed_export,
    freeze_month,
    recompute_month,
)
from scd_monitor.exports.model import (
    Band,
    ExportSource,
    FrozenDocumentError,
    FrozenFrom,
    IncidentRef,
    MonthExport,
    Reporter,
    build_month_export,
    freeze_document,
    thaw_document,
)
from scd_monitor.exports.usage import UsageReader, store_usage
from scd_monitor.exports.writer import (
    COMPANIONS,
    FORMATS,
    RENDERERS,
    ExportedFile,
    ExportError,
    ExportResult,
    export_month,
    export_name,
    frozen_export,
    frozen_from,
    parse_formats,
    read_manifest,
    verify_export,
    write_export,
)

__all__ = [
    "COMPANIONS",
    "FORMATS",
    "INSUFFICIENT_COVERAGE",
    "RENDERERS",
    "SETTLE",
    "Band",
    "ExportError",
    "ExportResult",
    "ExportSource",
    "ExportedFile",
    "FrozenDocumentError",
    "FrozenFrom",
    "IncidentRef",
    "MonthExport",
    "MonthFreezeJob",
    "MonthlyExportJob",
    "ReportStatus",
    "Reporter",
    "UsageReader",
    "build_month_export",
    "closed_month",
    "completed_export",
    "export_month",
    "export_name",
    "freeze_document",
    "freeze_month",
    "frozen_export",
    "frozen_from",
    "parse_formats",
    "read_manifest",
    "recompute_month",
    "store_usage",
    "thaw_document",
    "verify_export",
    "write_export",
]
