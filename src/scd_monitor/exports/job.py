"""The scheduled export: the previous month, on the first day of each month, once.

The daemon asks :meth:`MonthlyExportJob.due` on its state-tracking tick and calls
:meth:`MonthlyExportJob.run` (in a worker thread: it reads the store and writes files)
when a month is due. Due means: it is the first day of a month in the catalog's time
zone, at least ``settle`` after midnight (so the state tracker has turned the month's
last results into spans), before ``catch_up`` after midnight (one day by default: a
daemon down on the whole 1st does not export later; ``scd-monitor export sla`` does),
and the export directory has no *completed* export of the previous month yet.

"Once" is read from the export directory, not from memory, so a restart does not redo
it: a completed export is a ``sla-YYYY-MM`` directory whose manifest says it is not
provisional, covers every provider and lists every format the job writes, each file
present with its listed size. A provisional export made on demand during the month
does not count, so the job replaces it with the final one. A closed month exported with
``status`` ``insufficient_coverage`` (some services measured below their minimum
coverage, so without a verdict) is complete too: exporting it again would give the same
files; the job logs a warning naming those services. After a failure the job is not
due again for ``retry_after``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from scd_monitor.errors import ScdMonitorError
from scd_monitor.exports.model import ExportSource, IncidentRef
from scd_monitor.exports.writer import (
    FORMATS,
    ExportResult,
    export_month,
    export_name,
    parse_formats,
    read_manifest,
)
from scd_monitor.sla.calendar import month_of, month_period, parse_month
from scd_monitor.sla.model import Period

__all__ = ["MonthlyExportJob", "completed_export"]

log = structlog.get_logger("scd_monitor.exports")

IncidentSource = Callable[[Period], Sequence[IncidentRef]]
"""The incidents of a period (issue 6); the job asks it for the month it exports."""


def completed_export(directory: Path, month: str, formats: Sequence[str] = FORMATS) -> bool:
    """Whether ``directory`` holds the final, all-providers export of ``month`` with
    every one of ``formats`` (sizes checked, not hashes: see ``verify_export``)."""
    manifest = read_manifest(directory)
    if manifest is None:
        return False
    if (
        manifest.get("month") != month
        or manifest.get("provisional") is not False
        or manifest.get("provider") is not None
    ):
        return False
    listed: dict[object, list[dict[str, Any]]] = {}
    for entry in manifest["files"]:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            listed.setdefault(entry.get("format"), []).append(entry)
    for fmt in formats:
        entries = listed.get(fmt)
        if not entries:
            return False
        for entry in entries:  # a format's companion files too (``sla-M-uso.csv``)
            try:
                size = (directory / entry["name"]).stat().st_size
            except OSError:
                return False
            if size != entry.get("size"):
                return False
    return True


class MonthlyExportJob:
    """Writes the previous month's export on the first day of each month, once."""

    def __init__(
        self,
        source: Callable[[], ExportSource],
        *,
        output_dir: Path,
        formats: Sequence[str] = FORMATS,
        settle: timedelta = timedelta(minutes=5),
        catch_up: timedelta = timedelta(days=1),
        retry_after: timedelta = timedelta(minutes=15),
        incidents: IncidentSource | None = None,
    ) -> None:
        """``source`` is called for every check and run, so a reloaded catalog is used."""
        if not timedelta(0) <= settle < catch_up:
            raise ValueError("expected 0 <= settle < catch_up")
        self._source = source
        self._output_dir = output_dir
        self._formats = parse_formats(formats)
        self._settle = settle
        self._catch_up = catch_up
        self._retry_after = retry_after
        self._incidents = incidents
        self._done: str | None = None
        self._failed: tuple[str, datetime] | None = None

    @property
    def output_dir(self) -> Path:
        return self._output_dir

    def due(self, now: datetime) -> str | None:
        """The month (``YYYY-MM``) to export now, or ``None``."""
        tz = self._source().catalog.tz
        this_month = month_of(now, tz)
        since = now - this_month.start
        if not self._settle <= since < self._catch_up:
            return None
        previous = month_of(this_month.start - timedelta(microseconds=1), tz)
        local = previous.start.astimezone(tz)
        month = f"{local.year:04d}-{local.month:02d}"
        if self._done == month:
            return None
        if self._failed is not None:
            failed_month, at = self._failed
            if failed_month == month and now < at + self._retry_after:
                return None
        if completed_export(self._output_dir / export_name(month), month, self._formats):
            self._done = month
            return None
        return month

    def run(self, now: datetime) -> ExportResult | None:
        """Write the due export, if any; log it. Errors are logged and raised again."""
        month = self.due(now)
        if month is None:
            return None
        source = self._source()
        try:
            incidents: Sequence[IncidentRef] = ()
            if self._incidents is not None:
                incidents = self._incidents(month_period(*parse_month(month), source.catalog.tz))
            result = export_month(
                source,
                month=month,
                formats=self._formats,
                output_dir=self._output_dir,
                now=now,
                incidents=incidents,
            )
        except ScdMonitorError as exc:
            self._failed = (month, now)
            log.error("export.failed", month=month, error=str(exc))
            raise
        self._done = month
        self._failed = None
        log.info(
            "export.written",
            month=month,
            directory=str(result.directory),
            files=[f.name for f in result.files],
            provisional=result.provisional,
            status=result.status.value,
        )
        if result.insufficient_coverage:
            log.warning(
                "export.insufficient_coverage",
                month=month,
                services=[f"{p}/{s}" for p, s in result.insufficient_coverage],
            )
        return result
