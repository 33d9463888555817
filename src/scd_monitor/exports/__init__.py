"""Monthly ANS exports: CSV, XLSX, PDF and JSON from the SLA engine's figures.

Public surface (wired into ``scd-monitor export sla`` and the daemon)::

    export_month(source, *, month, formats, output_dir, provider, now, incidents)
        -> ExportResult
    MonthlyExportJob(source_factory, *, output_dir, ...).due(now) / .run(now)

``source`` is an :class:`ExportSource` (an ``SlaReporter``, the effective catalog and,
optionally, a reader of the use of the X-Road platform: ``store_usage(store)``).
See ``docs/exports.md`` for the files, their columns and the guarantees, and
:mod:`scd_monitor.exports.coverage` for how coverage decides whether a closed month's
services have a verdict.
"""

from __future__ import annotations

from scd_monitor.exports.coverage import INSUFFICIENT_COVERAGE, ReportStatus
from scd_monitor.exports.job import MonthlyExportJob, completed_export
from scd_monitor.exports.model import (
    Band,
    ExportSource,
    IncidentRef,
    MonthExport,
    Reporter,
    build_month_export,
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
    "Band",
    "ExportError",
    "ExportResult",
    "ExportSource",
    "ExportedFile",
    "IncidentRef",
    "MonthExport",
    "MonthlyExportJob",
    "ReportStatus",
    "Reporter",
    "UsageReader",
    "build_month_export",
    "completed_export",
    "export_month",
    "export_name",
    "parse_formats",
    "read_manifest",
    "store_usage",
    "verify_export",
    "write_export",
]
